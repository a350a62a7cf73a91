"""Issue 16's loop end to end, over the public contracts only: a synthetic funnel with a known propensity, 2,000
outcomes through `POST /api/v1/outcomes/`, training through `POST /api/v1/scoring/predictive/train/`, then 1,000 fresh
people posted through the intake (the web form's endpoint and the batch intake of an integration) with their
signals through `POST /api/v1/signals/`, scored by the capture pipeline and the signal processing as the workers do:
`conversion_probability` ranks the ones who would buy clearly better than the seed model's score and is calibrated,
and the draft suggested from the learned model beats the seed model on the backtest."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from sklearn.metrics import roc_auc_score

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import ApiScope
from leads.models import Lead, Signal
from leads.services.signals import signals_process
from scoring.models import ScoringModel
from scoring.predictive.training import calibration_error
from scoring.services import leads_score
from tests.support.factories import api_key_for
from tests.support.funnel import funnel_leads, funnel_people, outcomes_sync_post
from tests.support.intake import ALLOWED_ORIGIN, post_json
from workspace.services.pipeline import captured_leads_drain

pytestmark = pytest.mark.slow
WEB = 40  # people through the public web intake, each from an address of their own; the rest in one batch


def key_client(tenant, scopes) -> APIClient:
    _key, raw = api_key_for(tenant, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_outcomes_in_training_and_fresh_intake_leads_ranked_by_the_learned_model(
        tenant, model, lead_form, client, django_capture_on_commit_callbacks):
    # The tenant's closed history: 2,000 leads whose outcomes arrive from another CRM through the sync API.
    closed = funnel_leads(tenant=tenant, n=2000, seed=51, closed=True, prefix="hist", with_outcomes=False)
    leads_score(tenant=tenant, cause="manual", slices=1)
    sync = key_client(tenant, [ApiScope.OUTCOMES_WRITE])
    outcomes_sync_post(sync, closed, amount="12000.00")

    ops = key_client(tenant, [ApiScope.PREDICTIVE_TRAIN, ApiScope.PREDICTIVE_READ, ApiScope.LEADS_READ,
                              ApiScope.LEADS_WRITE, ApiScope.SIGNALS_WRITE])
    with django_capture_on_commit_callbacks(execute=True):
        assert ops.post("/api/v1/scoring/predictive/train/").status_code == 202
    status = ops.get("/api/v1/scoring/predictive/").json()
    assert status["status"] == "ready" and status["training_size"]["closed"] == 2000

    # 1,000 fresh people of the same funnel come in through the intake, then their behaviour through signals.
    people = funnel_people(n=1000, seed=52, prefix="fresh")
    for n, person in enumerate(people[:WEB]):
        response = post_json(client, person.intake, form=lead_form, HTTP_ORIGIN=ALLOWED_ORIGIN,
                             REMOTE_ADDR=f"198.51.100.{n + 1}")
        assert response.status_code == 201, response.content
    response = ops.post("/api/v1/leads/batch/", [p.intake for p in people[WEB:]], format="json")
    assert response.status_code == 207
    assert {r["result"] for r in response.json()["results"]} == {"created"}
    with tenant_scope(tenant):
        captured_leads_drain(tenant=tenant)  # the capture pipeline's work: score, then route
    now = timezone.now()
    signals = [{"email": p.email, "type": kind, "occurred_at": (now - timedelta(days=days)).isoformat()}
               for p in people for kind, days in p.signals]
    for start in range(0, len(signals), 1000):
        response = ops.post("/api/v1/signals/", signals[start:start + 1000], format="json")
        assert response.status_code in (200, 202, 207), response.content
    with tenant_scope(tenant):  # the signal worker's work: each signal processed with its lead's re-score
        pending = list(Signal.objects.filter(processed_at__isnull=True).values_list("pk", flat=True))
        assert len(pending) == len(signals)
        signals_process(tenant=tenant, signal_ids=pending)

    leads = {lead.email: lead for lead in Lead.objects.unscoped().filter(email__in=[p.email for p in people])}
    assert len(leads) == 1000
    y = np.array([p.won for p in people], dtype=int)
    probability = np.array([leads[p.email].conversion_probability for p in people])
    seed_score = np.array([leads[p.email].score for p in people])
    assert ((0 < probability) & (probability < 1)).all()
    learned_auc, seed_auc = roc_auc_score(y, probability), roc_auc_score(y, seed_score)
    assert learned_auc > seed_auc + 0.08, (learned_auc, seed_auc)
    assert calibration_error(y, probability) < 0.08
    assert abs(probability.mean() - np.mean([p.propensity for p in people])) < 0.04
    assert all(leads[p.email].predictive_reasons for p in people[:50])  # every score says why, in words

    # The points draft suggested from the learned model beats the seed model on the tenant's backtest.
    draft = ops.post("/api/v1/scoring/predictive/suggest/", {}, format="json")
    assert draft.status_code == 201, draft.content
    published = ScoringModel.objects.unscoped().get(tenant=tenant, status="published")
    backtest = {name: ops.get(f"/api/v1/scoring/models/{pk}/backtest/").json()
                for name, pk in (("seed", published.pk), ("draft", draft.json()["id"]))}
    assert backtest["seed"]["count"] == backtest["draft"]["count"] == 2000
    assert backtest["draft"]["auc"] > backtest["seed"]["auc"] + 0.05, backtest
