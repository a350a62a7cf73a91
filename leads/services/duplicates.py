"""Possible duplicates beyond email (seed 003: "dedup rules on email and phone number before assignment").

An exact email is one lead already (intake merges it). Two different leads that look like one person become a
DuplicatePair for the merge review queue: the same normalised phone (E.164, as capture stores it), or the same
first and last name at the same account. The tier says how sure: high when the phone and the name both match,
medium when one of them does. Detection is one INSERT … SELECT per batch of leads (the capture pipeline's,
an import's), or per tenant for a backfill; a pair is stored once, whichever of its leads came first, and a
pair a manager dismissed stays dismissed.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.models import Tenant
from leads.models import DuplicatePair, DuplicateStatus, LeadStatus

_SAME_NAME = ("n.last_name <> '' AND lower(o.first_name) = lower(n.first_name) "
              "AND lower(o.last_name) = lower(n.last_name)")
_SAME_PHONE = "n.phone <> '' AND o.phone = n.phone"

# The other side of each match is looked up by index for each lead of the batch ((tenant_id, phone) and
# (tenant_id, account_id)), through LATERAL subqueries kept apart from the join tree (`OFFSET 0`: a subquery
# the planner may not pull up): as a plain join, the planner hashed the batch and read every lead of the tenant
# once per batch (a seq scan growing with the tenant: quadratic over an import of 100,000), or, on a table not
# analysed yet, every lead of the tenant once per lead of the batch. The phone lookup repeats `phone <> ''`: on
# statistics taken while the tenant's leads had no phones (n_distinct 1), `phone = n.phone` alone is estimated to
# match the whole tenant, and the planner read every lead once per lead of the batch with a phone (192 ms a lead
# at 100,000 leads: a 500-lead import chunk took 35 s); with it, the estimate is the few rows it really is.
_DETECT_SQL = f"""
WITH n AS (SELECT l.id, l.email, l.phone, l.first_name, l.last_name, l.account_id FROM {{leads}}
           WHERE l.tenant_id = %(tenant)s AND l.status <> %(archived)s),
matches AS (
    SELECT n.id AS a, o.id AS b, true AS phone, ({_SAME_NAME}) AS name
    FROM n CROSS JOIN LATERAL (
        SELECT id, first_name, last_name FROM leads_lead
        WHERE tenant_id = %(tenant)s AND phone = n.phone AND phone <> '' AND id <> n.id AND status <> %(archived)s
        OFFSET 0) o
    WHERE n.phone <> ''
    UNION ALL
    SELECT n.id, o.id, ({_SAME_PHONE}), true
    FROM n CROSS JOIN LATERAL (
        SELECT id, phone, first_name, last_name FROM leads_lead
        WHERE tenant_id = %(tenant)s AND account_id = n.account_id AND id <> n.id AND status <> %(archived)s
        OFFSET 0) o
    WHERE n.account_id IS NOT NULL AND {_SAME_NAME}
),
pairs AS (
    SELECT LEAST(a, b) AS lead_id, GREATEST(a, b) AS other_id, bool_or(phone) AS phone, bool_or(name) AS name
    FROM matches GROUP BY 1, 2
),
inserted AS (
    INSERT INTO leads_duplicatepair (tenant_id, lead_id, other_id, reason, tier, status, detected_at)
    SELECT %(tenant)s, lead_id, other_id, CASE WHEN phone THEN 'phone' ELSE 'name_account' END,
           CASE WHEN phone AND name THEN 'high' ELSE 'medium' END, 'open', %(now)s
    FROM pairs ORDER BY lead_id, other_id
    ON CONFLICT (tenant_id, lead_id, other_id) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM inserted
"""  # noqa: S608 - the only placeholder filled by format is a fixed fragment


def duplicate_pairs_detect(*, tenant: Tenant, lead_ids: Iterable | None = None, now: datetime | None = None) -> int:
    """Record the possible duplicates of these leads (every lead of the tenant when None); returns how many new
    pairs. One statement; safe to run again (an existing pair, open or resolved, is left as it is)."""
    params = {"tenant": tenant.pk, "archived": LeadStatus.ARCHIVED, "now": now or timezone.now()}
    leads = "leads_lead l"
    if lead_ids is not None:
        params["ids"] = sorted({str(i) for i in lead_ids})
        if not params["ids"]:
            return 0
        # The batch's rows by primary key, one look-up each (as a filter or a join beside tenant_id, the planner
        # may read the whole tenant through a tenant index and keep the batch's).
        leads = ("unnest(%(ids)s::uuid[]) AS batch(id) "
                 "CROSS JOIN LATERAL (SELECT * FROM leads_lead WHERE id = batch.id OFFSET 0) l")
    with connection.cursor() as cursor:
        cursor.execute(_DETECT_SQL.format(leads=leads), params)
        return cursor.fetchone()[0]


def duplicate_pair_dismiss(*, pair: DuplicatePair, actor: Actor, now: datetime | None = None) -> bool:
    """Not the same person: close the pair (it is never raised again). False when it was not open."""
    now = now or timezone.now()
    with transaction.atomic():
        updated = (DuplicatePair.objects.for_tenant(pair.tenant_id)
                   .filter(pk=pair.pk, status=DuplicateStatus.OPEN)
                   .update(status=DuplicateStatus.DISMISSED, resolved_at=now, resolved_by=actor.user))
        if updated:
            audit_record(tenant=pair.tenant, actor=actor, action="duplicate.dismissed", object_type="leads.lead",
                         object_id=pair.lead_id,
                         changes={"status": [DuplicateStatus.OPEN, DuplicateStatus.DISMISSED]},
                         metadata={"pair_id": pair.pk, "other_id": str(pair.other_id), "reason": pair.reason,
                                   "tier": pair.tier})
    return bool(updated)
