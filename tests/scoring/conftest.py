"""Scoring fixtures: a tenant with the default (seed 002) model, and helpers to score and read leads."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leads.models import Lead, Signal
from scoring.services import leads_score, scoring_default_model_create
from tests.support.factories import LeadFactory


@pytest.fixture
def model(tenant):
    return scoring_default_model_create(tenant=tenant, actor=SYSTEM)


@pytest.fixture
def scored(tenant, model):
    """Create a lead (fields as kwargs, `signals=[(type, days_ago), ...]`), score it, return it fresh."""

    def _scored(signals=(), now=None, **fields):
        now = now or timezone.now()
        fields.setdefault("email", f"p{Lead.objects.unscoped().count()}@corp.example")
        fields.setdefault("last_activity_at", now)
        lead = LeadFactory(tenant=tenant, job_title=fields.pop("job_title", ""), company_size=fields.pop("company_size", None),
                           industry=fields.pop("industry", ""), country=fields.pop("country", ""), **fields)
        Signal.objects.unscoped().bulk_create([
            Signal(tenant=tenant, lead=lead, type=type_, occurred_at=now - timedelta(days=days))
            for type_, days in signals
        ])
        leads_score(tenant=tenant, lead_ids=[lead.pk], cause="manual", now=now)
        return Lead.objects.unscoped().get(pk=lead.pk)

    return _scored


