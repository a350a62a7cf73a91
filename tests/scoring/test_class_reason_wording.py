"""The lead class reason reads as English at every engagement level (never "shows none intent")."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("signals", "phrase"), [
    ([], "engagement 0 shows no buying intent yet"),
    ([("pricing_page_view", 1)], "engagement 20 shows some interest"),
    ([("pricing_page_view", 1), ("demo_request", 2)], "engagement 50 shows buying intent now"),
])
def test_class_reason_says_what_the_engagement_means(scored, signals, phrase):
    lead = scored(job_title="VP Engineering", company_size=250, signals=signals)
    assert phrase in lead.lead_class_reason
    assert "none intent" not in lead.lead_class_reason and "some intent" not in lead.lead_class_reason


def test_stored_reasons_in_the_old_wording_are_rewritten_once(tenant, other_tenant, scored):
    from importlib import import_module
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    from leads.models import Lead

    reword = import_module("scoring.migrations.0004_lead_class_reason_wording").reword
    lead = scored(job_title="VP Engineering")
    old = "Fit 20 is medium (high from 40, medium from 15); engagement 0 shows none intent (ready from 30, some from 1)"
    Lead.objects.unscoped().filter(pk=lead.pk).update(lead_class_reason=old)

    for _ in range(2):  # idempotent
        reword(apps, SimpleNamespace(connection=connection))

    assert Lead.objects.unscoped().get(pk=lead.pk).lead_class_reason == old.replace(
        "shows none intent", "shows no buying intent yet")
