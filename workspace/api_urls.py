"""API v1 routes of the workspace: leads (list, read, edit, their parts and history), the rep's
actions on a lead (accept, reject, qualify, convert), opportunities and the outcome sync, the feedback report, the
signed-in member's notifications, CSV imports, source costs and the funnel plan."""
from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from leadmgmt.api import UUID_RE

from . import (
    api,
    api_costs,
    api_duplicates,
    api_feedback,
    api_imports,
    api_outcomes,
    notification_api,
)

LEAD = rf"^leads/(?P<pk>{UUID_RE})"

router = SimpleRouter()
router.register("leads", api.LeadViewSet, basename="lead")

urlpatterns = [
    path("", include(router.urls)),
    re_path(rf"{LEAD}/accept/$", api.LeadAcceptView.as_view(), name="lead-accept"),
    re_path(rf"{LEAD}/reject/$", api.LeadRejectView.as_view(), name="lead-reject"),
    re_path(rf"{LEAD}/qualify/$", api.LeadQualifyView.as_view(), name="lead-qualify"),
    re_path(rf"{LEAD}/convert/$", api.LeadConvertView.as_view(), name="lead-convert"),
    path("duplicates/", api_duplicates.DuplicatePairListView.as_view(), name="api-duplicates"),
    path("duplicates/<int:pair_id>/", api_duplicates.DuplicatePairDetailView.as_view(), name="api-duplicate"),
    path("duplicates/<int:pair_id>/merge/", api_duplicates.DuplicatePairMergeView.as_view(),
         name="api-duplicate-merge"),
    path("duplicates/<int:pair_id>/dismiss/", api_duplicates.DuplicatePairDismissView.as_view(),
         name="api-duplicate-dismiss"),
    path("duplicates/<int:pair_id>/undo/", api_duplicates.DuplicatePairUndoView.as_view(), name="api-duplicate-undo"),
    path("opportunities/", api_outcomes.OpportunityListView.as_view(), name="api-opportunities"),
    path("opportunities/<int:pk>/", api_outcomes.OpportunityDetailView.as_view(), name="api-opportunity"),
    path("outcomes/", api_outcomes.OutcomeSyncView.as_view(), name="api-outcomes"),
    path("costs/", api_costs.CostListView.as_view(), name="api-costs"),
    path("funnel-plan/", api_costs.FunnelPlanView.as_view(), name="api-funnel-plan"),
    path("reports/feedback/", api_feedback.FeedbackReportView.as_view(), name="api-feedback-report"),
    path("notifications/", notification_api.NotificationListView.as_view(), name="api-notifications"),
    path("notifications/read-all/", notification_api.NotificationReadAllView.as_view(),
         name="api-notifications-read-all"),
    path("notifications/<int:notification_id>/read/", notification_api.NotificationReadView.as_view(),
         name="api-notification-read"),
    path("imports/", api_imports.ImportListView.as_view(), name="api-imports"),
    path("imports/<int:pk>/", api_imports.ImportDetailView.as_view(), name="api-import"),
    path("imports/<int:pk>/mapping/", api_imports.ImportMappingView.as_view(), name="api-import-mapping"),
    path("imports/<int:pk>/preview/", api_imports.ImportPreviewView.as_view(), name="api-import-preview"),
    path("imports/<int:pk>/run/", api_imports.ImportRunView.as_view(), name="api-import-run"),
    path("imports/<int:pk>/refused.csv", api_imports.ImportRefusedCsvView.as_view(), name="api-import-refused"),
    path("imports/<int:pk>/undo/", api_imports.ImportUndoView.as_view(), name="api-import-undo"),
]
