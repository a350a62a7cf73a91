"""Possible-duplicate detection for a batch reads the leads that share a phone or an account with the batch, by
index, never the whole tenant: a hash join on the phone read every lead of the tenant once per capture batch
(39,200 rows for 300 new leads on a 40,000-lead tenant; quadratic over an import of 100,000)."""
from __future__ import annotations

import json

import pytest
from django.db import connection

from leads.services.duplicates import duplicate_pairs_detect
from tests.support.factories import LeadFactory, TenantFactory

pytestmark = pytest.mark.django_db


def _lead_scans(plan: dict):
    if plan.get("Relation Name") == "leads_lead":
        yield plan
    for child in plan.get("Plans", []):
        yield from _lead_scans(child)


def _detect_explained(tenant, batch) -> tuple[int, dict]:
    explained: list[dict] = []

    def explain(execute, sql, params, many, context):
        if "INSERT INTO leads_duplicatepair" in sql and not sql.startswith("EXPLAIN"):
            with connection.cursor() as cursor:
                cursor.execute("SAVEPOINT explain_detect")
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
                document = cursor.fetchone()[0]
                explained.append((json.loads(document) if isinstance(document, str) else document)[0]["Plan"])
                cursor.execute("ROLLBACK TO SAVEPOINT explain_detect")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        found = duplicate_pairs_detect(tenant=tenant, lead_ids=batch)
    [plan] = explained
    return found, plan


def _assert_reads_only_neighbours(plan: dict, batch: list) -> None:
    scans = list(_lead_scans(plan))
    assert scans
    for scan in scans:
        # The batch's own rows, or for each of them the one or two leads sharing its phone or account. A row read
        # and thrown away by a filter counts as read (a sequential scan per lead yields 0 rows but reads them all).
        read = (scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0)) * scan["Actual Loops"]
        assert read <= 3 * len(batch), {k: scan.get(k) for k in (
            "Node Type", "Index Name", "Index Cond", "Actual Rows", "Rows Removed by Filter", "Actual Loops")}


OLD = 20_000  # big enough that reading the tenant per probe costs the planner more than an index probe


def _old_leads(tenant, *, phones: bool) -> None:
    """OLD earlier leads of the tenant, copied set-based from one factory lead (a phone of their own each, or
    none), at 50 accounts' worth of domains."""
    template = LeadFactory(tenant=tenant, email="template@old.example", phone="+14150000000")
    overrides = {
        "id": "gen_random_uuid()",
        "email": "'old' || i || '@old' || (i %% 50) || '.example'",
        "phone": "'+1415' || lpad(i::text, 7, '0')" if phones else "''",
        "first_name": "'Old' || i",
    }
    columns = [f.column for f in template._meta.concrete_fields]
    select = ", ".join(overrides.get(c, f'"{c}"') for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f'INSERT INTO leads_lead ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
                       f"SELECT {select} FROM leads_lead, generate_series(1, %s) AS i WHERE id = %s",
                       [OLD, template.pk])


def _batch(tenant) -> list:
    """20 new leads, each sharing its phone with one earlier lead."""
    return [LeadFactory(tenant=tenant, email=f"new{n}@new.example", phone=f"+1415{n + 1:07d}",
                        first_name=f"New{n}", last_name="Lead").pk for n in range(20)]


def test_a_batch_reads_only_the_leads_it_may_pair_with():
    tenant = TenantFactory(slug="dup-plan")
    _old_leads(tenant, phones=True)
    batch = _batch(tenant)
    found, plan = _detect_explained(tenant, batch)
    assert found == 20  # each shares a phone with an old lead
    _assert_reads_only_neighbours(plan, batch)


def test_statistics_taken_before_the_tenant_had_phones_do_not_turn_the_lookup_into_a_scan():
    """A tenant whose leads had no phones when the table was analysed (n_distinct 1: '' everywhere), then an import
    full of phones: `phone = n.phone` was estimated to match every lead, and the planner read the whole tenant once
    per new lead with a phone (35 s for a 500-lead chunk at 100,000 leads)."""
    tenant = TenantFactory(slug="dup-plan-stale")
    _old_leads(tenant, phones=False)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leads_lead")
        cursor.execute("UPDATE leads_lead SET phone = '+1415' || lpad(substring(email from '^old([0-9]+)@'), 7, '0') "
                       "WHERE tenant_id = %s AND email LIKE 'old%%'", [tenant.pk])
    batch = _batch(tenant)
    found, plan = _detect_explained(tenant, batch)
    assert found == 20
    _assert_reads_only_neighbours(plan, batch)
