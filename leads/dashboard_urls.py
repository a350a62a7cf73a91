"""UI URLs of the dashboards (issue 5, seed 003 "Maintain")."""
from django.urls import path

from . import dashboard_views

urlpatterns = [
    path("", dashboard_views.dashboard, name="dashboard"),
]
