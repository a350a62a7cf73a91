"""Source and campaign costs in (issue 16 point 7): one month's spend per source (and optionally campaign), upserted
by (month, source, campaign) from `POST /api/v1/costs/` (the admin edits rows one by one through its ModelAdmin).

`source_costs_upsert` is set-based: one INSERT … ON CONFLICT for 1 or 1,000 items, one audit event. A row whose
amount and currency are already those sent is not touched (its `updated_at` stays), so a retry changes nothing.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record

COST_AMOUNT_MAX = Decimal("999999999999.99")  # SourceCost.amount: 14 digits, 2 after the point


@dataclass(frozen=True)
class CostInput:
    month: dt.date  # the first day of the month
    source: str
    campaign: str
    amount: Decimal
    currency: str

    @property
    def key(self) -> tuple[dt.date, str, str]:
        return self.month, self.source, self.campaign


@dataclass
class CostUpsertResult:
    """Per item, in input order: `created`, `updated` or `unchanged`, with the row's id."""

    ids: list[int]
    statuses: list[str]

    def counts(self) -> dict[str, int]:
        return {status: self.statuses.count(status) for status in ("created", "updated", "unchanged")}


UPSERT_SQL = """
    WITH items AS (
        SELECT * FROM unnest(%(months)s::date[], %(sources)s::text[], %(campaigns)s::text[], %(amounts)s::numeric[],
                             %(currencies)s::text[]) AS i(month, source, campaign, amount, currency)
    ), written AS (
        INSERT INTO workspace_sourcecost AS c (tenant_id, month, source, campaign, amount, currency, created_at,
                                              updated_at)
        SELECT %(tenant)s, month, source, campaign, amount, currency, %(now)s, %(now)s FROM items
        ON CONFLICT (tenant_id, month, source, campaign) DO UPDATE
            SET amount = EXCLUDED.amount, currency = EXCLUDED.currency, updated_at = EXCLUDED.updated_at
            WHERE (c.amount, c.currency) IS DISTINCT FROM (EXCLUDED.amount, EXCLUDED.currency)
        RETURNING c.id, c.month, c.source, c.campaign, (c.xmax = 0) AS inserted
    )
    SELECT i.month, i.source, i.campaign, COALESCE(w.id, c.id),
           CASE WHEN w.id IS NULL THEN 'unchanged' WHEN w.inserted THEN 'created' ELSE 'updated' END
    FROM items i
    LEFT JOIN written w ON (w.month, w.source, w.campaign) = (i.month, i.source, i.campaign)
    LEFT JOIN workspace_sourcecost c ON c.tenant_id = %(tenant)s
         AND (c.month, c.source, c.campaign) = (i.month, i.source, i.campaign)
"""


@transaction.atomic
def source_costs_upsert(*, tenant, items: list[CostInput], actor: Actor) -> CostUpsertResult:
    """Write each item's cost (keys must be distinct: the caller refuses a batch naming one twice), in one
    statement, and audit what changed. An unchanged row (a retry) is neither written nor audited."""
    if not items:
        return CostUpsertResult(ids=[], statuses=[])
    with connection.cursor() as cursor:
        cursor.execute(UPSERT_SQL, {
            "tenant": tenant.pk, "now": timezone.now(), "months": [i.month for i in items],
            "sources": [i.source for i in items], "campaigns": [i.campaign for i in items],
            "amounts": [i.amount for i in items], "currencies": [i.currency for i in items]})
        found = {(month, source, campaign): (pk, status) for month, source, campaign, pk, status in cursor.fetchall()}
    ids = [found[i.key][0] for i in items]
    statuses = [found[i.key][1] for i in items]
    result = CostUpsertResult(ids=ids, statuses=statuses)
    changed = [i for i, status in zip(items, statuses, strict=True) if status != "unchanged"]
    if changed:
        audit_record(tenant=tenant, actor=actor, action="source_costs.upserted", object_type="workspace.sourcecost",
                     object_id=f"{tenant.pk}:batch",
                     metadata={**result.counts(), "items": [
                         {"month": i.month.isoformat(), "source": i.source, "campaign": i.campaign,
                          "amount": str(i.amount), "currency": i.currency} for i in changed[:100]],
                         "ids": [pk for pk, s in zip(ids, statuses, strict=True) if s != "unchanged"]})
    return result
