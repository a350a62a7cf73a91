"""Outcomes API: opportunities (`/api/v1/opportunities/`: list with filters, read, move a stage, close won or lost)
and the outcome sync of deals closed in another CRM (`POST /api/v1/outcomes/`, a tenant API key with the
`outcomes:write` scope). Views call the services of `workspace.services.outcomes` and the selectors only.

Who may: everyone who sees leads reads the opportunities of the leads they see (reps also those they own); closing
follows the matrix (`opportunity.close`): reps on their own leads' opportunities, managers on their team's, admins
and keys with `leads:write` on all. The sync is for API keys only.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import QueryDict
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from leadmgmt.api import (
    COMMON_ERRORS,
    ERRORS_RESPONSE,
    ApiKeyRateThrottle,
    IsApiKeyRequest,
    PaginatedMixin,
    SlugTextField,
    TenantApiView,
    TextField,
    actor_for,
    aware_utc,
    errors_response,
    flat_errors,
    page,
)
from leadmgmt.tenancy.authentication import ApiKeyAuthentication
from leadmgmt.tenancy.models import ApiScope
from leadmgmt.tenancy.permissions import HasTenant
from leadmgmt.tenancy.roles import LEAD_VIEW, OPPORTUNITY_CLOSE, OUTCOMES_SYNC
from leads.currencies import currency_clean
from leads.models import Opportunity, OpportunityStage, OutcomeResult, OutcomeSource
from leads.normalize import email_normalize
from leads.selectors import LeadViewer, opportunity_get_for_viewer, opportunity_list
from routing.serializers import PersonSerializer

from .services.outcomes import (
    AMOUNT_MAX,
    FUTURE_SKEW,
    OutcomeInput,
    OutcomeItemResult,
    OutcomeStatus,
    opportunity_update,
    outcomes_sync,
)

RESULT_FILTERS = ("won", "lost", "open")


class OpportunityOutSerializer(serializers.ModelSerializer):
    """An opportunity with its lead, owner and how it closed."""

    owner = PersonSerializer(allow_null=True, read_only=True)
    lead_name = serializers.SerializerMethodField()
    stage_label = serializers.CharField(source="get_stage_display", read_only=True)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True, read_only=True)
    lost_reason = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    lost_reason_label = serializers.SerializerMethodField()

    class Meta:
        model = Opportunity
        fields = ["id", "name", "stage", "stage_label", "lead_id", "lead_name", "account_id", "owner", "amount",
                  "currency", "closed_at", "lost_reason", "lost_reason_label", "budget", "authority", "need",
                  "timeline", "accepted_at", "created_at", "updated_at"]
        read_only_fields = fields

    def get_lead_name(self, opportunity) -> str:
        return str(opportunity.lead)

    def get_lost_reason_label(self, opportunity) -> str:
        return opportunity.lost_reason.label if opportunity.lost_reason_id else ""


def _utc(value):
    try:
        return aware_utc(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from exc


class OpportunityUpdateSerializer(serializers.Serializer):
    """What a PATCH may change; fields left out stay as they are."""

    stage = serializers.ChoiceField(choices=OpportunityStage.choices, required=False,
                                    help_text="won or lost closes the deal (a closed deal does not reopen).")
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, max_value=AMOUNT_MAX,
                                      required=False, allow_null=True,
                                      help_text="The deal's value; required to close it won.")
    currency = TextField(required=False, allow_blank=True, max_length=3,
                         help_text="ISO 4217 code of the amount, e.g. EUR.")
    closed_at = serializers.DateTimeField(required=False, allow_null=True,
                                          help_text="When it closed (default: now); not in the future.")
    lost_reason = SlugTextField(required=False, allow_blank=True, allow_null=True, max_length=48,
                                help_text="A code of the tenant's lost-deal taxonomy; required to close it lost.")

    def validate_currency(self, value):
        try:
            return currency_clean(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def validate_closed_at(self, value):
        return _utc(value)


class OpportunityFilterSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=OpportunityStage.choices, required=False)
    owner = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    lead = serializers.UUIDField(required=False)
    result = serializers.ChoiceField(choices=RESULT_FILTERS, required=False)
    closed_from = serializers.DateTimeField(required=False)
    closed_to = serializers.DateTimeField(required=False)

    def to_internal_value(self, data):
        # DRF reads a blank query value (`?stage=`) as "not given"; a filter sent without a value is a mistake.
        blank = {name: ["Give a value or leave the filter out."] for name in self.fields if data.get(name) == ""}
        if blank:
            raise serializers.ValidationError(blank)
        return super().to_internal_value(data)

    def validate_closed_from(self, value):
        return _utc(value)

    def validate_closed_to(self, value):
        return _utc(value)


FILTER_PARAMETERS = [
    OpenApiParameter("stage", str, enum=OpportunityStage.values),
    OpenApiParameter("owner", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                     description="Only the opportunities this member owns (a user id)."),
    OpenApiParameter("lead", OpenApiTypes.UUID, description="Only the opportunities of this lead."),
    OpenApiParameter("result", str, enum=list(RESULT_FILTERS), description="Closed won, closed lost, or open."),
    OpenApiParameter("closed_from", OpenApiTypes.DATETIME, description="Closed at or after."),
    OpenApiParameter("closed_to", OpenApiTypes.DATETIME, description="Closed at or before."),
]


class _OpportunityView(PaginatedMixin, TenantApiView):
    required_scopes = {"PATCH": ApiScope.LEADS_WRITE, "*": ApiScope.LEADS_READ}

    def viewer(self) -> LeadViewer:
        return LeadViewer.from_request(self.request)


class OpportunityListView(_OpportunityView):
    @extend_schema(operation_id="opportunities_list", summary="List opportunities",
                   description="The opportunities of the leads the caller sees (reps also those they own), newest "
                   "first, paginated. Filters: stage, owner, lead, result (won, lost, open) and a close date range.",
                   parameters=FILTER_PARAMETERS, responses={200: OpportunityOutSerializer(many=True), **COMMON_ERRORS},
                   tags=["opportunities"])
    def get(self, request):
        viewer = self.viewer()
        if not viewer.may(LEAD_VIEW):
            raise exceptions.PermissionDenied("You may not read leads.")
        filters = OpportunityFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return page(self, opportunity_list(viewer=viewer, filters=filters.validated_data), OpportunityOutSerializer)


class OpportunityDetailView(_OpportunityView):
    def opportunity(self) -> Opportunity:
        viewer = self.viewer()
        if not viewer.may(LEAD_VIEW):
            raise exceptions.PermissionDenied("You may not read leads.")
        return opportunity_get_for_viewer(viewer=viewer, opportunity_id=self.kwargs["pk"])

    @extend_schema(operation_id="opportunities_retrieve", summary="An opportunity",
                   responses={200: OpportunityOutSerializer, **COMMON_ERRORS}, tags=["opportunities"])
    def get(self, request, pk: int):
        return Response(OpportunityOutSerializer(self.opportunity()).data)

    @extend_schema(
        operation_id="opportunities_partial_update", summary="Move an opportunity's stage, close it won or lost",
        description="Closing it won needs `amount` and `currency` (ISO 4217), lost a `lost_reason` code of the tenant's "
        "taxonomy; `closed_at` defaults to now. Closing records the lead's outcome in the same transaction: won "
        "converts the lead at the customer stage; lost leaves it converted with a lost deal. A closed deal moves "
        "between won and lost or has its values corrected, never reopens. Reps close the opportunities of their own "
        "leads, managers their team's, admins and API keys (`leads:write`) all. Sending the same values again changes "
        "nothing.",
        request=OpportunityUpdateSerializer, responses={200: OpportunityOutSerializer, **COMMON_ERRORS},
        tags=["opportunities"])
    def patch(self, request, pk: int):
        opportunity = self.opportunity()  # 404 first: one out of reach is never confirmed to exist
        if not self.viewer().may_on_opportunity(OPPORTUNITY_CLOSE, opportunity):
            raise exceptions.PermissionDenied("Only the lead's owner, their managers and tenant admins change its deal.")
        serializer = OpportunityUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        opportunity_update(opportunity=opportunity, actor=actor_for(request), data=dict(serializer.validated_data),
                           source=OutcomeSource.OPPORTUNITY)
        return Response(OpportunityOutSerializer(
            opportunity_get_for_viewer(viewer=self.viewer(), opportunity_id=opportunity.pk)).data)


# --- the outcome sync ---------------------------------------------------------------------------------------


class OutcomeInSerializer(serializers.Serializer):
    """One deal outcome. Name the lead by exactly one of `lead_id`, `email` or `external_id`."""

    lead_id = serializers.UUIDField(required=False, allow_null=True, help_text="A lead of this tenant.")
    email = TextField(required=False, allow_blank=True, allow_null=True, max_length=320,
                      help_text="The lead's email (matched as intake stores it: trimmed, lower-cased).")
    external_id = TextField(required=False, allow_blank=True, allow_null=True, max_length=200,
                            help_text="The lead's id in the system it came from (`Lead.external_id`).")
    outcome = serializers.ChoiceField(choices=OutcomeResult.choices)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, max_value=AMOUNT_MAX,
                                      required=False, allow_null=True, help_text="The deal's value (won deals).")
    currency = TextField(required=False, allow_blank=True, allow_null=True, max_length=3,
                         help_text="ISO 4217 code of the amount; required with an amount.")
    closed_at = serializers.DateTimeField(required=False, allow_null=True,
                                          help_text="When it closed (default: now, or the lead's current close date "
                                          "for a repeat); not in the future.")
    reason = TextField(required=False, allow_blank=True, allow_null=True, max_length=500,
                       help_text="Why it was lost or disqualified: a code or label of the tenant's lost reasons is "
                       "recorded as that reason, anything else as free text.")

    def validate_email(self, value):
        try:
            return email_normalize(value or "")
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def validate_currency(self, value):
        try:
            return currency_clean(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def validate_closed_at(self, value):
        value = _utc(value)
        if value is not None and value > timezone.now() + FUTURE_SKEW:
            raise serializers.ValidationError("The close date cannot be in the future.")
        return value

    def validate(self, attrs):
        named = [name for name in ("lead_id", "email", "external_id") if attrs.get(name) not in (None, "")]
        if not named:
            raise serializers.ValidationError({"lead_id": ["Name the lead: lead_id, email or external_id."]})
        if len(named) > 1:
            raise serializers.ValidationError({named[1]: [f"Name the lead one way only ({' or '.join(named)})."]})
        if attrs.get("amount") is not None and not attrs.get("currency"):
            raise serializers.ValidationError({"currency": ["Give the currency of the amount (ISO 4217)."]})
        return attrs

    def to_input(self, index: int) -> OutcomeInput:
        data = self.validated_data
        return OutcomeInput(index=index, result=data["outcome"], lead_id=data.get("lead_id"),
                            email=data.get("email") or "", external_id=(data.get("external_id") or "").strip(),
                            amount=data.get("amount"), currency=data.get("currency") or "",
                            closed_at=data.get("closed_at"), reason=(data.get("reason") or "").strip())


class OutcomeItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's position in the request (0 for a single object).")
    status = serializers.ChoiceField(choices=OutcomeStatus.choices)
    lead_id = serializers.UUIDField(required=False)
    outcome_id = serializers.IntegerField(required=False)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


class OutcomeBatchResultSerializer(serializers.Serializer):
    results = OutcomeItemResultSerializer(many=True)
    recorded = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    unknown_leads = serializers.IntegerField()
    errors = serializers.IntegerField()


OUTCOME_EXAMPLE = {"email": "ada@acme.example", "outcome": "won", "amount": "12000.00", "currency": "EUR",
                   "closed_at": "2025-05-01T10:15:00Z"}


class OutcomeSyncView(APIView):
    """`POST /api/v1/outcomes/`: one outcome or a list of up to 1000, from an integration's API key."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsApiKeyRequest, HasTenant]
    required_scopes = {"POST": ApiScope.OUTCOMES_WRITE}
    parser_classes = [JSONParser]
    throttle_classes = [ApiKeyRateThrottle]

    @extend_schema(
        operation_id="outcomes_create", summary="Send deal outcomes from another CRM",
        description=(
            "One outcome object or a list of up to 1000 (`outcomes:write` scope). Each item is answered on its own, in "
            "input order: `recorded` (the lead's outcome is this one now), `duplicate` (the lead already has exactly "
            "this outcome: nothing written, so retries are safe), `unknown_lead`, or `error` with field errors. 202 "
            "whenever the body is an object or a list, even if every item failed; 400 only for the body itself. A won "
            "outcome converts the lead at the customer stage; lost or disqualified closes it with the reason. A lead's "
            "open opportunity is closed the same way. Each recorded outcome is on the lead's timeline and audit trail."
        ),
        request=PolymorphicProxySerializer(component_name="OutcomeBatch",
                                           serializers=[OutcomeInSerializer, OutcomeInSerializer(many=True)],
                                           resource_type_field_name=None, many=False),
        responses={202: OutcomeBatchResultSerializer, 400: ERRORS_RESPONSE, 401: ERRORS_RESPONSE, 403: ERRORS_RESPONSE,
                   413: ERRORS_RESPONSE, 415: ERRORS_RESPONSE, 429: ERRORS_RESPONSE},
        examples=[OpenApiExample("One outcome", value=OUTCOME_EXAMPLE, request_only=True),
                  OpenApiExample("A batch", request_only=True, value=[
                      OUTCOME_EXAMPLE, {"external_id": "crm-4711", "outcome": "lost", "reason": "competitor"}])],
        tags=["outcomes"],
    )
    def post(self, request):
        max_bytes = settings.SIGNALS_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > max_bytes:
            return errors_response({"detail": [f"The body is larger than {max_bytes} bytes; send smaller batches."]},
                                   status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        if not LeadViewer.from_request(request).may(OUTCOMES_SYNC):
            raise exceptions.PermissionDenied("This API key lacks the 'outcomes:write' scope.")
        data = request.data if length > 0 else None
        if isinstance(data, dict) and not isinstance(data, QueryDict):
            items = [data]
        elif isinstance(data, list):
            items = data
        else:
            raise exceptions.ValidationError({"detail": ["Send an outcome object or a JSON list of outcomes."]})
        if not items:
            raise exceptions.ValidationError({"detail": ["The list of outcomes is empty."]})
        if len(items) > settings.OUTCOMES_MAX_BATCH:
            raise exceptions.ValidationError(
                {"detail": [f"At most {settings.OUTCOMES_MAX_BATCH} outcomes per request ({len(items)} sent)."]})
        rejected, inputs = [], []
        for index, raw in enumerate(items):
            if not isinstance(raw, dict):
                rejected.append(OutcomeItemResult(index=index, status=OutcomeStatus.ERROR,
                                                  errors={"detail": ["Each outcome must be a JSON object."]}))
                continue
            serializer = OutcomeInSerializer(data=raw)
            if serializer.is_valid():
                inputs.append(serializer.to_input(index))
            else:
                rejected.append(OutcomeItemResult(index=index, status=OutcomeStatus.ERROR,
                                                  errors=flat_errors(serializer.errors)))
        batch = outcomes_sync(tenant=request.tenant, items=inputs, actor=actor_for(request))
        batch.results += rejected
        return Response(batch.as_dict(), status=status.HTTP_202_ACCEPTED)
