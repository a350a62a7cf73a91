"""Account scores: one set-based statement turns the fit and engagement scores of an account's leads into
the account's score and the parts that explain it.

The formula (settings on the tenant's published ScoringModel, `account_*`):

    engaged people  = the account's leads whose engagement score >= account_engaged_min
    best fit        = the highest fit score of its leads (the company, at its best-qualified contact)
    best engagement = the highest engagement score of its leads
    others          = account_others_percent % of the engagement of the engaged people beyond the best one
                      (their engagement sum minus the best engagement), rounded
    breadth bonus   = account_breadth_points × (engaged people − 1), at most account_breadth_cap
    account score   = best fit + best engagement + others + breadth bonus, clamped to 0–100

So an account with one lead scores exactly as that lead (fit + engagement, clamped), and every further
engaged person at the company adds both a share of their engagement and the breadth bonus: several people
of one company showing interest count for more than one. Erased people and unscored leads do not count; an
account with no scored lead has no score (NULL).

The statement runs in the scoring transaction right after the leads' own (`scoring.services`), for the
distinct accounts of the scored batch (their rows locked by the leads' statement, in id order, after the
leads: the lock order of leads.locks), or for every account of the tenant after a whole-tenant run; `accounts_score` is the same
for a whole tenant on its own (`manage.py accounts_score`, `tasks.accounts_score_task`). Only rows whose score
or parts change are written, so running it again changes nothing.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from leadmgmt.tenancy.models import Tenant

from .models import ModelStatus, ScoringModel

# Each part stored on the account: (column, SQL over the computed row `s`).
_PARTS = (
    ("score", "s.score"),
    ("scored_leads", "s.scored_leads"),
    ("engaged_leads", "s.engaged"),
    ("fit_max", "s.fit_max"),
    ("fit_avg", "s.fit_avg"),
    ("engagement_max", "s.eng_max"),
    ("engagement_sum", "s.eng_sum"),
    ("others_points", "s.others"),
    ("breadth_bonus", "s.breadth"),
    ("last_engaged_at", "s.last_engaged_at"),
)


def account_settings(model: ScoringModel | None) -> dict:
    """The formula's parameters of a scoring model (the field defaults when the tenant has none)."""
    model = model if model is not None else ScoringModel()
    return {
        "a_engaged": max(1, int(model.account_engaged_min)),
        "a_share": min(100, int(model.account_others_percent)),
        "a_points": int(model.account_breadth_points),
        "a_cap": int(model.account_breadth_cap),
    }


def accounts_score_sql(*, only_listed: bool) -> str:
    """The UPDATE of the accounts' scores (parameters: tenant, now, a_*; `a_ids` when `only_listed`); it
    writes only the accounts whose score or parts change.

    Every account of a tenant: one join of the accounts and their scored leads, grouped. Listed accounts (a
    capture batch's): each one's leads aggregated by a look-up of its own (`lead_tenant_account`). As a join, the
    planner may read every scored lead of the tenant once per account: on statistics taken when an import's leads
    were not scored yet (the import's own ANALYZE), a batch of 300 accounts compared 26 million rows (2.6 s)."""
    engaged = "l.engagement_score >= %(a_engaged)s"
    aggregates = (
        "count(l.id) AS scored_leads, "
        f"count(l.id) FILTER (WHERE {engaged}) AS engaged, max(l.fit_score) AS fit_max, "
        "round(avg(l.fit_score))::int AS fit_avg, max(l.engagement_score) AS eng_max, "
        f"COALESCE(sum(l.engagement_score) FILTER (WHERE {engaged}), 0) AS eng_sum, "
        f"max(l.last_activity_at) FILTER (WHERE {engaged}) AS last_engaged_at"
    )
    scored = "l.tenant_id = %(tenant)s AND l.account_id = a.id AND l.scored_at IS NOT NULL AND l.erased_at IS NULL"
    if only_listed:
        agg = (f"SELECT a.id, x.* FROM leads_account a CROSS JOIN LATERAL (SELECT {aggregates} FROM leads_lead l "
               f"WHERE {scored}) x WHERE a.tenant_id = %(tenant)s AND a.id = ANY(%(a_ids)s::bigint[])")
    else:
        agg = (f"SELECT a.id, {aggregates} FROM leads_account a LEFT JOIN leads_lead l ON {scored} "
               "WHERE a.tenant_id = %(tenant)s GROUP BY a.id")
    set_parts = ", ".join(f"{column} = {expr}" for column, expr in _PARTS)
    old = ", ".join(f"a.{column}" for column, _ in _PARTS)
    new = ", ".join(expr for _, expr in _PARTS)
    return (
        f"WITH agg AS ({agg}), "
        "p AS (SELECT agg.*, CASE WHEN agg.engaged > 0 "
        "THEN round((agg.eng_sum - agg.eng_max) * %(a_share)s / 100.0)::int ELSE 0 END AS others, "
        "LEAST(%(a_cap)s, %(a_points)s * GREATEST(agg.engaged - 1, 0)) AS breadth FROM agg), "
        "s AS (SELECT p.*, CASE WHEN p.scored_leads > 0 THEN GREATEST(0, LEAST(100, COALESCE(p.fit_max, 0) "
        "+ COALESCE(p.eng_max, 0) + p.others + p.breadth)) END AS score FROM p) "
        f"UPDATE leads_account a SET {set_parts}, scored_at = %(now)s FROM s "
        f"WHERE a.id = s.id AND a.tenant_id = %(tenant)s AND ({old}) IS DISTINCT FROM ({new})"
    )


# The CTE of the leads' scoring statement that locks the batch's accounts (ascending id, after the leads: the
# lock order of leads.locks); the statement returns their ids for `accounts_score_run`. The accounts are read by
# primary key, their ids taken from the batch's leads first. The tenant condition is checked on each row read
# (`+ 0`), not used to find rows: on statistics taken when the tenant had a few dozen accounts the planner reads
# the tenant's accounts through its tenant index, as cheap as the primary key's by its guess, and throws away all
# but the batch's (4,000 accounts, 176 ms, for an import's batch of 300 leads). The leads are read by primary key
# too: a lead without an account adds a NULL to the array, which matches nothing (`account_id IS NOT NULL` made
# the planner read the tenant's leads with an account, 97,700 of them, when it guessed few had one).
ACCOUNTS_LOCK_CTE = (
    "acct AS (SELECT a.id FROM leads_account a WHERE a.id = ANY(ARRAY(SELECT l.account_id FROM leads_lead l "
    "WHERE l.tenant_id = %(tenant)s AND l.id = ANY(%(ids)s::uuid[]))) "
    "AND a.tenant_id + 0 = %(tenant)s ORDER BY a.id FOR UPDATE OF a)"
)
ACCOUNTS_LOCKED = "(SELECT COALESCE(array_agg(acct.id), '{}') FROM acct)"


def accounts_score_run(cursor, *, tenant_id: int, model: ScoringModel | None, now: datetime,
                       account_ids: Sequence[int] | None = None) -> int:
    """Recompute, in the caller's transaction, these accounts (every account of the tenant when None): one
    UPDATE. Its rows locked beforehand (ACCOUNTS_LOCK_CTE), a statement of its own sees every lead score
    committed before the locks were granted. Returns how many accounts changed."""
    params = {"tenant": tenant_id, "now": now, **account_settings(model)}
    if account_ids is not None:
        if not account_ids:
            return 0
        params["a_ids"] = list(account_ids)
    cursor.execute(accounts_score_sql(only_listed=account_ids is not None), params)
    return cursor.rowcount


def accounts_score(*, tenant: Tenant, now: datetime | None = None) -> int:
    """Recompute every account score of a tenant from its leads' current scores, with the published model's
    settings; returns how many accounts changed. Idempotent: a second run changes nothing."""
    now = now or timezone.now()
    model = ScoringModel.objects.for_tenant(tenant).filter(status=ModelStatus.PUBLISHED).first()
    with transaction.atomic(), connection.cursor() as cursor:
        return accounts_score_run(cursor, tenant_id=tenant.pk, model=model, now=now)
