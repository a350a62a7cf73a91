"""The round-robin slots lock: step 2 of the lock order in leads/locks.py, which locks the lead rows first.

Routers lock a pool's slots here only, in user-id order and after the lead they route, so two routers can only
wait for each other, never deadlock: a router holding pool P's slots never asks for a lead row.
"""
from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import Min

from leadmgmt.tenancy.models import Tenant

from .models import RoundRobinSlot


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
    slots_qs = RoundRobinSlot.objects.for_tenant(tenant).filter(pool=pool)
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
