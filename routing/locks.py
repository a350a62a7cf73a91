"""Every row lock routing takes, in one place and always in the same order: lead rows (by id),
then the round-robin slots of one pool (by user id).

Routing code never calls `select_for_update()` anywhere else, so two routers can only wait for
each other, never deadlock: a router holding pool P's slots never asks for a lead row.
"""
from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import Min

from leadmgmt.tenancy.models import Tenant
from leads.models import Lead

from .models import RoundRobinSlot


def lead_lock(*, lead: Lead) -> Lead:
    """Lock the lead's row and refresh `lead` from it (the caller's instance sees the current owner)."""
    tenant_field = Lead._meta.get_field("tenant")
    tenant = tenant_field.get_cached_value(lead, None)
    lead.refresh_from_db(from_queryset=Lead.objects.unscoped().filter(tenant_id=lead.tenant_id).select_for_update())
    if tenant is not None and tenant.pk == lead.tenant_id:  # keep the tenant instance: no query to re-read it
        tenant_field.set_cached_value(lead, tenant)
    return lead


def leads_lock(*, tenant: Tenant, lead_ids: Iterable) -> list[Lead]:
    """Lock many leads of one tenant in id order (bulk reassignment)."""
    ids = sorted({str(i) for i in lead_ids})
    return list(Lead.objects.unscoped().select_for_update(of=("self",)).filter(tenant=tenant, pk__in=ids)
                .select_related("owner").order_by("id"))


def round_robin_slots_lock(*, tenant: Tenant, pool: str, user_ids: Iterable[int],
                           weights: dict[int, int] | None = None) -> dict[int, RoundRobinSlot]:
    """Lock the slots of these users in `pool` (user-id order), creating missing ones first.

    A member new to the pool starts level with the least-served member (by served/weight), so a
    joiner neither floods the next leads nor waits for everybody else to catch up with them.
    Creating uses INSERT … ON CONFLICT DO NOTHING after the existing rows are locked: a second
    router that races to create the same slot waits on the first one's row and then sees it.
    """
    ids = sorted({int(i) for i in user_ids})
    if not ids:
        return {}
    weights = weights or {}
    slots_qs = RoundRobinSlot.objects.unscoped().filter(tenant=tenant, pool=pool)
    slots = {s.user_id: s for s in slots_qs.select_for_update().filter(user_id__in=ids).order_by("user_id")}
    missing = [i for i in ids if i not in slots]
    if missing:
        if slots:
            level = min(s.served / max(weights.get(s.user_id, 1), 1) for s in slots.values())
        else:
            level = (slots_qs.aggregate(m=Min("served"))["m"] or 0)
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {RoundRobinSlot._meta.db_table} (tenant_id, pool, user_id, served, seq) "  # noqa: S608
                "VALUES (%s, %s, %s, %s, 0) ON CONFLICT (tenant_id, pool, user_id) DO NOTHING",
                [(tenant.pk, pool, user_id, int(level * max(weights.get(user_id, 1), 1))) for user_id in missing],
            )
        slots.update({s.user_id: s for s in slots_qs.select_for_update().filter(user_id__in=missing)
                      .order_by("user_id")})
    return slots
