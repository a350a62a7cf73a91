"""Nurture API: the email provider's bounce callback (tenant secret), sequences, and enrolments of a lead."""
from django.urls import path, re_path

from leadmgmt.api import UUID_RE

from . import api, api_enrollments

LEAD = rf"^leads/(?P<pk>{UUID_RE})"

urlpatterns = [
    path("nurture/bounces/<slug:tenant_slug>/", api.BounceCallbackView.as_view(), name="nurture-bounce"),
    path("nurture/sequences/", api_enrollments.SequenceListView.as_view(), name="nurture-sequences"),
    re_path(rf"{LEAD}/enrollments/$", api_enrollments.LeadEnrollmentsView.as_view(), name="lead-enrollments"),
    re_path(rf"{LEAD}/enrollments/(?P<enrollment_id>[0-9]+)/stop/$", api_enrollments.LeadEnrollmentStopView.as_view(),
            name="lead-enrollment-stop"),
]
