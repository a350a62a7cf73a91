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


def test_a_batch_reads_only_the_leads_it_may_pair_with():
    tenant = TenantFactory(slug="dup-plan")
    for n in range(400):  # the tenant's earlier leads, each with a phone of its own
        LeadFactory(tenant=tenant, email=f"old{n}@old{n % 50}.example", phone=f"+1415555{n:04d}",
                    first_name=f"Old{n}", last_name="Lead")
    batch = [LeadFactory(tenant=tenant, email=f"new{n}@new.example", phone=f"+1415555{n:04d}",
                         first_name=f"New{n}", last_name="Lead").pk for n in range(20)]
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
        assert duplicate_pairs_detect(tenant=tenant, lead_ids=batch) == 20  # each shares a phone with an old lead
    [plan] = explained
    scans = list(_lead_scans(plan))
    assert scans
    for scan in scans:
        # The batch's own 20 rows, or for each of them the one or two leads sharing its phone or account.
        assert scan["Actual Rows"] * scan["Actual Loops"] <= 2 * len(batch), {k: scan.get(k) for k in ("Node Type", "Index Name", "Index Cond", "Actual Rows", "Actual Loops")}
