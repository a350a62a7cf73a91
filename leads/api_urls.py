"""API v1 routes of the leads app: intake (public form key) and signals (tenant API key)."""
from django.urls import path

from . import api, intake

urlpatterns = [
    path("intake/", intake.IntakeView.as_view(), name="intake"),
    path("signals/", api.SignalIngestView.as_view(), name="signal-ingest"),
]
