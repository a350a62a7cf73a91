"""UI URLs of the workspace: sign-in, tenant switch, My queue, the lead page (issue 5), CSV imports, the feedback report, the Team page and
invitations."""
from django.urls import include, path

from leadmgmt.tenancy import views as tenancy_views
from leadmgmt.tenancy.password_reset import ThrottledPasswordResetView

from . import export_views, feedback_views, import_views, team_views, views

urlpatterns = [
    # Before django.contrib.auth.urls so they replace Django's views (same URLs and names): the throttled reset
    # form, and sign-in/out whose `next` goes through leadmgmt.urls_safe.
    path("accounts/password_reset/", ThrottledPasswordResetView.as_view(), name="password_reset"),
    path("accounts/login/", tenancy_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", tenancy_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("tenant/switch/", tenancy_views.tenant_switch, name="tenant-switch"),
    path("queue/", views.queue, name="queue"),
    path("queue/export/", export_views.queue_export, name="queue-export"),
    path("leads/<uuid:lead_id>/", views.lead_page, name="lead-page"),
    path("leads/<uuid:lead_id>/<slug:action>/", views.lead_action, name="lead-action"),
    # CSV imports (tenant admins and marketing ops)
    path("imports/", import_views.imports, name="imports"),
    path("imports/<int:job_id>/", import_views.import_page, name="import-page"),
    path("imports/<int:job_id>/mapping/", import_views.import_mapping, name="import-mapping"),
    path("imports/<int:job_id>/run/", import_views.import_run, name="import-run"),
    path("imports/<int:job_id>/progress/", import_views.import_progress_part, name="import-progress"),
    path("imports/<int:job_id>/refused.csv", import_views.import_refused_csv, name="import-refused-csv"),
    path("imports/<int:job_id>/undo/", import_views.import_undo_view, name="import-undo"),
    # the feedback-loop report (marketing ops, managers, admins)
    path("reports/feedback/", feedback_views.feedback_page, name="feedback-report"),
    path("reports/feedback.csv", feedback_views.feedback_csv, name="feedback-report-csv"),
    path("", include("workspace.notification_urls")),  # the notification centre and the top bar's bell
    # the Team page (tenant admins) and the public invitation link
    path("team/", team_views.team, name="team"),
    path("team/invite/", team_views.team_invite, name="team-invite"),
    path("team/invitations/<int:invitation_id>/resend/", team_views.team_invitation_resend,
         name="team-invitation-resend"),
    path("team/invitations/<int:invitation_id>/revoke/", team_views.team_invitation_revoke,
         name="team-invitation-revoke"),
    path("team/members/<int:membership_id>/", team_views.team_member, name="team-member"),
    path("team/members/<int:membership_id>/deactivate/", team_views.team_member_deactivate,
         name="team-member-deactivate"),
    path("team/members/<int:membership_id>/reactivate/", team_views.team_member_reactivate,
         name="team-member-reactivate"),
    path("invite/<str:token>/", team_views.invitation_accept_view, name="invitation-accept"),
]
