"""URLs of the manager pages, under /manager/."""
from django.urls import path

from . import duplicate_views, export_views
from . import manager_views as views

app_name = "manager"

urlpatterns = [
    path("", views.manager_queue, name="queue"),
    path("export/", export_views.manager_queue_export, name="queue-export"),
    path("unassigned/", views.manager_unassigned, name="unassigned"),
    path("escalations/", views.manager_escalations, name="escalations"),
    path("aging/", views.manager_aging, name="aging"),
    path("hot/", views.manager_hot, name="hot"),
    path("bounced/", views.manager_bounced, name="bounced"),
    path("reps/", views.manager_reps, name="reps"),
    path("reps/reassign/", views.manager_reps_reassign, name="reps-reassign"),
    path("reps/<int:membership_id>/availability/", views.manager_rep_availability, name="rep-availability"),
    path("reps/<int:membership_id>/toggle/", views.manager_rep_toggle, name="rep-toggle"),
    path("duplicates/", duplicate_views.manager_duplicates, name="duplicates"),
    path("duplicates/<int:pair_id>/", duplicate_views.manager_duplicate, name="duplicate"),
    path("duplicates/<int:pair_id>/merge/", duplicate_views.manager_duplicate_merge, name="duplicate-merge"),
    path("duplicates/<int:pair_id>/dismiss/", duplicate_views.manager_duplicate_dismiss, name="duplicate-dismiss"),
    path("duplicates/<int:pair_id>/undo/", duplicate_views.manager_duplicate_undo, name="duplicate-undo"),
    path("leads/<str:lead_id>/reassign/", views.manager_lead_reassign, name="lead-reassign"),
    path("leads/<str:lead_id>/reassign/row/", views.manager_lead_reassign_row, name="lead-reassign-row"),
]
