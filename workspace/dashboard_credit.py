"""Credit where it happened: SQL fragments that say which rep owned a lead during a period and who did what on
it, for the dashboards, the per-rep breakdowns and a rep's own numbers.

A lead counts for every rep who owned it before the period's end (routing's Assignment history), not only its
owner now: a rep whose leads were moved on keeps them. Actions go to the person who did them: first contact to
the actor of the contact activity (else the owner at that moment), acceptance, rejection, disqualification and
conversion to the actor in the audit trail (a rejection by an API key: the owner it was taken from), a
qualification to the opportunity's `qualified_by` (else the SDR in the `lead.qualified` event). Leads without
any assignment or audit history (imported, or made by hand) fall back to their current owner. Alias `l` is
`leads_lead`; every lookup is tenant-scoped and uses an index on (tenant, lead …) or (tenant, object …).
"""
from __future__ import annotations

CONTACT_KINDS_SQL = "('call', 'email', 'meeting')"


def owned_by_sql(*, user: str = "%(f_owner)s") -> str:
    """True when the lead `l` was owned by `user` before %(until)s (or, with no assignment history, is now)."""
    return f"""(EXISTS (SELECT 1 FROM routing_assignment oa
                    WHERE oa.tenant_id = l.tenant_id AND oa.lead_id = l.id AND oa.owner_id = {user}
                      AND oa.at < %(until)s)
             OR (l.owner_id = {user} AND NOT EXISTS (SELECT 1 FROM routing_assignment ob
                                                    WHERE ob.tenant_id = l.tenant_id AND ob.lead_id = l.id)))"""


# Columns a cohort with credit adds (after CREDIT_JOINS_SQL): user ids, NULL when nobody did it.
CREDIT_COLUMNS_SQL = """
               hist.any AS has_history,
               CASE WHEN l.first_contacted_at IS NOT NULL
                    THEN COALESCE(fa.actor_id, fo.owner_id, CASE WHEN NOT hist.any THEN l.owner_id END) END AS contact_by,
               CASE WHEN l.rejection_reason <> '' AND l.status <> 'unqualified'
                    THEN COALESCE(ev.rejected_by, l.owner_id) END AS rejected_by,
               CASE WHEN l.status = 'unqualified' THEN COALESCE(ev.disqualified_by, l.owner_id) END AS disqualified_by,
               COALESCE(op.qualified_by_id, ev.qualified_by) AS qualified_by,
               CASE WHEN l.status = 'converted' THEN COALESCE(ev.converted_by, l.owner_id) END AS converted_by,
               CASE WHEN l.accepted_at IS NOT NULL OR ev.accepted_by IS NOT NULL
                    THEN COALESCE(ev.accepted_by, l.owner_id) END AS accepted_by"""

CREDIT_JOINS_SQL = f"""
        LEFT JOIN LATERAL (SELECT count(*) > 0 AS any FROM routing_assignment h
                           WHERE h.tenant_id = l.tenant_id AND h.lead_id = l.id) hist ON true
        LEFT JOIN LATERAL (SELECT a.actor_id FROM leads_activity a
                           WHERE a.tenant_id = l.tenant_id AND a.lead_id = l.id AND a.actor_id IS NOT NULL
                             AND a.kind IN {CONTACT_KINDS_SQL} AND a.occurred_at <= l.first_contacted_at
                           ORDER BY a.occurred_at DESC, a.id DESC LIMIT 1) fa ON l.first_contacted_at IS NOT NULL
        LEFT JOIN LATERAL (SELECT s.owner_id FROM routing_assignment s
                           WHERE s.tenant_id = l.tenant_id AND s.lead_id = l.id AND s.at <= l.first_contacted_at
                           ORDER BY s.at DESC, s.id DESC LIMIT 1) fo ON l.first_contacted_at IS NOT NULL
        LEFT JOIN LATERAL (
          SELECT (array_agg(COALESCE(e.actor_user_id, (e.metadata->>'previous_owner_id')::bigint)
                            ORDER BY e.at DESC, e.id DESC) FILTER (WHERE e.action = 'lead.rejected'))[1] AS rejected_by,
                 (array_agg(e.actor_user_id ORDER BY e.at DESC, e.id DESC)
                  FILTER (WHERE e.action = 'lead.disqualified'))[1] AS disqualified_by,
                 (array_agg(COALESCE(e.actor_user_id, (e.metadata->>'sdr_id')::bigint) ORDER BY e.at, e.id)
                  FILTER (WHERE e.action = 'lead.qualified'))[1] AS qualified_by,
                 (array_agg(e.actor_user_id ORDER BY e.at DESC, e.id DESC)
                  FILTER (WHERE e.action = 'lead.converted' OR (e.action = 'lead.accepted' AND e.changes ? 'status')))[1]
                   AS converted_by,
                 (array_agg(e.actor_user_id ORDER BY e.at, e.id) FILTER (WHERE e.action = 'lead.accepted'))[1]
                   AS accepted_by
          FROM audit_auditevent e
          WHERE e.tenant_id = l.tenant_id AND e.object_type = 'leads.lead' AND e.object_id = l.id::text
            AND e.action IN ('lead.rejected', 'lead.disqualified', 'lead.qualified', 'lead.accepted', 'lead.converted')
        ) ev ON true
        LEFT JOIN (SELECT DISTINCT ON (o.lead_id) o.lead_id, o.qualified_by_id FROM leads_opportunity o
                   WHERE o.tenant_id = %(tenant)s AND o.qualified_by_id IS NOT NULL
                   ORDER BY o.lead_id, o.created_at, o.id) op ON op.lead_id = l.id"""


def owner_pairs_sql(cohort: str = "cohort") -> str:
    """(lead id `id`, rep `k`) for every rep who owned a cohort lead before %(until)s; a lead without
    assignment history pairs with its current owner."""
    return f"""
          SELECT c.id, a.owner_id AS k FROM {cohort} c
          JOIN routing_assignment a ON a.tenant_id = %(tenant)s AND a.lead_id = c.id
          WHERE a.owner_id IS NOT NULL AND a.at < %(until)s
          UNION
          SELECT c.id, c.owner_id FROM {cohort} c WHERE c.owner_id IS NOT NULL AND NOT c.has_history"""
