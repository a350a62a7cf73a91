"""Reads for tenancy: memberships of a user, API key lookup."""
from __future__ import annotations

from django.db.models import QuerySet

from .models import ApiKey, Membership


def memberships_of_user(*, user) -> QuerySet[Membership]:
    return Membership.objects.unscoped().filter(user=user, tenant__is_active=True).select_related("tenant", "team")


def membership_for_request(*, user, tenant_id: int | None) -> Membership | None:
    """The membership of the active tenant (chosen in the session), else the user's first one."""
    memberships = list(memberships_of_user(user=user).order_by("tenant__name"))
    if not memberships:
        return None
    for membership in memberships:
        if membership.tenant_id == tenant_id:
            return membership
    return memberships[0]


def api_key_lookup(*, raw: str) -> ApiKey | None:
    """The active key matching a raw secret, or None (unknown, malformed or revoked)."""
    prefix = ApiKey.parse(raw)
    if prefix is None:
        return None
    key = ApiKey.objects.unscoped().select_related("tenant").filter(prefix=prefix).first()
    if key is None or not key.is_active or not key.tenant.is_active or not key.check_secret(raw):
        return None
    return key
