"""Workspace API: leads (`/api/v1/leads/`: list, filter, read, edit; touches, signals, score history,
activities, audit trail) and the rep's actions on a lead (accept, reject, qualify, convert). Views
call services and selectors only.

Who may act: reps (SDR, AE) on the leads they own; managers on the leads they see (their team's,
their own and Unassigned); tenant admins on every lead; marketing ops read but do not act. A lead
outside the caller's scope, or another tenant's, is the same 404 as a missing one.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from leadmgmt.api import (
    COMMON_ERRORS,
    ERRORS_RESPONSE,
    UUID_RE,
    ApiKeyRateThrottle,
    StorableJSONParser,
    actor_for,
    page,
)
from leadmgmt.tenancy.models import ApiScope
from leadmgmt.tenancy.roles import LEAD_EDIT, LEAD_EXPORT, LEAD_REASSIGN, LEAD_WORK
from leads.api import LeadApiView
from leads.filters import LeadFilterSet, NullsLastOrderingFilter
from leads.models import Lead
from leads.selectors import (
    LeadViewer,
    lead_activities,
    lead_get_for_viewer,
    lead_history,
    lead_list,
    lead_signals,
    lead_touches,
)
from leads.serializers import SignalSerializer
from leads.services.lead_edit import lead_update
from routing.selectors import reassign_target_refusal
from scoring.selectors import score_history

from .export import (
    ATTRIBUTE_COLUMN_PATTERN,
    COLUMNS,
    DEFAULT_COLUMNS,
    MAX_COLUMNS,
    export_columns_parse,
    export_filename,
    leads_export_csv,
)
from .serializers import (
    ActivityCreateSerializer,
    ActivitySerializer,
    AuditEventSerializer,
    ConvertSerializer,
    ExpectedOwnerSerializer,
    HandoffSerializer,
    LeadSerializer,
    LeadUpdateSerializer,
    OpportunitySerializer,
    QualifySerializer,
    RejectSerializer,
    ScoreChangeSerializer,
    TouchSerializer,
)
from .services.activities import activity_log
from .services.handoff import handoff_message, opportunity_handoff
from .services.lifecycle import lead_accept, lead_convert, lead_qualify, lead_reject


def _refusal(viewer: LeadViewer) -> str:
    """Why a member may not work this lead (the matrix of leadmgmt.tenancy.roles said no)."""
    if not viewer.may(LEAD_WORK):
        return "Only sales reps, their managers and tenant admins act on leads."
    return "You can act only on leads you own."


def _check_owner_target(viewer: LeadViewer, lead: Lead, owner_id: int | None) -> None:
    """A new owner must be one of routing's `reassign_targets` for this caller (None unassigns; the current owner
    is no change): else 400 on `owner`."""
    if owner_id is None or owner_id == lead.owner_id:
        return
    refusal = reassign_target_refusal(tenant=viewer.tenant, membership=viewer.membership, at=timezone.now(),
                                      to_user_id=owner_id, lead=lead)
    if refusal:
        raise exceptions.ValidationError({"owner": [refusal]})


class CsvExportNegotiation(DefaultContentNegotiation):
    """The export answers CSV (its own streamed response) whatever `Accept` says, and its errors are always
    JSON: a client asking for `text/csv` gets the file, not a 406, and a 400 it can parse."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _storable(value: str) -> str:
    """Text PostgreSQL's jsonb can hold: no NUL, no lone surrogate (both are shown escaped)."""
    return value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def export_query_filters(query_params) -> dict:
    """The list filters and ordering an export was asked with, for its audit event; other parameters (which the
    list ignores too) are left out."""
    known = {*LeadFilterSet.base_filters, "ordering"}
    return {key: [_storable(v)[:200] for v in query_params.getlist(key)] for key in sorted(query_params)
            if key in known}


@extend_schema_view(
    list=extend_schema(summary="List leads", description="Leads visible to the caller: SDRs and AEs their own, "
                       "managers their team's, their own and unassigned ones, admins, marketing ops and API keys all."),
    retrieve=extend_schema(summary="A lead with its score breakdown, owner, stage and SLA due time",
                           responses={200: LeadSerializer, 404: ERRORS_RESPONSE}),
)
class LeadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """`/api/v1/leads/`: list, filter, read and edit leads; their touches, signals, activities and history."""

    serializer_class = LeadSerializer
    filter_backends = [DjangoFilterBackend, NullsLastOrderingFilter]
    filterset_class = LeadFilterSet
    ordering_fields = ["created_at", "score", "sla_due_at", "last_name", "conversion_probability", "predictive_score"]
    ordering = ["-created_at"]
    lookup_value_regex = UUID_RE
    parser_classes = [StorableJSONParser, FormParser, MultiPartParser]
    throttle_classes = [ApiKeyRateThrottle]
    required_scopes = {"PATCH": ApiScope.LEADS_WRITE, "POST": ApiScope.LEADS_WRITE, "*": ApiScope.LEADS_READ}
    http_method_names = ["get", "patch", "post", "head", "options"]

    def viewer(self) -> LeadViewer:
        return LeadViewer.from_request(self.request)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request tenant
            return Lead.objects.none()
        return lead_list(viewer=self.viewer())

    def get_object(self) -> Lead:
        return lead_get_for_viewer(viewer=self.viewer(), lead_id=self.kwargs["pk"])

    @extend_schema(
        summary="Edit a lead",
        description="Change contact and company fields, status, stage (recorded as a stage transition) or "
        "owner (managers, admins and API keys; the owner must be a member of the tenant). Edited fields "
        "are never overwritten by later captures of the same person.",
        request=LeadUpdateSerializer,
        responses={200: LeadSerializer, 400: ERRORS_RESPONSE, 403: ERRORS_RESPONSE, 404: ERRORS_RESPONSE},
    )
    def partial_update(self, request, pk=None):
        lead = self.get_object()
        serializer = LeadUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        reason = data.pop("reason", "")
        viewer = self.viewer()
        if "owner" in data:
            if not viewer.may_on(LEAD_REASSIGN, lead):
                raise exceptions.PermissionDenied({"owner": ["Only managers and admins can reassign leads."]})
            _check_owner_target(viewer, lead, data["owner"])
        if set(data) - {"owner"} and not viewer.may_on(LEAD_EDIT, lead):
            raise exceptions.PermissionDenied("Only the lead's owner, their managers and tenant admins edit a lead.")
        lead = lead_update(lead=lead, data=data, actor=actor_for(request), reason=reason)
        return Response(LeadSerializer(lead, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Export leads to CSV (streamed)",
        description="The leads of `GET /api/v1/leads/` with the same filters and ordering, as one CSV file "
        "(UTF-8 with a byte order mark), streamed row by row whatever its size. `columns=a,b,c` picks the "
        "columns and their order (custom form fields as `attributes.<key>`); without it: "
        + ", ".join(DEFAULT_COLUMNS) + ". Columns: " + ", ".join(COLUMNS) + ". A cell starting with `=`, `+`, "
        "`-`, `@`, a tab or a carriage return gets a leading apostrophe (formula injection). Every export is "
        "audited (`leads.exported`).",
        parameters=[OpenApiParameter(
            "columns", description="Comma-separated column keys, each once (`attributes.<key>` for a custom field).",
            style="form", explode=False,
            type={"type": "array", "uniqueItems": True, "minItems": 1, "maxItems": MAX_COLUMNS, "items": {"anyOf": [
                {"type": "string", "enum": list(COLUMNS)},
                {"type": "string", "pattern": ATTRIBUTE_COLUMN_PATTERN}]}})],
        responses={(200, "text/csv"): OpenApiResponse(response=str, description="The CSV file."),
                   400: ERRORS_RESPONSE, 403: ERRORS_RESPONSE},
    )
    @action(detail=False, methods=["get"], url_path="export", pagination_class=None,
            renderer_classes=[JSONRenderer], content_negotiation_class=CsvExportNegotiation)
    def export(self, request):
        viewer = self.viewer()
        if not viewer.may(LEAD_EXPORT):
            raise exceptions.PermissionDenied("You may not export leads.")
        try:
            columns = export_columns_parse(request.query_params.getlist("columns"))
        except DjangoValidationError as error:
            raise exceptions.ValidationError(error.message_dict) from None
        queryset = self.filter_queryset(self.get_queryset())
        lines = leads_export_csv(tenant=viewer.tenant, actor=actor_for(request), queryset=queryset,
                                 columns=columns, filters=export_query_filters(request.query_params))
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{export_filename(tenant=viewer.tenant)}"'
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(summary="Captures of the lead (every form post, duplicates included)",
                   responses={200: TouchSerializer(many=True), 404: ERRORS_RESPONSE})
    @action(detail=True, methods=["get"], filter_backends=[])
    def touches(self, request, pk=None):
        return page(self, lead_touches(lead=self.get_object()), TouchSerializer)

    @extend_schema(summary="Behavioural signals of the lead", responses={200: SignalSerializer(many=True), 404: ERRORS_RESPONSE})
    @action(detail=True, methods=["get"], filter_backends=[])
    def signals(self, request, pk=None):
        return page(self, lead_signals(lead=self.get_object()), SignalSerializer)

    @extend_schema(summary="Changes of the lead's score: old and new score and band, and their cause",
                   responses={200: ScoreChangeSerializer(many=True), 404: ERRORS_RESPONSE})
    @action(detail=True, methods=["get"], filter_backends=[], url_path="score-history")
    def score_history(self, request, pk=None):
        return page(self, score_history(lead=self.get_object()), ScoreChangeSerializer)

    @extend_schema(summary="Audit trail of the lead", responses={200: AuditEventSerializer(many=True), 404: ERRORS_RESPONSE})
    @action(detail=True, methods=["get"], filter_backends=[])
    def history(self, request, pk=None):
        return page(self, lead_history(lead=self.get_object()), AuditEventSerializer)

    @extend_schema(methods=["GET"], summary="Calls, emails, meetings and notes logged on the lead",
                   responses={200: ActivitySerializer(many=True), 404: ERRORS_RESPONSE})
    @extend_schema(
        methods=["POST"], summary="Log a call, email, meeting or note (signed-in members)",
        description="201 when logged; 200 with the earlier activity when the same activity (same kind, "
        "time, subject, body and outcome) was already logged by you, which makes retries safe.",
        request=ActivityCreateSerializer,
        responses={201: ActivitySerializer, 200: ActivitySerializer, 400: ERRORS_RESPONSE,
                   403: ERRORS_RESPONSE, 404: ERRORS_RESPONSE},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def activities(self, request, pk=None):
        lead = self.get_object()
        if request.method == "GET":
            return page(self, lead_activities(lead=lead), ActivitySerializer)
        if getattr(request, "api_key", None) is not None:
            raise exceptions.PermissionDenied("Activities are logged by signed-in members, not API keys.")
        if not self.viewer().may_on(LEAD_WORK, lead):
            raise exceptions.PermissionDenied(_refusal(self.viewer()))
        serializer = ActivityCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        activity, created = activity_log(lead=lead, actor=actor_for(request), **serializer.validated_data)
        return Response(ActivitySerializer(activity).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


# --- accept, reject, qualify, convert: the rep's actions --------------------------------------------


def _lead_response(view, lead: Lead) -> Response:
    fresh = Lead.objects.for_tenant(lead.tenant_id).select_related("owner", "account").get(pk=lead.pk)
    return Response(LeadSerializer(fresh, context={"request": view.request}).data)


class LeadActionView(LeadApiView):
    """A rep's action on a lead: signed-in members who work leads; reps only on their own leads."""

    def acting_lead(self) -> Lead:
        if getattr(self.request, "api_key", None) is not None:
            raise exceptions.PermissionDenied("Accept, reject and qualify are done by signed-in members, not API keys.")
        lead = self.lead()  # 404 first: a lead out of reach is never confirmed to exist
        viewer = self.viewer()
        if not viewer.may_on(LEAD_WORK, lead):
            raise exceptions.PermissionDenied(_refusal(viewer))
        return lead


def _expected(data: dict) -> dict:
    return {"expected_owner_id": data["expected_owner_id"]} if "expected_owner_id" in data else {}


class LeadAcceptView(LeadActionView):
    @extend_schema(operation_id="leads_accept", summary="Accept the lead (its owner)",
                   description="An MQL becomes a SAL; an AE accepting an SQL converts it. Stops the SLA clock.",
                   request=ExpectedOwnerSerializer, responses={200: LeadSerializer, **COMMON_ERRORS}, tags=["leads"])
    def post(self, request, pk):
        lead = self.acting_lead()
        data = self.valid(ExpectedOwnerSerializer)
        return _lead_response(self, lead_accept(lead=lead, actor=actor_for(request), **_expected(data)))


class LeadRejectView(LeadActionView):
    @extend_schema(operation_id="leads_reject", summary="Reject the lead back to marketing with a reason",
                   description="`reason` is a code of the rejection taxonomy; nurture reasons (\"not now\") "
                   "recycle the lead to nurture. The owner is cleared and the SLA clock stops.",
                   request=RejectSerializer, responses={200: LeadSerializer, **COMMON_ERRORS}, tags=["leads"])
    def post(self, request, pk):
        lead = self.acting_lead()
        data = self.valid(RejectSerializer)
        lead = lead_reject(lead=lead, actor=actor_for(request), reason_code=data["reason"], note=data["note"],
                           **_expected(data))
        return _lead_response(self, lead)


class QualifyResultSerializer(serializers.Serializer):
    lead = LeadSerializer()
    opportunity = OpportunitySerializer()


class QualifyHandoffResultSerializer(QualifyResultSerializer):
    handoff = HandoffSerializer()


class LeadQualifyView(LeadActionView):
    @extend_schema(operation_id="leads_qualify", summary="Qualify the lead (BANT) and hand it off to an AE",
                   description="All four BANT fields are required. The lead becomes an SQL with an Opportunity "
                   "owned by the AE of its named account or territory, who must accept it within the acceptance "
                   "SLA. When no AE matches, `handoff.placed` is false and `handoff.reason` says why: the lead "
                   "waits in the Unassigned queue and the SDR's manager (else the tenant admins) is notified. "
                   "Qualifying again returns the same open opportunity.",
                   request=QualifySerializer, responses={200: QualifyHandoffResultSerializer, **COMMON_ERRORS},
                   tags=["leads"])
    def post(self, request, pk):
        lead = self.acting_lead()
        data = self.valid(QualifySerializer)
        opportunity = lead_qualify(lead=lead, actor=actor_for(request), budget=data["budget"],
                                   authority=data["authority"], need=data["need"], timeline=data["timeline"],
                                   **_expected(data))
        handoff = opportunity_handoff(opportunity=opportunity)
        return Response({"lead": _lead_response(self, lead).data,
                         "opportunity": OpportunitySerializer(opportunity).data,
                         "handoff": {**handoff.as_dict(), "message": handoff_message(handoff)}},
                        status=status.HTTP_200_OK)



class LeadConvertView(LeadActionView):
    @extend_schema(operation_id="leads_convert", summary="Convert the lead to an opportunity",
                   description="The lead's owner (or a manager or admin for them). Accepts the lead's open "
                   "opportunity if it has one (an SQL handed off to an AE), else opens one owned by the lead's owner "
                   "and linked to its account. The lead becomes converted and leaves the queue; its SLA clock stops. "
                   "Converting again returns the same opportunity. Closed, recycled and unassigned leads: 400.",
                   request=ConvertSerializer, responses={200: QualifyResultSerializer, **COMMON_ERRORS},
                   tags=["leads"])
    def post(self, request, pk):
        lead = self.acting_lead()
        data = self.valid(ConvertSerializer)
        opportunity = lead_convert(lead=lead, actor=actor_for(request), name=data["name"], stage=data["stage"],
                                   **_expected(data))
        return Response({"lead": _lead_response(self, lead).data,
                         "opportunity": OpportunitySerializer(opportunity).data}, status=status.HTTP_200_OK)
