"""API v1 routes of routing: dry run and taxonomy, and the lead sub-resources routing adds
(assignments, reassign; bulk reassignment)."""
from django.urls import path, re_path

from leadmgmt.api import UUID_RE

from . import api

LEAD = rf"^leads/(?P<pk>{UUID_RE})"

urlpatterns = [
    path("routing/dry-run/", api.RoutingDryRunView.as_view(), name="routing-dry-run"),
    path("routing/rejection-reasons/", api.RejectionReasonListView.as_view(), name="routing-rejection-reasons"),
    path("leads/reassign-bulk/", api.LeadReassignBulkView.as_view(), name="lead-reassign-bulk"),
    re_path(rf"{LEAD}/assignments/$", api.LeadAssignmentsView.as_view(), name="lead-assignments"),
    re_path(rf"{LEAD}/reassign/$", api.LeadReassignView.as_view(), name="lead-reassign"),
]
