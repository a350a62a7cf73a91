"""API v1 routes of the leads app: intake (public form key), batch intake and signals (tenant API key)."""
from django.urls import path

from . import api, intake, intake_batch

urlpatterns = [
    path("intake/", intake.IntakeView.as_view(), name="intake"),
    # Before the workspace's `leads/{id}/` routes (leadmgmt/urls.py includes this module first); "batch" is no
    # lead id anyway (those are UUIDs).
    path("leads/batch/", intake_batch.LeadBatchIntakeView.as_view(), name="lead-batch-intake"),
    path("signals/", api.SignalIngestView.as_view(), name="signal-ingest"),
]
