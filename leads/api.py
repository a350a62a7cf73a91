"""Signals and leads API (tenant API key or signed-in member): views that call services and selectors.

Also the drf-spectacular extensions that document the tenancy authentication classes and the
tenant-scoped FilterSets (the lead may move them next to `leadmgmt/tenancy/authentication.py`).
"""
from __future__ import annotations

from django.conf import settings
from django.http import QueryDict
from django.urls import path
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from leadmgmt.api import errors_response
from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.authentication import ApiKeyAuthentication
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import ApiKey, ApiScope, Tenant
from leadmgmt.tenancy.permissions import HasTenant
from scoring.selectors import score_history

from .filters import LeadFilterSet, NullsLastOrderingFilter
from .models import Lead
from .selectors import (
    LeadViewer,
    lead_activities,
    lead_get_for_viewer,
    lead_history,
    lead_list,
    lead_signals,
    lead_touches,
)
from .serializers import (
    ActivityCreateSerializer,
    ActivitySerializer,
    AuditEventSerializer,
    LeadSerializer,
    LeadUpdateSerializer,
    ScoreChangeSerializer,
    SignalBatchResultSerializer,
    SignalInSerializer,
    SignalSerializer,
    TouchSerializer,
)
from .services.activities import activity_log
from .services.lead_edit import lead_update
from .services.signals import SignalBatchResult, SignalItemResult, SignalStatus, signals_record

UUID_RE = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
ERRORS_RESPONSE = OpenApiResponse(OpenApiTypes.OBJECT, description='`{"errors": {field: [messages]}}`')


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per API key request rate (`API_RATE_PER_KEY`); members signed in to the UI are not throttled."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        api_key = getattr(request, "api_key", None)
        if api_key is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": api_key.prefix}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "leadmgmt.tenancy.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")
        scheme["description"] = "A tenant API key: `Authorization: Bearer lm_…`, with the scope the operation needs."
        return scheme


class TenantSessionScheme(SessionScheme):
    target_class = "leadmgmt.tenancy.authentication.TenantSessionAuthentication"
    priority = 0


class TenantOwnedFilterExtension(DjangoFilterExtension):
    """Documents FilterSets of tenant-owned models: drf-spectacular builds an empty queryset through
    `Model.objects`, which fails closed without a tenant, so give it a tenant no row belongs to
    (the queryset is never evaluated)."""

    priority = 1

    def get_schema_operation_parameters(self, auto_schema, *args, **kwargs):
        with tenant_scope(Tenant(pk=0)):
            return super().get_schema_operation_parameters(auto_schema, *args, **kwargs)


class IsApiKeyRequest(BasePermission):
    """Only requests authenticated by a tenant API key (integrations), not a member's session."""

    message = "Use a tenant API key: 'Authorization: Bearer <api key>'."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiKey)


def actor_for(request) -> Actor:
    api_key = getattr(request, "api_key", None)
    return Actor.for_api_key(api_key) if api_key is not None else Actor.for_user(request.user)


def _flat_errors(errors) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, messages in errors.items():
        key = "detail" if name == "non_field_errors" else name
        if isinstance(messages, dict):
            out[key] = [f"{sub}: {msg}" for sub, msgs in messages.items() for msg in (msgs if isinstance(msgs, list) else [msgs])]
        else:
            out[key] = [str(m) for m in messages]
    return out


SIGNAL_EXAMPLE = {
    "email": "ada@acme.example", "type": "pricing_page_view", "occurred_at": "2025-05-01T10:15:00Z",
    "external_id": "evt_8f2c", "properties": {"url": "https://acme.example/pricing"},
}


class SignalIngestView(APIView):
    """`POST /api/v1/signals/`: one signal or a list of up to 1000, from an integration's API key."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsApiKeyRequest, HasTenant]
    required_scopes = {"POST": ApiScope.SIGNALS_WRITE}
    parser_classes = [JSONParser]
    throttle_classes = [ApiKeyRateThrottle]

    @extend_schema(
        operation_id="signals_create",
        summary="Send behavioural signals",
        description=(
            "Send one signal object or a list of up to 1000. Each item is answered on its own: "
            "`accepted` (stored for its lead), `pending` (stored for an email that is not a lead yet; "
            "attached when the lead is captured), `duplicate` (its `external_id` was received before; "
            "nothing written) or `error` (with field errors). The answer is 202 with the per-item results "
            "whenever the body is a valid object or list, even if every item failed; 400 only when the "
            "body itself is wrong (not JSON, not an object or list, empty list, more than 1000 items). "
            "A single object gets the same answer shape with one result at index 0. "
            "Send an `external_id` to make retries safe."
        ),
        request=PolymorphicProxySerializer(
            component_name="SignalBatch",
            serializers=[SignalInSerializer, SignalInSerializer(many=True)],
            resource_type_field_name=None,
            many=False,
        ),
        responses={
            202: SignalBatchResultSerializer,
            400: ERRORS_RESPONSE, 401: ERRORS_RESPONSE, 403: ERRORS_RESPONSE,
            413: ERRORS_RESPONSE, 415: ERRORS_RESPONSE, 429: ERRORS_RESPONSE,
        },
        examples=[
            OpenApiExample("One signal", value=SIGNAL_EXAMPLE, request_only=True),
            OpenApiExample("A batch", value=[SIGNAL_EXAMPLE, {**SIGNAL_EXAMPLE, "type": "email_click", "external_id": "evt_8f2d"}],
                           request_only=True),
        ],
        tags=["signals"],
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
        data = request.data if length > 0 else None  # DRF reads an empty body as {}
        if isinstance(data, dict) and not isinstance(data, QueryDict):
            items = [data]
        elif isinstance(data, list):
            items = data
        else:
            raise exceptions.ValidationError({"detail": ["Send a signal object or a JSON list of signals."]})
        if not items:
            raise exceptions.ValidationError({"detail": ["The list of signals is empty."]})
        if len(items) > settings.SIGNALS_MAX_BATCH:
            raise exceptions.ValidationError(
                {"detail": [f"At most {settings.SIGNALS_MAX_BATCH} signals per request ({len(items)} sent)."]}
            )

        rejected: list[SignalItemResult] = []
        inputs = []
        for index, raw in enumerate(items):
            if not isinstance(raw, dict):
                rejected.append(SignalItemResult(index=index, status=SignalStatus.ERROR,
                                                 errors={"detail": ["Each signal must be a JSON object."]}))
                continue
            serializer = SignalInSerializer(data=raw)
            if serializer.is_valid():
                inputs.append(serializer.to_signal_input(index))
            else:
                rejected.append(SignalItemResult(index=index, status=SignalStatus.ERROR,
                                                 errors=_flat_errors(serializer.errors)))
        recorded = signals_record(
            tenant=request.tenant, items=inputs, api_key=request.api_key, actor=actor_for(request)
        ) if inputs else SignalBatchResult(results=[])
        batch = SignalBatchResult(results=[*rejected, *recorded.results])
        return Response(batch.as_dict(), status=status.HTTP_202_ACCEPTED)


def _page(view, queryset, serializer_class) -> Response:
    page = view.paginate_queryset(queryset)
    return view.get_paginated_response(serializer_class(page, many=True, context=view.get_serializer_context()).data)


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
    ordering_fields = ["created_at", "score", "sla_due_at", "last_name"]
    ordering = ["-created_at"]
    lookup_value_regex = UUID_RE
    throttle_classes = [ApiKeyRateThrottle]
    required_scopes = {"PATCH": ApiScope.LEADS_WRITE, "POST": ApiScope.LEADS_WRITE, "*": ApiScope.LEADS_READ}
    http_method_names = ["get", "patch", "post", "head", "options"]

    def viewer(self) -> LeadViewer:
        return LeadViewer.from_request(self.request)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request tenant
            return Lead.objects.unscoped().none()
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
        if "owner" in data and not self.viewer().can_reassign:
            raise exceptions.PermissionDenied({"owner": ["Only managers and admins can reassign leads."]})
        lead = lead_update(lead=lead, data=data, actor=actor_for(request), reason=reason)
        return Response(LeadSerializer(lead, context=self.get_serializer_context()).data)

    @extend_schema(summary="Captures of the lead (every form post, duplicates included)",
                   responses={200: TouchSerializer(many=True), 404: ERRORS_RESPONSE})
    @action(detail=True, methods=["get"], filter_backends=[])
    def touches(self, request, pk=None):
        return _page(self, lead_touches(lead=self.get_object()), TouchSerializer)

    @extend_schema(summary="Behavioural signals of the lead", responses={200: SignalSerializer(many=True), 404: ERRORS_RESPONSE})
    @action(detail=True, methods=["get"], filter_backends=[])
    def signals(self, request, pk=None):
        return _page(self, lead_signals(lead=self.get_object()), SignalSerializer)

    @extend_schema(summary="Changes of the lead's score: old and new score and band, and their cause",
                   responses={200: ScoreChangeSerializer(many=True), 404: ERRORS_RESPONSE})
    @action(detail=True, methods=["get"], filter_backends=[], url_path="score-history")
    def score_history(self, request, pk=None):
        return _page(self, score_history(lead=self.get_object()), ScoreChangeSerializer)

    @extend_schema(summary="Audit trail of the lead", responses={200: AuditEventSerializer(many=True), 404: ERRORS_RESPONSE})
    @action(detail=True, methods=["get"], filter_backends=[])
    def history(self, request, pk=None):
        return _page(self, lead_history(lead=self.get_object()), AuditEventSerializer)

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
            return _page(self, lead_activities(lead=lead), ActivitySerializer)
        if getattr(request, "api_key", None) is not None:
            raise exceptions.PermissionDenied("Activities are logged by signed-in members, not API keys.")
        serializer = ActivityCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        activity, created = activity_log(lead=lead, actor=actor_for(request), **serializer.validated_data)
        return Response(ActivitySerializer(activity).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def register(router) -> None:
    """Register this module's viewsets on the v1 router."""
    router.register("leads", LeadViewSet, basename="lead")


extra_urlpatterns: list = [path("signals/", SignalIngestView.as_view(), name="signal-ingest")]
