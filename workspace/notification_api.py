"""Notifications API (`/api/v1/notifications/`): a signed-in member's own notifications of the active tenant,
and marking them read. Session only: notifications belong to people, so a tenant API key gets 403."""
from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from leadmgmt.api import COMMON_ERRORS, ERRORS_RESPONSE, page
from leadmgmt.tenancy.permissions import HasTenant
from routing.models import Notification
from routing.notifications import notification_mark_read, notifications_mark_all_read

from .notification_selectors import (
    notification_get_for_user,
    notification_list,
    notification_unread_count,
)


class IsSignedInMember(HasTenant):
    """A person signed in to a workspace (their session); API keys are not people and have no inbox."""

    message = "Notifications belong to a signed-in member; API keys cannot read them."

    def has_permission(self, request, view) -> bool:
        return (super().has_permission(request, view) and getattr(request, "api_key", None) is None
                and getattr(request, "membership", None) is not None)


class NotificationSerializer(serializers.ModelSerializer):
    lead_url = serializers.SerializerMethodField(help_text="The lead's page in the workspace, when there is a lead.")
    is_read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "lead_id", "lead_url", "created_at", "read_at", "is_read"]
        read_only_fields = fields

    def get_lead_url(self, obj) -> str | None:
        return reverse("lead-page", kwargs={"lead_id": obj.lead_id}) if obj.lead_id else None

    def get_is_read(self, obj) -> bool:
        return obj.read_at is not None


class NotificationFilterSerializer(serializers.Serializer):
    unread = serializers.BooleanField(required=False, default=False, help_text="Only the unread ones.")

    def to_internal_value(self, data):
        # DRF reads a blank query value (`?unread=`) as "not given"; a filter sent without a value is a mistake
        if data.get("unread") == "":
            raise serializers.ValidationError({"unread": ["Must be true or false."]})
        return super().to_internal_value(data)


class _MemberView(GenericAPIView):
    permission_classes = [IsSignedInMember]
    serializer_class = NotificationSerializer
    queryset = Notification.objects.none()  # schema only: every read goes through the selectors


class NotificationListView(_MemberView):
    @extend_schema(summary="My notifications, newest first",
                   parameters=[OpenApiParameter("unread", bool, description="Only the unread ones.")],
                   responses={200: NotificationSerializer(many=True), **COMMON_ERRORS})
    def get(self, request):
        filters = NotificationFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = notification_list(tenant=request.tenant, user=request.user,
                                 unread_only=filters.validated_data["unread"])
        response = page(self, rows, NotificationSerializer)
        response["X-Unread-Count"] = str(notification_unread_count(tenant=request.tenant, user=request.user))
        return response


class NotificationReadView(_MemberView):
    @extend_schema(summary="Mark one of my notifications read", request=None,
                   responses={200: NotificationSerializer, 404: ERRORS_RESPONSE, 403: ERRORS_RESPONSE})
    def post(self, request, notification_id: int):
        notification = notification_get_for_user(tenant=request.tenant, user=request.user,
                                                 notification_id=notification_id)
        notification_mark_read(notification=notification)
        return Response(NotificationSerializer(notification).data)


class NotificationReadAllView(_MemberView):
    @extend_schema(summary="Mark all my notifications read", request=None,
                   responses={200: {"type": "object", "properties": {"marked": {"type": "integer"}}},
                              403: ERRORS_RESPONSE})
    def post(self, request):
        return Response({"marked": notifications_mark_all_read(tenant=request.tenant, user=request.user)})
