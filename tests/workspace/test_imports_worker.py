"""A CSV import run by a real Celery worker process: progress moves chunk by chunk while the API is polled,
and the capture pipeline then scores every imported lead and gives each one an owner."""
from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.services import DEFAULT_TEAM, membership_upsert, tenant_create
from leads.models import Lead
from tests.support.worker import real_worker, wait_until

ROWS = 600


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_an_import_with_progress_and_every_lead_is_scored_and_owned(tmp_path):
    provisioned = tenant_create(slug="acme-import", name="Acme Import", admin_email="admin@acme-import.example")
    tenant = provisioned.tenant
    for n in range(1, 4):
        membership_upsert(tenant=tenant, email=f"sdr{n}@acme-import.example", role=Role.SDR, team_name=DEFAULT_TEAM)
    client = APIClient()
    client.force_login(get_user_model().objects.get(email="admin@acme-import.example"))
    text = "email,first_name,company,job_title\n" + "".join(
        f"person{n}@company{n % 40}.example,P{n},Company {n % 40},{'VP Sales' if n % 2 else 'Intern'}\n"
        for n in range(ROWS)) + "broken@,Bad,Bad,Bad\n"
    created = client.post("/api/v1/imports/", {"file": SimpleUploadedFile("big.csv", text.encode())},
                          format="multipart").json()
    assert client.put(f"/api/v1/imports/{created['id']}/mapping/", {"mapping": created["mapping"]},
                      format="json").status_code == 200

    with real_worker(tmp_path, name="test-import", env={"IMPORT_CHUNK_ROWS": "25"}) as (_queue, process, log):
        assert client.post(f"/api/v1/imports/{created['id']}/run/").status_code == 202
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = client.get(f"/api/v1/imports/{created['id']}/").json()
            seen.append(body["progress"]["rows_done"])
            if body["state"] in ("finished", "failed"):
                break
            time.sleep(0.02)
        assert body["state"] == "finished", (body, log.read_text())
        assert body["counts"] == {"created": ROWS, "merged": 0, "possible_duplicates": 0, "refused": 1}
        assert any(0 < done < ROWS + 1 for done in seen), seen  # the bar moved between chunks
        assert seen == sorted(seen) and body["progress"]["rows_done"] == ROWS + 1
        assert body["progress"]["rows_per_second"] > 0 and body["progress"]["seconds_left"] == 0

        leads = Lead.objects.unscoped().filter(tenant=tenant)

        def scored_and_owned() -> bool:
            return (leads.count() == ROWS and not leads.filter(scored_at__isnull=True).exists()
                    and not leads.filter(owner__isnull=True).exists())

        wait_until(scored_and_owned, process, log, "every imported lead scored and owned", timeout=60)
    assert not leads.filter(pipeline_pending_since__isnull=False).exists()
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="import.finished").count() == 1
