"""Scoring a list of leads (a capture batch) reads those leads by id, whatever the table's statistics say.

On a tenant's first thousands of leads the statistics are stale (autovacuum analyses a minute later): the
planner then guessed one lead for the tenant and the UPDATE read every lead of the tenant once per scored
row (300 leads of a batch x 4,000 in the tenant: 1.2 million row comparisons, 2 to 5 s per batch in the
capture-to-owner bench; with the ids named, 0.1 s)."""
from __future__ import annotations

import json

import pytest
from django.db import connection
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leads.models import Lead
from scoring.services import leads_score, scoring_default_model_create
from tests.support.factories import LeadFactory, TenantFactory

pytestmark = pytest.mark.django_db


def _plans_of_updates(plan: dict):
    """Every leads_lead row source under the plan's UPDATE of leads_lead (scans and their actual rows)."""
    if plan.get("Node Type") == "ModifyTable" and plan.get("Relation Name") == "leads_lead":
        stack = list(plan.get("Plans", []))
        while stack:
            node = stack.pop()
            if node.get("Relation Name") == "leads_lead":
                yield node
            stack += node.get("Plans", [])
    for child in plan.get("Plans", []):
        yield from _plans_of_updates(child)


def test_scoring_a_batch_reads_only_its_leads_under_stale_statistics():
    tenant = TenantFactory(slug="batch-plan")
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    LeadFactory.create_batch(300, tenant=tenant)  # the tenant's earlier leads: never analysed
    batch = [lead.pk for lead in LeadFactory.create_batch(20, tenant=tenant, job_title="CTO")]
    explained: list[dict] = []

    def explain(execute, sql, params, many, context):
        if sql.startswith("WITH f AS") and "UPDATE leads_lead" in sql:
            with connection.cursor() as cursor:
                cursor.execute("SAVEPOINT explain_batch")
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
                document = cursor.fetchone()[0]
                explained.append((json.loads(document) if isinstance(document, str) else document)[0]["Plan"])
                cursor.execute("ROLLBACK TO SAVEPOINT explain_batch")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        run = leads_score(tenant=tenant, lead_ids=batch, cause="capture", now=timezone.now())
    assert run.updated == 20
    assert Lead.objects.unscoped().filter(pk__in=batch, scored_at__isnull=False).count() == 20
    [plan] = explained
    scans = list(_plans_of_updates(plan))
    assert scans, "the UPDATE reads leads_lead"
    for scan in scans:
        # Each scan of leads_lead under the UPDATE yields only the batch's rows, not the tenant's 320.
        assert scan["Actual Rows"] * scan["Actual Loops"] <= len(batch), scan
