"""Nurture API: the email provider's bounce callback (tenant secret) and enrolments of a lead."""
from django.urls import path

from . import api

urlpatterns = [
    path("nurture/bounces/<slug:tenant_slug>/", api.BounceCallbackView.as_view(), name="nurture-bounce"),
]
