"""The feedback-loop report as JSON: `GET /api/v1/reports/feedback/?from=&to=` (marketing ops, managers, admins, and
API keys with `leads:read`), the same figures as the page `/reports/feedback/` (`workspace.feedback_report`)."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from leadmgmt.api import COMMON_ERRORS, TenantApiView
from leadmgmt.tenancy.roles import REPORT_FEEDBACK
from leads.selectors import LeadViewer

from .feedback_report import feedback_report
from .feedback_views import FeedbackRangeForm, tenant_today


class _ReasonCountSerializer(serializers.Serializer):
    value = serializers.CharField(help_text="The source, band, campaign or rule ('' in the by-reason list).")
    reason = serializers.CharField(help_text="The reason's code ('' for a free-text disqualification).")
    reason_label = serializers.CharField()
    count = serializers.IntegerField()


class _RejectionsSerializer(serializers.Serializer):
    source = _ReasonCountSerializer(many=True)
    band = _ReasonCountSerializer(many=True)
    campaign = _ReasonCountSerializer(many=True)
    routing_rule = _ReasonCountSerializer(many=True)
    scoring_rule = _ReasonCountSerializer(many=True)


class _AcceptanceSerializer(serializers.Serializer):
    source = serializers.CharField()
    handed = serializers.IntegerField(help_text="Leads that became MQLs in the period.")
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    pending = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True, help_text="accepted ÷ (accepted + rejected), 0–1.")


class _WonSerializer(serializers.Serializer):
    value = serializers.CharField()
    currency = serializers.CharField(help_text="ISO 4217; '' for deals won without an amount. Never converted.")
    won = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)


class _WonBySerializer(serializers.Serializer):
    source = _WonSerializer(many=True)
    industry = _WonSerializer(many=True)
    title = _WonSerializer(many=True)


class _ConvertSerializer(serializers.Serializer):
    source = serializers.CharField()
    won = serializers.IntegerField()
    median_days = serializers.FloatField(allow_null=True)
    p75_days = serializers.FloatField(allow_null=True)


class _CurvePointSerializer(serializers.Serializer):
    score = serializers.IntegerField()
    accepted = serializers.IntegerField()
    decided = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True)


class _ThresholdSerializer(serializers.Serializer):
    target = serializers.FloatField(help_text="The tenant's MQL acceptance target, 0–1 (default 0.6).")
    current = serializers.IntegerField(allow_null=True, help_text="The published model's lowest auto-MQL band score.")
    current_acceptance = serializers.FloatField(allow_null=True)
    current_volume = serializers.IntegerField(allow_null=True)
    recommended = serializers.IntegerField(allow_null=True)
    expected_acceptance = serializers.FloatField(allow_null=True)
    recommended_volume = serializers.IntegerField(allow_null=True)
    decided = serializers.IntegerField()
    message = serializers.CharField()
    curve = _CurvePointSerializer(many=True)


class FeedbackReportSerializer(serializers.Serializer):
    """The report (see `workspace.feedback_report` for what each figure counts)."""

    start = serializers.DateField()
    end = serializers.DateField()
    tz = serializers.CharField()
    rejections_total = serializers.IntegerField()
    rejections_by_reason = _ReasonCountSerializer(many=True)
    rejections = _RejectionsSerializer()
    acceptance = _AcceptanceSerializer(many=True)
    acceptance_total = _AcceptanceSerializer()
    won = _WonBySerializer()
    won_total = _WonSerializer(many=True)
    time_to_convert = _ConvertSerializer(many=True)
    time_to_convert_total = _ConvertSerializer()
    threshold = _ThresholdSerializer()


class FeedbackReportView(TenantApiView):
    @extend_schema(
        operation_id="reports_feedback_retrieve", summary="The feedback-loop report",
        description="Rejection reasons by source, band, campaign and the routing and scoring rules that fired; MQL "
        "acceptance by source; won deals and revenue (per currency, never converted) by source, industry and title; "
        "time to convert; and the recommended MQL threshold with its expected acceptance. `from` and `to` are whole "
        "days in the tenant's time zone (both or neither: the last full month), at most 366 days. Marketing ops, "
        "managers, admins and API keys with `leads:read`.",
        parameters=[OpenApiParameter("from", OpenApiTypes.DATE, description="First day (inclusive)."),
                    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (inclusive).")],
        responses={200: FeedbackReportSerializer, **COMMON_ERRORS}, tags=["reports"])
    def get(self, request):
        if not LeadViewer.from_request(request).may(REPORT_FEEDBACK):
            raise exceptions.PermissionDenied("The feedback report is for marketing ops, managers and admins.")
        data = {name: request.query_params.get(name) for name in ("from", "to") if name in request.query_params}
        blank = {name: ["Give a date or leave the parameter out."] for name, value in data.items() if not value}
        if blank:  # a parameter sent without a value is a mistake, not "the default"
            raise exceptions.ValidationError(blank)
        form = FeedbackRangeForm(data, today=tenant_today(request.tenant))
        if not form.is_valid():
            raise exceptions.ValidationError({name: list(messages) for name, messages in form.errors.items()})
        report = feedback_report(tenant=request.tenant, start=form.cleaned_data["from"], end=form.cleaned_data["to"])
        return Response(report.as_dict())
