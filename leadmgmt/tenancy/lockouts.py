"""Sign-in lockouts (django-axes): each one is audited on every tenant the account belongs to.

A sign-in has no tenant yet, and audit events always belong to one. So a lockout of a known
account writes `auth.locked_out` into the audit trail of each tenant the user is a member of
(their admins see it there), and every lockout (unknown usernames included) also goes to the
platform log (`leadmgmt.security`) and to axes' own access log in the admin.
"""
from __future__ import annotations

import hashlib
import logging

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.dispatch import receiver

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record

from .context import tenant_scope
from .cross_tenant import cross_tenant
from .models import Membership

log = logging.getLogger("leadmgmt.security")
LOCKOUT_ACTOR = Actor.agent("Sign-in lockout")


def cooloff_minutes() -> int:
    return round(float(settings.AXES_COOLOFF_TIME) * 60)


def lockout_record(*, username: str, ip_address: str | None, path: str) -> int:
    """Audit one lockout on each tenant of the account named `username`; returns how many events."""
    user_model = get_user_model()
    user = user_model._default_manager.filter(
        **{f"{user_model.USERNAME_FIELD}__iexact": username or ""}).first()
    log.warning("sign-in locked out: username=%r ip=%s path=%s known_user=%s cooloff_minutes=%s",
                username, ip_address, path, user is not None, cooloff_minutes())
    if user is None:
        return 0
    metadata = {"username": username, "ip_address": ip_address, "path": path,
                "failure_limit": settings.AXES_FAILURE_LIMIT, "cooloff_minutes": cooloff_minutes()}
    with cross_tenant("sign_in"):
        memberships = list(Membership.objects.unscoped().filter(user=user).select_related("tenant"))
    with transaction.atomic():
        count = 0
        for membership in memberships:
            with tenant_scope(membership.tenant):
                audit_record(tenant=membership.tenant, actor=LOCKOUT_ACTOR, action="auth.locked_out",
                             obj=user, metadata=metadata)
            count += 1
    return count


def _first_signal(username: str, ip_address: str | None) -> bool:
    """axes signals again on every failure while locked out; one record per lockout (per cool-off) is enough."""
    digest = hashlib.sha256(f"{username.lower()}|{ip_address}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return cache.add(f"axes-lockout-recorded:{digest}", 1, max(cooloff_minutes(), 1) * 60)


@receiver(user_locked_out, dispatch_uid="leadmgmt.tenancy.lockouts.audit")
def _on_user_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    if not _first_signal(username or "", ip_address):
        return
    lockout_record(username=username or "", ip_address=ip_address,
                   path=getattr(request, "path", "") if request is not None else "")
