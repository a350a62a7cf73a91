"""Template context of every workspace page: the top bar's unread-notification count (read lazily) and the
live-update poll interval."""
from __future__ import annotations

from django.conf import settings
from django.utils.functional import cached_property

from .notification_selectors import UNREAD_COUNT_CAP, notification_unread_count


class UnreadNotifications:
    """The bell's count: one query, run only when a template shows the bell (never for partials without it)."""

    def __init__(self, *, tenant, user):
        self.tenant, self.user = tenant, user

    @cached_property
    def count(self) -> int:
        return notification_unread_count(tenant=self.tenant, user=self.user)

    @property
    def label(self) -> str:
        return f"{UNREAD_COUNT_CAP - 1}+" if self.count >= UNREAD_COUNT_CAP else str(self.count)


def live_updates(request) -> dict:
    context = {"live_poll_seconds": settings.LIVE_POLL_SECONDS}
    tenant, membership = getattr(request, "tenant", None), getattr(request, "membership", None)
    user = getattr(request, "user", None)
    if tenant is not None and membership is not None and user is not None and user.is_authenticated:
        context["notification_bell"] = UnreadNotifications(tenant=tenant, user=user)
    return context
