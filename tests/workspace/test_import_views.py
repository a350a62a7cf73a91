"""The CSV import pages (`/imports/…`): the list and upload with field messages, detection and the mapping form
(suggested, remembered or not, errors per column), the dry run's counts and reasons, the run's progress part, the
result with refused rows and undo (confirmed; refused when leads were worked); roles, tenants, CSRF, query counts."""
from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leads.models import Activity, ActivityKind, Lead
from tests.support.factories import LeadFactory
from tests.support.workspace import person, signed_in_client
from workspace.models import ImportJob, ImportMapping, ImportState
from workspace.services import imports as import_services
from workspace.services.imports import ImportConflict, import_preview, import_upload
from workspace.tasks import import_preview_task, imports_sweep_task

pytestmark = pytest.mark.django_db

CSV = ("Email,First Name,Company,Fav colour\n"
       "ann@example.com,Ann,Acme,red\n"
       "not-an-email,Bob,Bad,blue\n"
       "old@example.com,Olga,Old Co,green\n")


@pytest.fixture
def admin(tenant):
    return person(tenant, role=Role.ADMIN, username="admin@acme.test")


@pytest.fixture
def client(tenant, admin):
    return signed_in_client(admin, tenant)


def upload(client, text=CSV, name="leads.csv"):
    content = text.encode() if isinstance(text, str) else text
    return client.post(reverse("imports"), {"file": SimpleUploadedFile(name, content, content_type="text/csv")})


def uploaded(client, text=CSV) -> ImportJob:
    response = upload(client, text)
    assert response.status_code == 302, response.content
    return ImportJob.objects.unscoped().get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))


def mapping_post(job: ImportJob, **overrides) -> dict:
    """The mapping form as the page fills it (the suggestion), with `overrides` {field: value}."""
    data = {"remember": "on"}
    for index, target in enumerate(job.mapping):
        if target.startswith("attributes."):
            data[f"target_{index}"], data[f"attribute_{index}"] = "attributes", target.split(".", 1)[1]
        else:
            data[f"target_{index}"] = target
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def previewed(client, text=CSV) -> ImportJob:
    """Mapped as suggested, and its dry run done (the task runs eagerly after commit here)."""
    job = uploaded(client, text)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(reverse("import-mapping", args=[job.pk]), mapping_post(job))
    assert response.status_code == 302, response.content.decode()
    job.refresh_from_db()
    return job


def test_the_nav_shows_imports_to_admins_and_marketing_ops_only(tenant, admin):
    ops = person(tenant, role=Role.MARKETING_OPS)
    manager = person(tenant, role=Role.MANAGER)
    assert 'href="/imports/"' in signed_in_client(admin, tenant).get("/queue/").content.decode()
    assert 'href="/imports/"' in signed_in_client(ops, tenant).get("/queue/").content.decode()
    assert 'href="/imports/"' not in signed_in_client(manager, tenant).get("/queue/").content.decode()


def test_upload_detects_the_file_and_shows_the_mapping_form_with_suggestions(client):
    job = uploaded(client, ("\ufeffE-mail;First name;Société\n" "zoé@example.com;Zoé;Café\n").encode("utf-8"))
    page = client.get(reverse("import-page", args=[job.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert "UTF-8 with BOM" in body and "semicolon" in body and "first row is a header" in body
    assert "zoé@example.com" in body
    assert job.mapping == ["email", "first_name", "attributes.societe"]
    assert '<option value="email" selected>' in body and '<option value="first_name" selected>' in body
    assert '<option value="attributes" selected>' in body and 'value="societe"' in body


def test_a_latin1_file_is_detected(client):
    job = uploaded(client, "email,company\nx@example.com,Société Générale\n".encode("latin-1"))
    body = client.get(reverse("import-page", args=[job.pk])).content.decode()
    assert "Latin-1" in body and "Société Générale" in body


def test_upload_refusals_are_field_messages(client, settings):
    missing = client.post(reverse("imports"), {})
    assert missing.status_code == 400
    assert "This field is required." in missing.content.decode()
    empty = upload(client, "")
    assert empty.status_code == 400
    binary = upload(client, b"\x00\x01PK")
    assert binary.status_code == 400 and "not a CSV text file" in binary.content.decode()
    header_only = upload(client, "email,name\n")
    assert header_only.status_code == 400 and "no data rows" in header_only.content.decode()
    settings.IMPORT_MAX_BYTES = 10
    big = upload(client, "email\nsomeone@example.com\n")
    assert big.status_code == 413 and "imports are limited to 10 bytes" in big.content.decode()
    assert ImportJob.objects.unscoped().count() == 0


def test_mapping_errors_are_shown_per_column_and_nothing_changes(client):
    job = uploaded(client)
    response = client.post(reverse("import-mapping", args=[job.pk]),
                           mapping_post(job, target_0="", target_1="company", target_3="attributes", attribute_3=" "))
    body = response.content.decode()
    assert response.status_code == 400
    assert "Map a column to email or to phone" in body
    assert "Columns &#x27;First Name&#x27; and &#x27;Company&#x27; are both mapped to &#x27;company&#x27;" in body
    assert "a custom attribute needs a name" in body
    assert 'id="column_3_error"' in body and 'id="column_0_error"' not in body
    job.refresh_from_db()
    assert job.state == ImportState.UPLOADED and job.preview is None


def test_an_unknown_target_is_a_field_message_not_a_500(client):
    job = uploaded(client)
    response = client.post(reverse("import-mapping", args=[job.pk]), mapping_post(job, target_2="password"))
    assert response.status_code == 400
    assert "unknown field &#x27;password&#x27;" in response.content.decode()


def test_saving_the_mapping_runs_the_dry_run_and_shows_counts_and_reasons(client, tenant):
    LeadFactory(tenant=tenant, email="old@example.com", company="")
    job = previewed(client)
    assert job.state == ImportState.PREVIEWED
    body = client.get(reverse("import-page", args=[job.pk])).content.decode()
    assert '<strong data-count="created">1</strong>' in body
    assert '<strong data-count="merged">1</strong>' in body
    assert '<strong data-count="refused">1</strong>' in body
    assert 'data-line="3" data-result="refused"' in body
    assert "Email: Enter a valid email address." in body
    assert "Run the import" in body and "Change the mapping" in body
    assert Lead.objects.unscoped().filter(tenant=tenant).count() == 1  # a dry run writes no lead


def test_the_mapping_is_remembered_unless_unticked(client, tenant):
    job = uploaded(client)
    client.post(reverse("import-mapping", args=[job.pk]), mapping_post(job, remember=None, target_3=""))
    assert not ImportMapping.objects.unscoped().filter(tenant=tenant).exists()
    client.post(reverse("import-mapping", args=[job.pk]), mapping_post(job, target_3=""))
    assert ImportMapping.objects.unscoped().get(tenant=tenant).mapping[3] == ""
    again = uploaded(client)
    assert again.mapping_remembered and again.mapping[3] == ""
    assert "the mapping you used last time" in client.get(reverse("import-page", args=[again.pk])).content.decode()


def test_change_the_mapping_shows_the_form_again(client):
    job = previewed(client)
    body = client.get(reverse("import-page", args=[job.pk]) + "?change=1").content.decode()
    assert 'id="mapping-form"' in body and '<option value="attributes" selected>' in body
    assert 'value="fav_colour"' in body


def test_run_then_progress_then_result_with_refused_csv_and_leads(client, tenant, django_capture_on_commit_callbacks):
    job = previewed(client)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("import-run", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == ImportState.FINISHED  # eager Celery in view tests; the browser test uses a real worker
    part = client.get(reverse("import-progress", args=[job.pk]))
    assert part["HX-Refresh"] == "true" and "3 of 3 rows" in part.content.decode()
    body = client.get(reverse("import-page", args=[job.pk])).content.decode()
    assert "The import is done" in body and '<strong data-count="created">2</strong>' in body
    assert "Download refused rows (CSV)" in body and 'id="undo-form"' in body
    assert "ann@example.com" in body and 'href="/leads/' in body
    csv_answer = client.get(reverse("import-refused-csv", args=[job.pk]))
    assert csv_answer["Content-Type"].startswith("text/csv")
    lines = csv_answer.content.decode().splitlines()
    assert lines[0].startswith("line,errors,Email") and lines[1].startswith("3,") and "not-an-email" in lines[1]


def test_a_running_import_shows_the_polling_progress_bar_and_a_refresh_link(client, tenant):
    job = previewed(client)
    ImportJob.objects.unscoped().filter(pk=job.pk).update(state=ImportState.RUNNING, rows_done=1,
                                                          started_at=job.created_at)
    body = client.get(reverse("import-page", args=[job.pk])).content.decode()
    assert 'id="import-bar" max="3" value="1"' in body
    assert f'hx-get="/imports/{job.pk}/progress/"' in body and "every 1s" in body
    assert 'id="refresh-link"' in body
    part = client.get(reverse("import-progress", args=[job.pk]))
    assert "HX-Refresh" not in part and "1 of 3 rows" in part.content.decode()
    assert "33 %" in part.content.decode()


def test_run_is_refused_before_the_mapping(client):
    job = uploaded(client)
    response = client.post(reverse("import-run", args=[job.pk]))
    assert response.status_code == 409
    assert ImportJob.objects.unscoped().get(pk=job.pk).state == ImportState.UPLOADED


def test_undo_needs_the_confirmation_then_deletes_the_created_leads(client, tenant,
                                                                   django_capture_on_commit_callbacks):
    job = previewed(client)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("import-run", args=[job.pk]))
    too_late = client.post(reverse("import-mapping", args=[job.pk]), mapping_post(job))
    assert too_late.status_code == 409 and "The mapping can change until the import runs" in too_late.content.decode()
    unconfirmed = client.post(reverse("import-undo", args=[job.pk]), {})
    assert unconfirmed.status_code == 400 and "Tick the box to confirm the undo." in unconfirmed.content.decode()
    assert Lead.objects.unscoped().filter(tenant=tenant).count() == 2
    done = client.post(reverse("import-undo", args=[job.pk]), {"confirm": "on"}, follow=True)
    assert done.status_code == 200 and "Import undone" in done.content.decode()
    assert Lead.objects.unscoped().filter(tenant=tenant).count() == 0
    assert ImportJob.objects.unscoped().get(pk=job.pk).state == ImportState.UNDONE
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="import.undone").count() == 1


def test_undo_is_refused_with_the_reason_when_a_lead_was_worked(client, tenant, admin,
                                                                django_capture_on_commit_callbacks):
    job = previewed(client)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("import-run", args=[job.pk]))
    lead = Lead.objects.unscoped().get(tenant=tenant, email="ann@example.com")
    Activity.objects.create(tenant=tenant, lead=lead, kind=ActivityKind.CALL, actor=admin)
    response = client.post(reverse("import-undo", args=[job.pk]), {"confirm": "on"})
    assert response.status_code == 409
    assert "have been worked since" in response.content.decode()
    assert ImportJob.objects.unscoped().get(pk=job.pk).state == ImportState.FINISHED


def test_csrf_is_required_on_every_post(tenant, admin):
    client = signed_in_client(admin, tenant, enforce_csrf_checks=True)
    job = import_upload(tenant=tenant, actor=Actor.for_user(admin), file_name="a.csv", content=CSV.encode())
    assert upload(client).status_code == 403
    for name in ("import-mapping", "import-run", "import-undo"):
        assert client.post(reverse(name, args=[job.pk]), {}).status_code == 403


@pytest.mark.parametrize("role", [Role.SDR, Role.AE, Role.MANAGER])
def test_reps_and_managers_get_403_on_every_page_and_post(tenant, admin, role):
    job = import_upload(tenant=tenant, actor=Actor.for_user(admin), file_name="a.csv", content=CSV.encode())
    client = signed_in_client(person(tenant, role=role), tenant)
    assert client.get(reverse("imports")).status_code == 403
    assert upload(client).status_code == 403
    for name in ("import-page", "import-progress", "import-refused-csv"):
        assert client.get(reverse(name, args=[job.pk])).status_code == 403
    for name in ("import-mapping", "import-run", "import-undo"):
        assert client.post(reverse(name, args=[job.pk]), {"confirm": "on"}).status_code == 403
    assert ImportJob.objects.unscoped().count() == 1


def test_marketing_ops_may_import(tenant):
    client = signed_in_client(person(tenant, role=Role.MARKETING_OPS), tenant)
    assert client.get(reverse("imports")).status_code == 200
    job = uploaded(client)
    assert client.get(reverse("import-page", args=[job.pk])).status_code == 200


def test_another_tenants_import_is_a_404_and_not_listed(client, other_tenant):
    stranger = person(other_tenant, role=Role.ADMIN)
    theirs = import_upload(tenant=other_tenant, actor=Actor.for_user(stranger), file_name="secret-list.csv",
                           content=CSV.encode())
    assert "secret-list.csv" not in client.get(reverse("imports")).content.decode()
    for name in ("import-page", "import-progress", "import-refused-csv"):
        assert client.get(reverse(name, args=[theirs.pk])).status_code == 404
    for name in ("import-mapping", "import-run", "import-undo"):
        assert client.post(reverse(name, args=[theirs.pk]), {"confirm": "on"}).status_code == 404
    assert ImportJob.objects.unscoped().get(pk=theirs.pk).state == ImportState.UPLOADED


def test_the_list_shows_imports_newest_first_in_bounded_queries(client, tenant, admin,
                                                                django_assert_max_num_queries):
    for n in range(3):
        import_upload(tenant=tenant, actor=Actor.for_user(admin), file_name=f"file{n}.csv", content=CSV.encode())
    client.get(reverse("imports"))  # session and caches warm
    with django_assert_max_num_queries(12) as few:
        body = client.get(reverse("imports")).content.decode()
    for n in range(12):
        import_upload(tenant=tenant, actor=Actor.for_user(admin), file_name=f"more{n}.csv", content=CSV.encode())
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("imports"))
    assert body.index("file2.csv") < body.index("file1.csv") < body.index("file0.csv")
    assert "admin@acme.test" in body or admin.get_full_name() in body


def test_saving_the_mapping_starts_the_dry_run_in_a_worker_and_the_page_polls_it(client, tenant):
    job = uploaded(client)
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        response = client.post(reverse("import-mapping", args=[job.pk]), mapping_post(job))
    assert response.status_code == 302 and len(callbacks) == 1  # the task is sent after commit
    job.refresh_from_db()
    assert job.state == ImportState.PREVIEWING
    body = client.get(reverse("import-page", args=[job.pk])).content.decode()
    assert "Dry run: checking every row" in body and f'hx-get="/imports/{job.pk}/progress/"' in body
    cache.set(import_services._preview_progress_key(job), (2, 0, 0), 60)
    part = client.get(reverse("import-progress", args=[job.pk]))
    assert "HX-Refresh" not in part and "2 of 3 rows" in part.content.decode()
    assert client.post(reverse("import-run", args=[job.pk])).status_code == 409  # not before the dry run's end
    callbacks[0]()
    job.refresh_from_db()
    assert job.state == ImportState.PREVIEWED and job.preview["counts"]["refused"] == 1
    assert client.get(reverse("import-progress", args=[job.pk]))["HX-Refresh"] == "true"
    assert import_preview_task.delay(tenant_id=tenant.pk, job_id=job.pk).get() == ImportState.PREVIEWED  # re-run


def test_a_dry_run_that_fails_goes_back_to_the_mapping_with_its_message(client, monkeypatch):
    job = uploaded(client)

    def broken(**_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(import_services, "chunk_apply", broken)  # a fault inside the system's own run
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(reverse("import-mapping", args=[job.pk]), mapping_post(job))
    job.refresh_from_db()
    assert job.state == ImportState.MAPPED and "disk on fire" in job.error
    body = client.get(reverse("import-page", args=[job.pk])).content.decode()
    assert "The dry run stopped with an error" in body and 'id="mapping-form"' in body


def test_a_dry_run_whose_mapping_changed_meanwhile_stores_nothing(client):
    job = uploaded(client)
    with TestCase.captureOnCommitCallbacks(execute=False):
        client.post(reverse("import-mapping", args=[job.pk]), mapping_post(job))
    stale = ImportJob.objects.unscoped().select_related("tenant").get(pk=job.pk)
    ImportJob.objects.unscoped().filter(pk=job.pk).update(mapping=[*stale.mapping[:3], ""])
    with pytest.raises(ImportConflict):
        import_preview(job=stale)
    assert ImportJob.objects.unscoped().get(pk=job.pk).preview is None


def test_the_sweep_hands_a_dry_run_whose_task_was_lost_to_a_worker_again(client):
    lost, busy = uploaded(client), uploaded(client)
    for job in (lost, busy):
        with TestCase.captureOnCommitCallbacks(execute=False):  # the tasks are never sent
            client.post(reverse("import-mapping", args=[job.pk]), mapping_post(job))
    long_ago = timezone.now() - timezone.timedelta(seconds=600)
    ImportJob.objects.unscoped().filter(pk__in=[lost.pk, busy.pk]).update(updated_at=long_ago)
    now = timezone.now().timestamp()
    cache.set(import_services._preview_progress_key(busy), (1, now - 5, now), 60)  # a worker is at it
    assert imports_sweep_task() == 1  # eager here: the dry run itself happens in this process
    assert ImportJob.objects.unscoped().get(pk=lost.pk).state == ImportState.PREVIEWED
    assert ImportJob.objects.unscoped().get(pk=busy.pk).state == ImportState.PREVIEWING


def test_the_sample_shows_the_first_five_rows_of_a_big_file(client):
    rows = "".join(f"person{n}@example.com,Person {n},Co,{'x' * 200}\n" for n in range(2000))  # ~0.5 MB
    job = uploaded(client, "Email,First Name,Company,Notes\n" + rows)
    body = client.get(reverse("import-page", args=[job.pk])).content.decode()
    assert "person0@example.com" in body and "person4@example.com" in body
    assert "person5@example.com" not in body and job.row_count == 2000
