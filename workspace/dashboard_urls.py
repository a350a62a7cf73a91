"""UI URLs of the dashboards (issue 5, seed 003 "Maintain"): the page and one CSV export per section."""
from django.urls import path

from . import dashboard_views

urlpatterns = [
    path("", dashboard_views.dashboard, name="dashboard"),
    path("export/<slug:section>.csv", dashboard_views.dashboard_export, name="dashboard-export"),
]
