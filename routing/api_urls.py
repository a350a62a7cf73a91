"""API v1 routes of routing: dry run and taxonomy, and the lead sub-resources routing adds
(assignments, reassign, accept, reject, qualify; bulk reassignment)."""
from django.urls import path, re_path

from leads.api import UUID_RE

from . import api

LEAD = rf"^leads/(?P<pk>{UUID_RE})"

urlpatterns = [
    path("routing/dry-run/", api.RoutingDryRunView.as_view(), name="routing-dry-run"),
    path("routing/rejection-reasons/", api.RejectionReasonListView.as_view(), name="routing-rejection-reasons"),
    path("leads/reassign-bulk/", api.LeadReassignBulkView.as_view(), name="lead-reassign-bulk"),
    re_path(rf"{LEAD}/assignments/$", api.LeadAssignmentsView.as_view(), name="lead-assignments"),
    re_path(rf"{LEAD}/reassign/$", api.LeadReassignView.as_view(), name="lead-reassign"),
    re_path(rf"{LEAD}/accept/$", api.LeadAcceptView.as_view(), name="lead-accept"),
    re_path(rf"{LEAD}/reject/$", api.LeadRejectView.as_view(), name="lead-reject"),
    re_path(rf"{LEAD}/qualify/$", api.LeadQualifyView.as_view(), name="lead-qualify"),
    re_path(rf"{LEAD}/convert/$", api.LeadConvertView.as_view(), name="lead-convert"),
]
