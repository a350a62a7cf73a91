"""A capture batch reads its own leads' accounts and assignments by index, whatever the statistics say.

An import puts tens of thousands of leads, accounts and assignments into a tenant faster than the statistics
follow. Planned on statistics taken when the tenant had a few dozen accounts and assignments, three statements of
every pipeline batch read the whole tenant: the scoring statement's account lock walked every account of the
tenant and probed each one's leads (4,000 accounts, 176 ms for a batch of 300 at 100,000 imported leads),
routing's "already routed?" check read every assignment of the tenant (87,000 rows, 48 ms), and stopping the
batch's running SLA clocks read every running clock of the tenant (87,000 rows, 32 ms), though leads never
assigned have none. Each batch grew slower as the import's leads were routed. And on statistics taken when the
import's leads were not scored yet, the accounts' scores read every scored lead of the tenant once per account
(26 million rows compared, 2.6 s a batch)."""
from __future__ import annotations

import json

import pytest
from django.db import connection
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.context import tenant_scope
from leads.models import Lead
from leads.statistics import lead_statistics_refresh
from routing.models import Assignment, SlaClock, Trigger
from routing.services.assign import lead_assign
from scoring.services import scoring_default_model_create
from tests.support.factories import AccountFactory, LeadFactory
from tests.support.routing import rep, rule, team
from tests.support.sla import sla_policy
from workspace.services.pipeline import captured_leads_process

pytestmark = pytest.mark.django_db

EARLIER = 10_000  # accounts, leads, assignments and clocks added after the statistics were taken: enough that
# reading them all costs the planner more than probing the batch's, on any statistics
BATCH = 30


def _copies(table: str, template_id, overrides: dict[str, str], numbered: str | None = None) -> None:
    """Copies of one row of `table`, set-based: EARLIER of them, numbered `i`, or one per row of the query
    `numbered` (which names its rows' number `i`, and what the overrides read)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                       "ORDER BY ordinal_position", [table])
        columns = [row[0] for row in cursor.fetchall() if row[0] != "id" or "id" in overrides]
        select = ", ".join(overrides.get(c, f'"{c}"') for c in columns)
        rows = f"({numbered}) AS n" if numbered else "generate_series(1, %s) AS i"
        cursor.execute(f'INSERT INTO {table} ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
                       f"SELECT {select} FROM {table} t, {rows} WHERE t.id = %s",
                       [template_id] if numbered else [EARLIER, template_id])


def _scans(plan: dict, relation: str):
    if plan.get("Relation Name") == relation:
        yield plan
    for child in plan.get("Plans", []):
        yield from _scans(child, relation)


@pytest.fixture(params=["before the import", "after the import, before scoring"])
def grown_tenant(request, tenant):
    """A tenant whose lead tables were analysed at one lead, then grown by EARLIER accounts, each with a scored
    lead, its assignment and its running SLA clock; in the second case the lead tables analysed again after the
    growth but before the leads were scored, as an import's own refresh finds them. (The app role may ANALYZE
    only through `lead_statistics_refresh`: the assignment and clock tables are never analysed here.)"""
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    sdrs = team(tenant)
    owner = rep(tenant, sdrs)
    rule(tenant, 10, team=sdrs)
    sla_policy(tenant, minutes=30)
    account = AccountFactory(tenant=tenant, domain="template.example")
    first = LeadFactory(tenant=tenant, email="first@template.example", account=account)
    with tenant_scope(tenant):
        lead_assign(lead=first, owner=owner, actor=SYSTEM, trigger=Trigger.CAPTURE)
    lead_statistics_refresh()
    _copies("leads_account", account.pk, {"domain": "'grown' || i || '.example'", "name": "'Grown ' || i"})
    _copies("leads_lead", first.pk, {"id": "gen_random_uuid()", "email": "'lead' || i || '@grown' || i || '.example'",
                                     "account_id": "n.account_id"},
            numbered=f"SELECT id AS account_id, substring(domain from '[0-9]+')::int AS i FROM leads_account "
                     f"WHERE tenant_id = {tenant.pk} AND domain LIKE 'grown%%'")
    grown = (f"SELECT id AS lead_id, 0 AS i FROM leads_lead WHERE tenant_id = {tenant.pk} "
             "AND email LIKE 'lead%%@grown%%'")
    assignment = Assignment.objects.unscoped().get(lead=first)
    _copies("routing_assignment", assignment.pk, {"lead_id": "n.lead_id"}, numbered=grown)
    clock = SlaClock.objects.unscoped().get(lead=first, stopped_at__isnull=True)
    _copies("routing_slaclock", clock.pk, {"lead_id": "n.lead_id"}, numbered=grown)
    refreshed = request.param == "after the import, before scoring"
    if refreshed:
        lead_statistics_refresh()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE leads_lead SET scored_at = now(), fit_score = 20, engagement_score = 5 "
                       "WHERE tenant_id = %s", [tenant.pk])
    return tenant, refreshed


def test_a_batch_reads_its_accounts_and_assignments_only(grown_tenant):
    tenant, refreshed = grown_tenant
    accounts = list(Lead.objects.unscoped().filter(tenant=tenant, email__startswith="lead")
                    .values_list("account_id", flat=True)[:BATCH])
    batch = [LeadFactory(tenant=tenant, email=f"new{n}@grown.example", account_id=account_id).pk
             for n, account_id in enumerate(accounts)]
    Lead.objects.unscoped().filter(pk__in=batch).update(pipeline_pending_since=timezone.now())
    explained: dict[str, list[dict]] = {"accounts": [], "account scores": [], "assignments": [], "clocks": []}

    def explain(execute, sql, params, many, context):
        watched = ("accounts" if "acct AS (" in sql else
                   "account scores" if sql.startswith("WITH agg AS") else
                   "assignments" if sql.startswith("SELECT") and "routing_assignment" in sql else
                   "clocks" if "UPDATE routing_slaclock" in sql else None)
        if watched and not sql.startswith("EXPLAIN"):
            with connection.cursor() as cursor:
                cursor.execute("SAVEPOINT explain_batch")
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
                document = cursor.fetchone()[0]
                explained[watched].append((json.loads(document) if isinstance(document, str) else document)[0]["Plan"])
                cursor.execute("ROLLBACK TO SAVEPOINT explain_batch")
        return execute(sql, params, many, context)

    with tenant_scope(tenant), connection.execute_wrapper(explain):
        run = captured_leads_process(tenant=tenant)
    assert run.claimed == BATCH and run.routed == BATCH
    too_many = []
    assert not explained["clocks"], "leads never assigned have no SLA clock to stop"
    checked = [("accounts", "leads_account"), ("assignments", "routing_assignment")]
    if refreshed:
        # Each account's leads by one look-up of its own. (On statistics of the tenant at one lead, any tenant
        # index looks as cheap as the account's: the import refreshes them every IMPORT_ANALYZE_ROWS rows.)
        checked.append(("account scores", "leads_lead"))
    for watched, relation in checked:
        scans = [scan for plan in explained[watched] for scan in _scans(plan, relation)]
        assert scans, watched
        for scan in scans:
            # A row read and thrown away by a filter counts as read.
            read = (scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0)) * scan["Actual Loops"]
            if read > 2 * BATCH:
                too_many.append((watched, read, {k: scan.get(k) for k in (
                    "Node Type", "Index Name", "Actual Rows", "Rows Removed by Filter", "Actual Loops")}))
    assert not too_many
