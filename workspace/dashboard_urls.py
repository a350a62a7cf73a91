"""UI URLs of the dashboards (issue 5, seed 003 "Maintain"): the page, one CSV export per section, a rep's own
numbers, a manager's view of one rep, and the funnel plan (issue 16)."""
from django.urls import path

from . import dashboard_views, plan_views

urlpatterns = [
    path("", dashboard_views.dashboard, name="dashboard"),
    path("export/<slug:section>.csv", dashboard_views.dashboard_export, name="dashboard-export"),
    path("plan/", plan_views.dashboard_plan, name="dashboard-plan"),
    path("me/", dashboard_views.dashboard_me, name="dashboard-me"),
    path("reps/<int:membership_id>/", dashboard_views.dashboard_rep, name="dashboard-rep"),
]
