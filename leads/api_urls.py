"""API v1 routes of the leads app: intake (public form key), signals and leads (tenant API key or session)."""
from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import api, intake

router = SimpleRouter()
api.register(router)

urlpatterns = [
    path("intake/", intake.IntakeView.as_view(), name="intake"),
    path("", include(router.urls)),
    *api.extra_urlpatterns,
]
