"""UI URLs of the rep's workspace: sign-in, tenant switch, My queue and the lead page (issue 5)."""
from django.urls import include, path

from leadmgmt.tenancy import views as tenancy_views

from . import views

urlpatterns = [
    path("accounts/", include("django.contrib.auth.urls")),
    path("tenant/switch/", tenancy_views.tenant_switch, name="tenant-switch"),
    path("queue/", views.queue, name="queue"),
    path("leads/<uuid:lead_id>/", views.lead_page, name="lead-page"),
    path("leads/<uuid:lead_id>/<slug:action>/", views.lead_action, name="lead-action"),
]
