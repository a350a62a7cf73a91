"""Training the learned model in a real Celery worker process (no eager mode): the API's 202, then the model and
every lead's probability."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from leadmgmt.tenancy.models import ApiScope
from leadmgmt.tenancy.services import tenant_create
from leads.models import Lead
from scoring.models import PredictiveModel, PredictiveStatus, ScoringModel
from tests.support.factories import api_key_for
from tests.support.funnel import funnel_leads
from tests.support.worker import real_worker, wait_until


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_trains_the_model_and_rescores_every_lead(tmp_path):
    with real_worker(tmp_path, name="test-predictive") as (_queue, process, log):
        tenant = tenant_create(slug="acme-learn", name="Acme Learn", admin_email="admin@acme-learn.example").tenant
        ScoringModel.objects.unscoped().filter(tenant=tenant).update(predictive_min_closed=100, predictive_min_won=10)
        funnel_leads(tenant=tenant, n=300, seed=21, closed=True, prefix="w")
        fresh = funnel_leads(tenant=tenant, n=10, seed=22, closed=False, prefix="x")
        _key, raw = api_key_for(tenant, scopes=[ApiScope.PREDICTIVE_TRAIN, ApiScope.PREDICTIVE_READ])
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        response = client.post("/api/v1/scoring/predictive/train/")
        assert response.status_code == 202, response.content
        job_id = response.json()["id"]
        assert client.post("/api/v1/scoring/predictive/train/").json()["id"] == job_id or \
            PredictiveModel.objects.unscoped().get(pk=job_id).status != PredictiveStatus.TRAINING

        def done():
            return PredictiveModel.objects.unscoped().get(pk=job_id).status != PredictiveStatus.TRAINING

        wait_until(done, process, log, "the training job", timeout=90)
        assert PredictiveModel.objects.unscoped().get(pk=job_id).status == PredictiveStatus.READY
        wait_until(lambda: not Lead.objects.unscoped().filter(pk__in=[f.id for f in fresh],
                                                              conversion_probability__isnull=True).exists(),
                   process, log, "the re-score with the learned model", timeout=60)
        body = client.get("/api/v1/scoring/predictive/").json()
        assert body["status"] == "ready" and body["last_job"]["id"] == job_id
