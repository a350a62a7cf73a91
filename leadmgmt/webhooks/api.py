"""Webhooks API for tenant admins: endpoints (create, list, edit, delete, rotate the secret), the delivery
log of an endpoint, a delivery with every attempt it took, and "send again".

Who: signed-in members whose role may `webhooks.manage` (tenant admins; leadmgmt.tenancy.roles). API keys
and other roles get a 403. Another tenant's endpoint or delivery is the same 404 as a missing one. The
signing secret is in the answer of create and rotate-secret only.
"""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from leadmgmt.api import (
    COMMON_ERRORS,
    ERRORS_RESPONSE,
    PaginatedMixin,
    TenantApiView,
    actor_for,
    page,
)
from leadmgmt.tenancy.roles import WEBHOOKS_MANAGE, principal_may

from .models import DeliveryStatus
from .selectors import (
    webhook_delivery_detail,
    webhook_delivery_get,
    webhook_delivery_log,
    webhook_endpoint_get,
    webhook_endpoint_list,
)
from .serializers import (
    WebhookDeliveryDetailSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointInSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointWithSecretSerializer,
)
from .services.delivery import delivery_redeliver
from .services.endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_update,
)

MAX_ID = 2**63 - 1  # a larger id in the URL is simply not there (PostgreSQL's bigint would refuse it)


class WebhookApiView(PaginatedMixin, TenantApiView):

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if getattr(request, "api_key", None) is not None:
            raise exceptions.PermissionDenied("Webhooks are managed by tenant admins signed in, not API keys.")
        if not principal_may(action=WEBHOOKS_MANAGE, membership=getattr(request, "membership", None)):
            raise exceptions.PermissionDenied("Only tenant admins manage webhooks.")

    def endpoint(self, pk: int):
        endpoint = webhook_endpoint_get(tenant=self.request.tenant, endpoint_id=pk) if pk <= MAX_ID else None
        if endpoint is None:
            raise exceptions.NotFound()
        return endpoint


class WebhookListView(WebhookApiView):
    """`GET/POST /api/v1/webhooks/`: the tenant's endpoints; register one."""

    @extend_schema(operation_id="webhooks_list", summary="Webhook endpoints",
                   responses={200: WebhookEndpointSerializer(many=True), **COMMON_ERRORS}, tags=["webhooks"])
    def get(self, request):
        return page(self, webhook_endpoint_list(tenant=request.tenant), WebhookEndpointSerializer)

    @extend_schema(operation_id="webhooks_create", summary="Register a webhook endpoint",
                   description="The answer carries the signing `secret`, shown this once.",
                   request=WebhookEndpointInSerializer,
                   responses={201: WebhookEndpointWithSecretSerializer, **COMMON_ERRORS}, tags=["webhooks"])
    def post(self, request):
        data = self.valid(WebhookEndpointInSerializer)
        endpoint = webhook_endpoint_create(tenant=request.tenant, actor=actor_for(request), **data)
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookDetailView(WebhookApiView):
    """`GET/PATCH/DELETE /api/v1/webhooks/{id}/`."""

    @extend_schema(operation_id="webhooks_retrieve", summary="A webhook endpoint",
                   responses={200: WebhookEndpointSerializer, **COMMON_ERRORS}, tags=["webhooks"])
    def get(self, request, pk: int):
        return Response(WebhookEndpointSerializer(self.endpoint(pk)).data)

    @extend_schema(operation_id="webhooks_partial_update", summary="Change a webhook endpoint",
                   description="`is_active: true` switches a disabled endpoint back on.",
                   request=WebhookEndpointInSerializer(partial=True),
                   responses={200: WebhookEndpointSerializer, **COMMON_ERRORS}, tags=["webhooks"])
    def patch(self, request, pk: int):
        endpoint = self.endpoint(pk)
        serializer = WebhookEndpointInSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_update(endpoint=endpoint, actor=actor_for(request), **serializer.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(operation_id="webhooks_destroy", summary="Delete a webhook endpoint and its delivery log",
                   responses={204: None, **COMMON_ERRORS}, tags=["webhooks"])
    def delete(self, request, pk: int):
        webhook_endpoint_delete(endpoint=self.endpoint(pk), actor=actor_for(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretView(WebhookApiView):
    """`POST /api/v1/webhooks/{id}/rotate-secret/`: a new secret, returned once; the old one keeps signing
    beside it for `WEBHOOK_SECRET_GRACE_HOURS`."""

    @extend_schema(operation_id="webhooks_rotate_secret", summary="Rotate a webhook endpoint's secret",
                   request=None, responses={200: WebhookEndpointWithSecretSerializer, **COMMON_ERRORS},
                   tags=["webhooks"])
    def post(self, request, pk: int):
        endpoint = self.endpoint(pk)
        webhook_endpoint_secret_rotate(endpoint=endpoint, actor=actor_for(request))
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)


class WebhookDeliveriesView(WebhookApiView):
    """`GET /api/v1/webhooks/{id}/deliveries/`: the delivery log, newest first (`?status=` to filter)."""

    @extend_schema(operation_id="webhooks_deliveries_list", summary="Delivery log of a webhook endpoint",
                   parameters=[OpenApiParameter("status", str, enum=DeliveryStatus.values, required=False)],
                   responses={200: WebhookDeliverySerializer(many=True), **COMMON_ERRORS}, tags=["webhooks"])
    def get(self, request, pk: int):
        wanted = request.query_params.get("status", "")
        if "status" in request.query_params and wanted not in DeliveryStatus.values:  # `?status=` too (the enum)
            raise exceptions.ValidationError({"status": [f"Choose one of: {', '.join(DeliveryStatus.values)}."]})
        rows = webhook_delivery_log(tenant=request.tenant, endpoint=self.endpoint(pk), status=wanted or None)
        return page(self, rows, WebhookDeliverySerializer)


class WebhookDeliveryDetailView(WebhookApiView):
    """`GET /api/v1/webhooks/deliveries/{id}/`: one delivery of the log with its attempt history."""

    @extend_schema(operation_id="webhooks_deliveries_retrieve", summary="A delivery and its attempts",
                   description="`attempt_history`: every attempt made, oldest first, each with its status code "
                               "(empty when nothing answered: see `error`), time, excerpt of the answer and "
                               "trigger (`first`, `retry`, `send_again`).",
                   responses={200: WebhookDeliveryDetailSerializer, **COMMON_ERRORS}, tags=["webhooks"])
    def get(self, request, pk: int):
        delivery = webhook_delivery_detail(tenant=request.tenant, delivery_id=pk) if pk <= MAX_ID else None
        if delivery is None:
            raise exceptions.NotFound()
        return Response(WebhookDeliveryDetailSerializer(delivery).data)


class WebhookRedeliverView(WebhookApiView):
    """`POST /api/v1/webhooks/deliveries/{id}/redeliver/`: "send again" (same event id, a fresh retry window)."""

    @extend_schema(operation_id="webhooks_deliveries_redeliver", summary="Send a delivery again",
                   description="202 when queued; 409 when it is still pending (it will be sent anyway).",
                   request=None, responses={202: WebhookDeliverySerializer, 409: ERRORS_RESPONSE, **COMMON_ERRORS},
                   tags=["webhooks"])
    def post(self, request, pk: int):
        delivery = webhook_delivery_get(tenant=request.tenant, delivery_id=pk) if pk <= MAX_ID else None
        if delivery is None:
            raise exceptions.NotFound()
        if not delivery_redeliver(delivery=delivery):
            return Response({"errors": {"detail": ["This delivery is pending already."]}},
                            status=status.HTTP_409_CONFLICT)
        delivery.refresh_from_db()
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
