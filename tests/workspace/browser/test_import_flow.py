"""A marketing ops person imports a CSV in the browser: upload (a bad row and a duplicate of an existing lead),
the detected columns and the mapping, the dry run's counts and reasons, the run in a real Celery worker with the
progress bar polled to 100 %, the refused rows downloaded as CSV, and undo; every step at laptop (1366x768) and
phone (390x844) width without sideways scroll. Screenshots: import_<step>_<laptop|phone>.png under
artifacts/screenshots/."""
from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.services import DEFAULT_TEAM, membership_upsert, tenant_create
from leads.models import Lead
from tests.support.browser import ARTIFACTS, wait_for_js
from tests.support.factories import LeadFactory
from tests.support.worker import real_worker
from tests.support.workspace import PASSWORD
from workspace.models import ImportJob, ImportState

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}
ROWS = 240


def csv_text() -> str:
    rows = [f"person{n}@company{n % 12}.example,Person {n},Company {n % 12},{'VP Sales' if n % 2 else 'Analyst'},"
            f"Spring fair" for n in range(ROWS)]
    rows.insert(5, "not-an-email,Broken Row,Nowhere,Intern,Spring fair")
    rows.insert(9, "olga@oldco.example,Olga,Old Co,CFO,Spring fair")
    return "Email Address,Full Name,Company,Job Title,Event\n" + "\n".join(rows) + "\n"


def shoot(page, name: str) -> None:
    """At laptop then phone width: no sideways scroll, a screenshot; back to laptop width."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("laptop", LAPTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= size["width"], f"{page.url} is {width}px wide at {label} width"
        page.screenshot(path=str(ARTIFACTS / f"import_{name}_{label}.png"), full_page=True)
    page.set_viewport_size(LAPTOP)


def test_marketing_ops_uploads_maps_previews_runs_downloads_and_undoes(page, live_server, tmp_path):
    tenant = tenant_create(slug="acme-ui-import", name="Acme", admin_email="admin@acme-ui.example").tenant
    for n in range(1, 3):
        membership_upsert(tenant=tenant, email=f"sdr{n}@acme-ui.example", role=Role.SDR, team_name=DEFAULT_TEAM)
    membership_upsert(tenant=tenant, email="mo@acme-ui.example", role=Role.MARKETING_OPS, team_name=None)
    ops = get_user_model().objects.get(email="mo@acme-ui.example")
    ops.set_password(PASSWORD)
    ops.save()
    LeadFactory(tenant=tenant, email="olga@oldco.example", company="", job_title="")
    csv_file = tmp_path / "spring-fair.csv"
    csv_file.write_text(csv_text())

    page.set_viewport_size(LAPTOP)
    page.goto(f"{live_server.url}/accounts/login/?next=/queue/")
    page.fill("#id_username", "mo@acme-ui.example")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    page.click("nav.mainnav >> text=Imports")
    assert page.url.endswith("/imports/")
    shoot(page, "list_empty")

    page.set_input_files("#id_file", str(csv_file))
    with page.expect_navigation():
        page.click("#upload-form button[type=submit]")
    assert "UTF-8" in page.inner_text("main") and "comma" in page.inner_text("main")
    assert page.locator("#target_0").input_value() == "email"
    assert page.locator("#target_4").input_value() == "attributes"
    assert page.locator("#attribute_4").input_value() == "event"
    assert page.locator("#attribute_4").is_visible() and not page.locator("#attribute_0").is_visible()
    shoot(page, "mapping")

    with real_worker(tmp_path, name="test-import-ui", env={"IMPORT_CHUNK_ROWS": "1"}) as (_queue, _process, log):
        page.select_option("#target_4", "campaign")
        assert not page.locator("#attribute_4").is_visible()  # the name input goes with "Custom attribute…"
        with page.expect_navigation():
            page.click("#mapping-form button[type=submit]")
        # The dry run runs in the worker; the page polls its progress and reloads when it is done.
        deadline = time.monotonic() + 120
        while not page.locator("#preview-counts").count() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert page.locator("#preview-counts").count(), log.read_text()
        counts = {key: page.inner_text(f"#preview-counts [data-count={key}]")
                  for key in ("created", "merged", "possible_duplicate", "refused")}
        assert counts == {"created": str(ROWS), "merged": "1", "possible_duplicate": "0", "refused": "1"}
        assert "Enter a valid email address" in page.inner_text("#preview-rows")
        shoot(page, "preview")

        with page.expect_navigation():
            page.click("#run-button")
        seen = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if page.locator("#result-title").count():
                    break
                bar = page.locator("#import-bar")
                if bar.count():
                    value = int(bar.get_attribute("value") or 0)
                    if 0 < value < ROWS + 2 and not any(0 < v < ROWS + 2 for v in seen):
                        shoot(page, "running")  # mid-run: the bar, rows per second, time left
                    seen.add(value)
            except Exception:  # noqa: BLE001 - the page reloaded between the two calls
                pass
            time.sleep(0.1)
        job = ImportJob.objects.unscoped().get(tenant=tenant)
        assert job.state == ImportState.FINISHED, log.read_text()
        assert any(0 < value < ROWS + 2 for value in seen), seen  # the bar moved between chunks
    wait_for_js(page, "document.querySelector('#result-title') !== null")
    assert page.inner_text("[data-testid=import-percent]").startswith("100")
    assert page.locator("#import-bar").get_attribute("value") == str(ROWS + 2)
    assert page.inner_text("#result-counts [data-count=created]") == str(ROWS)
    shoot(page, "finished")

    with page.expect_download() as download:
        page.click("#refused-csv")
    refused = download.value.path().read_text().splitlines()
    assert refused[0].startswith("line,errors,Email Address")
    assert len(refused) == 2 and refused[1].startswith("7,") and "not-an-email" in refused[1]

    page.click("#undo-form button[type=submit]")
    page.wait_for_load_state()
    assert "Tick the box to confirm the undo." in page.inner_text("#undo-form")
    page.check("#id_confirm")
    with page.expect_navigation():
        page.click("#undo-form button[type=submit]")
    assert "Import undone" in page.inner_text("main")
    shoot(page, "undone")
    assert Lead.objects.unscoped().filter(tenant=tenant).count() == 1
    page.goto(f"{live_server.url}/imports/")
    assert "Undone" in page.inner_text("#imports")
    shoot(page, "list")
