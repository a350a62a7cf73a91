"""API v1 routes of the workspace: leads (list, read, edit, their parts and history), the rep's
actions on a lead (accept, reject, qualify, convert) and the signed-in member's notifications."""
from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from leadmgmt.api import UUID_RE

from . import api, api_duplicates, notification_api

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
    path("notifications/", notification_api.NotificationListView.as_view(), name="api-notifications"),
    path("notifications/read-all/", notification_api.NotificationReadAllView.as_view(),
         name="api-notifications-read-all"),
    path("notifications/<int:notification_id>/read/", notification_api.NotificationReadView.as_view(),
         name="api-notification-read"),
]
