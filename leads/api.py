"""Signals API (an integration's tenant API key), and the base view of the API endpoints on one lead.

Views call services and selectors only; the shared plumbing (throttles, schemes, error shapes) is in
`leadmgmt/api.py`.
"""
from __future__ import annotations

from django.conf import settings
from django.http import QueryDict
from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from leadmgmt.api import (
    ERRORS_RESPONSE,
    ApiKeyRateThrottle,
    IsApiKeyRequest,
    TenantApiView,
    actor_for,
    errors_response,
    flat_errors,
)
from leadmgmt.tenancy.authentication import ApiKeyAuthentication
from leadmgmt.tenancy.models import ApiScope
from leadmgmt.tenancy.permissions import HasTenant

from .models import Lead
from .selectors import LeadViewer, lead_get_for_viewer
from .serializers import SignalBatchResultSerializer, SignalInSerializer
from .services.signals import SignalBatchResult, SignalItemResult, SignalStatus, signals_record


class LeadApiView(TenantApiView):
    """Base of the endpoints on one lead (`/api/v1/leads/{id}/…`): the caller's view of leads, and the
    lead of the URL within it (another tenant's, or one out of the caller's reach, is a 404)."""

    def viewer(self) -> LeadViewer:
        return LeadViewer.from_request(self.request)

    def lead(self) -> Lead:
        return lead_get_for_viewer(viewer=self.viewer(), lead_id=self.kwargs["pk"])


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
                                                 errors=flat_errors(serializer.errors)))
        recorded = signals_record(
            tenant=request.tenant, items=inputs, api_key=request.api_key, actor=actor_for(request)
        ) if inputs else SignalBatchResult(results=[])
        batch = SignalBatchResult(results=[*rejected, *recorded.results])
        return Response(batch.as_dict(), status=status.HTTP_202_ACCEPTED)
