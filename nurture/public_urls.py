"""Public links of nurture emails: no login, each guarded by a signed token (nurture.tokens)."""
from django.urls import path

from . import views

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe, name="nurture-unsubscribe"),
    path("c/<str:token>/", views.click, name="nurture-click"),
    path("o/<str:token>.gif", views.open_pixel, name="nurture-open"),
]
