"""Reads of the member's notification centre: their list, the unread count, and one notification of theirs."""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from routing.models import Notification

UNREAD_COUNT_CAP = 100  # the bell shows "99+" past this; counting further is work nobody reads


def notification_list(*, tenant, user, unread_only: bool = False) -> QuerySet[Notification]:
    """`user`'s notifications in `tenant`, newest first (never another member's or another tenant's)."""
    rows = Notification.objects.for_tenant(tenant.pk).filter(user_id=user.pk)
    if unread_only:
        rows = rows.filter(read_at__isnull=True)
    return rows.only("id", "tenant_id", "user_id", "kind", "lead_id", "title", "body", "created_at", "read_at") \
        .order_by("-created_at", "-id")


def notification_unread_count(*, tenant, user) -> int:
    """How many of `user`'s notifications in `tenant` are unread, capped at UNREAD_COUNT_CAP (one query)."""
    return Notification.objects.for_tenant(tenant.pk).filter(user_id=user.pk, read_at__isnull=True) \
        .values("id")[:UNREAD_COUNT_CAP].count()


def notification_get_for_user(*, tenant, user, notification_id: int) -> Notification:
    """One of `user`'s notifications in `tenant`; the same 404 whether it is missing or someone else's."""
    notification = notification_list(tenant=tenant, user=user).filter(pk=notification_id).first()
    if notification is None:
        raise Http404("No such notification.")
    return notification
