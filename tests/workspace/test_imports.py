"""CSV imports through `/api/v1/imports/`: upload, mapping memory, dry run, run, dedup like intake, owners,
refused rows, undo, re-runs, query counts per chunk, tenants and roles."""
from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import ApiScope, Role
from leads.models import Account, Activity, ActivityKind, Lead, Touch
from routing.models import Assignment
from tests.support.factories import LeadFactory, api_key_for
from workspace.models import ImportJob, ImportLead, ImportState
from workspace.services import import_rows, imports
from workspace.services.import_rows import ImportContext, chunk_apply
from workspace.services.imports import import_run
from workspace.tasks import imports_sweep_task

pytestmark = pytest.mark.django_db

URL = "/api/v1/imports/"


def url(job_id, action: str = "") -> str:
    return f"{URL}{job_id}/{action}"


def upload(client, text, name: str = "leads.csv"):
    content = text.encode() if isinstance(text, str) else text
    return client.post(URL, {"file": SimpleUploadedFile(name, content, content_type="text/csv")}, format="multipart")


def mapped(client, text, mapping=None) -> int:
    """An uploaded file with its mapping confirmed (the suggestion unless given)."""
    response = upload(client, text)
    assert response.status_code == 201, response.content
    body = response.json()
    answer = client.put(url(body["id"], "mapping/"), {"mapping": mapping or body["mapping"]}, format="json")
    assert answer.status_code == 200, answer.content
    return body["id"]


def run(client, job_id, capture) -> dict:
    with capture(execute=True):
        response = client.post(url(job_id, "run/"))
    assert response.status_code == 202, response.content
    return client.get(url(job_id)).json()


def errors(response) -> dict:
    return response.json()["errors"]


def leads_of(tenant):
    return Lead.objects.unscoped().filter(tenant=tenant)


@pytest.fixture
def admin(tenant, make_member, client_for):
    return client_for(make_member(tenant, role=Role.ADMIN))


@pytest.fixture
def ops(tenant, make_member, client_for):
    return client_for(make_member(tenant, role=Role.MARKETING_OPS))


MIXED = (
    "Email,First Name,Company,Phone,Job Title,Lead Owner\n"
    "ana@acme.example,Ana,Acme,,CTO,\n"                      # 2: created
    "known@beta.example,Kim,Beta,,VP Sales,\n"               # 3: merged into the existing lead
    "ANA@acme.example,Ana,Acme,,,\n"                          # 4: merged into line 2's lead
    "new@gamma.example,Gus,Gamma,+1 415 555 0100,,\n"         # 5: possible duplicate (phone of an existing lead)
    "not-an-email,Bad,Bad,,,\n"                               # 6: refused
    "owned@delta.example,Dee,Delta,,,{owner}\n"               # 7: created, owned by a member
    "stranger@delta.example,Sam,Delta,,,nobody@else.example\n"  # 8: refused: owner is no member
)


@pytest.fixture
def existing(tenant):
    return {
        "known": LeadFactory(tenant=tenant, email="known@beta.example", company="Beta Old", job_title=""),
        "phone": LeadFactory(tenant=tenant, email="other@gamma.example", phone="+14155550100"),
    }


def test_upload_detects_the_file_and_remembers_the_mapping_per_tenant(admin, ops, other_tenant, make_member,
                                                                      client_for):
    text = "E-mail;Prénom;Plan\nana@acme.example;Zoë;gold\n".encode("latin-1")
    first = upload(admin, text)
    assert first.status_code == 201, first.content
    body = first.json()
    assert (body["encoding"], body["delimiter"], body["has_header"], body["row_count"]) == ("cp1252", ";", True, 1)
    assert body["headers"] == ["E-mail", "Prénom", "Plan"] and body["state"] == "uploaded"
    assert body["mapping"] == ["email", "attributes.prenom", "attributes.plan"] and not body["mapping_remembered"]
    assert "owner_email" in body["targets"] and "external_id" in body["targets"]
    put = admin.put(url(body["id"], "mapping/"), {"mapping": ["email", "first_name", "attributes.plan"]},
                    format="json")
    assert put.status_code == 200 and put.json()["state"] == "mapped"
    again = upload(ops, text).json()  # another member of the tenant, same columns
    assert again["mapping"] == ["email", "first_name", "attributes.plan"] and again["mapping_remembered"]
    elsewhere = upload(client_for(make_member(other_tenant, role=Role.ADMIN)), text).json()
    assert elsewhere["mapping"] == ["email", "attributes.prenom", "attributes.plan"]


def test_a_bad_mapping_is_refused_per_column_and_changes_nothing(admin):
    job_id = upload(admin, "Email,Name,Notes\na@x.example,Ann,hi\n").json()["id"]
    response = admin.put(url(job_id, "mapping/"), {"mapping": ["email", "email", "nope"]}, format="json")
    assert response.status_code == 400
    assert set(errors(response)) == {"mapping.1", "mapping.2"}
    assert ImportJob.objects.unscoped().get(pk=job_id).state == ImportState.UPLOADED
    assert admin.post(url(job_id, "run/")).status_code == 409  # the mapping comes first


def test_a_big_file_is_dry_run_in_a_worker_and_polled(tenant, admin, make_member, existing, settings,
                                                      django_capture_on_commit_callbacks):
    settings.IMPORT_PREVIEW_INLINE_ROWS = 3  # MIXED has 7 rows: too many to answer in the request
    owner = make_member(tenant, role=Role.SDR)
    job_id = mapped(admin, MIXED.format(owner=owner.email))
    with django_capture_on_commit_callbacks() as callbacks:
        started = admin.post(url(job_id, "preview/"))
    assert started.status_code == 202, started.content
    assert started.json()["state"] == "previewing" and started.json()["preview"] is None
    polled = admin.get(url(job_id)).json()
    assert polled["state"] == "previewing" and polled["progress"]["rows_total"] == 7
    assert admin.post(url(job_id, "run/")).status_code == 409  # not while the dry run goes on
    assert len(callbacks) == 1
    callbacks[0]()  # the task, as the worker runs it
    done = admin.get(url(job_id)).json()
    assert done["state"] == "previewed"
    assert done["preview"]["counts"] == {"created": 2, "merged": 2, "possible_duplicate": 1, "refused": 2}


def test_limits_are_refused_with_413_and_400(admin, settings):
    settings.IMPORT_MAX_BYTES = 50
    too_big = upload(admin, "email\n" + "someone@example.com\n" * 5)
    assert too_big.status_code == 413 and "limited to 50 bytes" in errors(too_big)["file"][0]
    settings.IMPORT_MAX_BYTES = 10_000
    settings.IMPORT_MAX_ROWS = 2
    too_many = upload(admin, "email\na@x.example\nb@x.example\nc@x.example\n")
    assert too_many.status_code == 400 and "more than 2 rows" in errors(too_many)["file"][0]
    missing = admin.post(URL, {}, format="multipart")
    assert missing.status_code == 400 and "file" in errors(missing)
    assert not ImportJob.objects.unscoped().exists()


def test_the_dry_run_writes_nothing_and_counts_what_the_run_then_does(tenant, admin, make_member, existing,
                                                                       django_capture_on_commit_callbacks):
    owner = make_member(tenant, role=Role.SDR)
    job_id = mapped(admin, MIXED.format(owner=owner.email.upper()))
    before = (leads_of(tenant).count(), Touch.objects.unscoped().count(), AuditEvent.objects.unscoped().count())
    preview = admin.post(url(job_id, "preview/"))
    assert preview.status_code == 200, preview.content
    body = preview.json()
    expected = {"created": 2, "merged": 2, "possible_duplicate": 1, "refused": 2}
    assert body["state"] == "previewed" and body["preview"]["counts"] == expected
    reasons = {row["line"]: row for row in body["preview"]["rows"]}
    assert set(reasons) == {3, 4, 5, 6, 8}
    assert reasons[4]["detail"] == "Same email as line 2: merged into its lead."
    assert reasons[5]["result"] == "possible_duplicate" and "phone" in reasons[5]["detail"]
    assert reasons[6]["errors"] == {"Email": ["Enter a valid email address."]}
    assert reasons[8]["errors"] == {"Lead Owner": ["No active member of this workspace has the email "
                                                   "nobody@else.example."]}
    assert (leads_of(tenant).count(), Touch.objects.unscoped().count(),
            AuditEvent.objects.unscoped().count()) == before
    dry_refused = list(csv.reader(io.StringIO(admin.get(url(job_id, "refused.csv")).content.decode())))
    assert [row[0] for row in dry_refused[1:]] == ["6", "8"]  # the dry run's refused rows, before the run
    assert existing["known"].__class__.objects.unscoped().get(pk=existing["known"].pk).job_title == ""

    done = run(admin, job_id, django_capture_on_commit_callbacks)
    assert done["state"] == "finished"
    assert done["counts"] == {"created": 2, "merged": 2, "possible_duplicates": 1, "refused": 2}
    assert done["progress"]["rows_done"] == done["progress"]["rows_total"] == 7
    assert done["progress"]["seconds_left"] == 0
    assert leads_of(tenant).count() == before[0] + 3
    ana = leads_of(tenant).get(email="ana@acme.example")
    assert (ana.first_name, ana.company, ana.job_title, ana.source) == ("Ana", "Acme", "CTO", "import")
    assert ana.account.domain == "acme.example"
    assert Touch.objects.unscoped().filter(lead=ana).count() == 2  # created, then line 4's duplicate
    flagged = leads_of(tenant).get(email="new@gamma.example")
    assert flagged.possible_duplicate_of_id == existing["phone"].pk and flagged.phone == "+14155550100"
    owned = leads_of(tenant).get(email="owned@delta.example")
    assert owned.owner_id == owner.pk and owned.assigned_at is not None
    assignment = Assignment.objects.unscoped().get(lead=owned)
    assert assignment.owner_id == owner.pk and assignment.actor_kind == "user"
    actions = list(AuditEvent.objects.unscoped().filter(action__startswith="import.").values_list("action", flat=True))
    assert sorted(actions) == ["import.finished", "import.started"]
    finished = AuditEvent.objects.unscoped().get(action="import.finished")
    assert finished.metadata["created"] == 2 and finished.metadata["refused"] == 2


def test_a_merge_fills_blanks_only_and_keeps_what_a_person_edited(tenant, admin, django_capture_on_commit_callbacks):
    known = LeadFactory(tenant=tenant, email="known@beta.example", company="Beta Old", job_title="",
                        industry="", edited_fields=["industry"], attributes={"plan": "silver"})
    job_id = mapped(admin, "email,company,job_title,industry,plan,colour\n"
                           "Known@Beta.example,Beta New,VP Sales,Retail,gold,blue\n")
    assert run(admin, job_id, django_capture_on_commit_callbacks)["counts"]["merged"] == 1
    known.refresh_from_db()
    assert (known.company, known.job_title, known.industry) == ("Beta Old", "VP Sales", "")
    assert known.attributes == {"plan": "silver", "colour": "blue"}
    record = ImportLead.objects.unscoped().get(lead_id=known.pk)
    assert not record.created and record.before == {"job_title": "", "attributes": {"plan": "silver"},
                                                     "company_domain": "", "account": None}


def test_rows_with_the_same_email_or_phone_in_one_file_make_one_lead(tenant, admin, settings,
                                                                     django_capture_on_commit_callbacks):
    settings.IMPORT_CHUNK_ROWS = 2  # the duplicates fall in different chunks too
    job_id = mapped(admin, "email,phone,first_name,last_name\n"
                           "zed@x.example,,Zed,\n"
                           ",+44 20 7946 0958,Pat,\n"
                           "ZED@x.example,,,Zulu\n"
                           ",+442079460958,,Phone\n"
                           "zed@x.example,,,\n", mapping=["email", "phone", "first_name", "last_name"])
    body = run(admin, job_id, django_capture_on_commit_callbacks)
    assert body["counts"] == {"created": 2, "merged": 3, "possible_duplicates": 0, "refused": 0}
    zed = leads_of(tenant).get(email="zed@x.example")
    assert (zed.first_name, zed.last_name) == ("Zed", "Zulu")
    assert leads_of(tenant).count() == 2


def _planner_rows(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        return cursor.fetchone()[0]


def test_a_run_refreshes_the_planner_statistics_of_the_lead_tables(tenant, admin, settings, monkeypatch,
                                                                    django_capture_on_commit_callbacks):
    """An import adds leads faster than autovacuum analyses: the run ANALYZEs the tables it filled, every
    IMPORT_ANALYZE_ROWS rows and at the end, so the pipeline's statements are planned on the tenant as it is."""
    from leads.statistics import lead_statistics_refresh

    LeadFactory(tenant=tenant)
    lead_statistics_refresh()
    before = {table: _planner_rows(table) for table in ("leads_lead", "leads_account", "leads_touch")}
    settings.IMPORT_CHUNK_ROWS = 40
    settings.IMPORT_ANALYZE_ROWS = 80
    lines = "".join(f"p{i}@co{i}.example,Pat,Lee{i}\n" for i in range(150))
    job_id = mapped(admin, "email,first_name,last_name\n" + lines, mapping=["email", "first_name", "last_name"])
    refreshed = []

    def refresh_seen():  # the real refresh, and how many imported leads it saw
        refreshed.append(Lead.objects.unscoped().filter(tenant=tenant, source="import").count())
        lead_statistics_refresh()

    monkeypatch.setattr(imports, "lead_statistics_refresh", refresh_seen)
    body = run(admin, job_id, django_capture_on_commit_callbacks)
    assert body["counts"]["created"] == 150
    assert refreshed == [80, 150]  # after the chunk that passed 80 rows, and at the end
    after = {table: _planner_rows(table) for table in before}
    assert after["leads_lead"] >= before["leads_lead"] + 150
    assert after["leads_account"] >= before["leads_account"] + 150
    assert after["leads_touch"] >= before["leads_touch"] + 150


def test_a_phone_only_row_never_merges_into_a_lead_that_kept_another_number(tenant, admin,
                                                                          django_capture_on_commit_callbacks):
    known = LeadFactory(tenant=tenant, email="known@beta.example", phone="+14155550111")
    job_id = mapped(admin, "email,phone\nknown@beta.example,+1 415 555 0122\n,+1 415 555 0122\n")
    body = run(admin, job_id, django_capture_on_commit_callbacks)
    assert body["counts"] == {"created": 1, "merged": 1, "possible_duplicates": 0, "refused": 0}
    known.refresh_from_db()
    assert known.phone == "+14155550111"
    assert leads_of(tenant).filter(email="", phone="+14155550122").count() == 1


def test_import_fields_external_id_status_stage_created_and_consent(tenant, admin,
                                                                   django_capture_on_commit_callbacks):
    LeadFactory(tenant=tenant, email="taken@x.example", external_id="CRM-9")
    job_id = mapped(admin, "email,crm id,status,stage,created,opt in,consent date\n"
                           "a@x.example,CRM-1,Contacted,MQL,2023-04-05,yes,2023-04-01T10:00:00Z\n"
                           "b@x.example,CRM-9,new,raw,,,\n"
                           "c@x.example,CRM-3,sleeping,raw,,,\n"
                           "d@x.example,CRM-4,,,2999-01-01,,\n")
    body = run(admin, job_id, django_capture_on_commit_callbacks)
    assert body["counts"]["created"] == 1 and body["counts"]["refused"] == 3
    lead = leads_of(tenant).get(email="a@x.example")
    assert (lead.external_id, lead.status, lead.stage) == ("CRM-1", "contacted", "mql")
    assert lead.created_at.date().isoformat() == "2023-04-05" and lead.marketing_consent
    assert lead.consent_at.isoformat() == "2023-04-01T10:00:00+00:00" and lead.consent_source == "Import leads.csv"
    refused = list(csv.reader(io.StringIO(admin.get(url(body["id"], "refused.csv")).content.decode())))
    messages = {row[0]: row[1] for row in refused[1:]}
    assert messages["3"] == "crm id: Another lead already has the external id 'CRM-9'."
    assert messages["4"].startswith("status: Unknown value 'sleeping'")
    assert messages["5"] == "created: This date is in the future."


def test_refused_rows_never_stop_the_others_and_come_back_as_csv(tenant, admin, django_capture_on_commit_callbacks):
    job_id = mapped(admin, "email,first_name,company\n"
                           "ok1@x.example,One,=HYPERLINK(\"http://evil\")\n"
                           "bad@,Two,Two\n"
                           ",Three,Three\n"
                           "ok2@x.example,Four,Four,extra\n"
                           "ok3@x.example,Five,@SUM(1)\n")
    body = run(admin, job_id, django_capture_on_commit_callbacks)
    assert body["counts"] == {"created": 2, "merged": 0, "possible_duplicates": 0, "refused": 3}
    response = admin.get(url(job_id, "refused.csv"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["line", "errors", "email", "first_name", "company"]
    assert [row[0] for row in rows[1:]] == ["3", "4", "5"]
    assert rows[1][1] == "email: Enter a valid email address." and rows[1][2:] == ["bad@", "Two", "Two"]
    assert "Enter an email address or a phone number." in rows[2][1]
    assert rows[3][1] == "row: This row has 4 values; the file has 3 columns."
    assert leads_of(tenant).get(email="ok1@x.example").company == '=HYPERLINK("http://evil")'
    # a cell that a spreadsheet would run is escaped
    job = ImportJob.objects.unscoped().get(pk=job_id)
    from workspace.services.imports import csv_cell
    assert csv_cell('=HYPERLINK("x")') == "'=HYPERLINK(\"x\")" and csv_cell("-1") == "'-1" and job


def test_an_erased_person_is_refused_and_a_finished_import_keeps_no_file(tenant, admin,
                                                                       django_capture_on_commit_callbacks):
    from leads.erasure import ERASED_MESSAGE, email_hash, erased_contact_record

    with tenant_scope(tenant):
        erased_contact_record(tenant=tenant, digest=email_hash("gone@x.example"))
    job_id = mapped(admin, "email,first_name\nGone@X.example,Gone\nstays@x.example,Stays\n")
    preview = admin.post(url(job_id, "preview/"))
    assert preview.status_code == 200, preview.content
    body = run(admin, job_id, django_capture_on_commit_callbacks)
    assert body["counts"]["created"] == 1 and body["counts"]["refused"] == 1
    assert list(leads_of(tenant).values_list("email", flat=True)) == ["stays@x.example"]
    rows = list(csv.reader(io.StringIO(admin.get(url(job_id, "refused.csv")).content.decode())))
    # The refused row says why and keeps none of the erased person's data.
    assert rows[1][:2] == ["2", f"email: {ERASED_MESSAGE}"] and rows[1][2:] == ["", ""]
    job = ImportJob.objects.unscoped().get(pk=job_id)
    assert bytes(job.content) == b"" and job.file_size > 0 and len(job.file_sha256) == 64


def test_undo_deletes_created_leads_and_reverts_merges(tenant, admin, existing, django_capture_on_commit_callbacks):
    job_id = mapped(admin, "email,company,job_title\nfresh@x.example,Fresh,CEO\nknown@beta.example,Beta New,VP\n")
    run(admin, job_id, django_capture_on_commit_callbacks)
    known = leads_of(tenant).get(pk=existing["known"].pk)
    assert known.job_title == "VP" and leads_of(tenant).filter(email="fresh@x.example").exists()
    response = admin.post(url(job_id, "undo/"))
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "undone"
    assert not leads_of(tenant).filter(email="fresh@x.example").exists()
    known.refresh_from_db()
    assert (known.job_title, known.company) == ("", "Beta Old")
    undone = AuditEvent.objects.unscoped().get(action="import.undone")
    assert undone.metadata == {"leads_deleted": 1, "merges_reverted": 1, "accounts_deleted": 2}
    assert not Account.objects.unscoped().filter(tenant=tenant).exists()  # x.example, beta.example: the import's
    assert admin.post(url(job_id, "undo/")).status_code == 409
    assert admin.post(url(job_id, "run/")).status_code == 409


def test_undo_keeps_the_accounts_that_were_there_before_or_were_given_an_owner(
        tenant, admin, make_member, django_capture_on_commit_callbacks):
    before = Account.objects.create(tenant=tenant, domain="old.example", name="Old")
    job_id = mapped(admin, "email,company\na@old.example,Old\nb@owned.example,Owned\nc@gone.example,Gone\n")
    run(admin, job_id, django_capture_on_commit_callbacks)
    assert set(Account.objects.unscoped().filter(tenant=tenant).values_list("domain", flat=True)) == {
        "old.example", "owned.example", "gone.example"}
    owned = Account.objects.unscoped().get(tenant=tenant, domain="owned.example")
    owned.owner = make_member(tenant, role=Role.AE)
    owned.save(update_fields=["owner", "updated_at"])
    assert admin.post(url(job_id, "undo/")).status_code == 200
    assert set(Account.objects.unscoped().filter(tenant=tenant).values_list("domain", flat=True)) == {
        "old.example", "owned.example"}
    assert Account.objects.unscoped().get(pk=before.pk).name == "Old"
    assert AuditEvent.objects.unscoped().get(action="import.undone").metadata["accounts_deleted"] == 1


def test_undo_is_refused_once_someone_worked_an_imported_lead(tenant, admin, make_member,
                                                              django_capture_on_commit_callbacks):
    job_id = mapped(admin, "email\nworked@x.example\nidle@x.example\n")
    run(admin, job_id, django_capture_on_commit_callbacks)
    worked = leads_of(tenant).get(email="worked@x.example")
    Activity.objects.create(tenant=tenant, lead=worked, kind=ActivityKind.CALL, actor=make_member(tenant))
    response = admin.post(url(job_id, "undo/"))
    assert response.status_code == 400
    assert "can no longer be undone" in errors(response)["detail"][0]
    assert errors(response)["lead_ids"] == [str(worked.pk)]
    assert leads_of(tenant).count() == 2 and ImportJob.objects.unscoped().get(pk=job_id).state == "finished"


def test_a_finished_import_runs_once_and_a_failed_one_resumes_after_its_last_chunk(
        tenant, admin, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.IMPORT_CHUNK_ROWS = 2
    job_id = mapped(admin, "email\n" + "".join(f"p{n}@x.example\n" for n in range(5)))
    real = import_rows.chunk_apply
    calls = []

    def dies_on_the_second_chunk(**kwargs):
        calls.append(len(kwargs["rows"]))
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(**kwargs)

    monkeypatch.setattr("workspace.services.imports.chunk_apply", dies_on_the_second_chunk)
    failed = run(admin, job_id, django_capture_on_commit_callbacks)
    assert (failed["state"], failed["progress"]["rows_done"], failed["counts"]["created"]) == ("failed", 2, 2)
    assert "worker killed" in failed["error"]
    resumed = run(admin, job_id, django_capture_on_commit_callbacks)
    assert (resumed["state"], resumed["progress"]["rows_done"], resumed["counts"]["created"]) == ("finished", 5, 5)
    assert calls == [2, 2, 2, 1] and leads_of(tenant).count() == 5
    with tenant_scope(tenant):
        assert import_run(tenant=tenant, job_id=job_id).state == "finished"  # the task again: nothing
    assert calls == [2, 2, 2, 1] and leads_of(tenant).count() == 5
    assert AuditEvent.objects.unscoped().filter(action="import.started").count() == 1


def test_the_sweep_hands_a_running_import_whose_task_was_lost_to_a_worker_again(tenant, admin):
    stalled, fresh = (mapped(admin, f"email\n{name}@x.example\n") for name in ("lost", "busy"))
    long_ago = timezone.now() - timezone.timedelta(seconds=600)
    ImportJob.objects.unscoped().filter(pk=stalled).update(state=ImportState.RUNNING, started_at=long_ago,
                                                           updated_at=long_ago)
    ImportJob.objects.unscoped().filter(pk=fresh).update(state=ImportState.RUNNING, started_at=timezone.now())
    assert imports_sweep_task() == 1  # eager here: the run itself happens in this process
    assert ImportJob.objects.unscoped().get(pk=stalled).state == ImportState.FINISHED
    assert ImportJob.objects.unscoped().get(pk=fresh).state == ImportState.RUNNING
    assert list(leads_of(tenant).values_list("email", flat=True)) == ["lost@x.example"]


def _rows(count: int, start: int = 0) -> list[tuple[int, list[str]]]:
    return [(n + 2, [f"q{n}@co{n % 7}-{start}.example", f"Name {n}", f"+1 415 555 {1000 + n}", "rep@acme.test" if n % 3 else "",
                     "known@beta.example" if n == start else ""]) for n in range(start, start + count)]


def test_a_chunk_costs_the_same_queries_for_20_rows_as_for_200(tenant, make_member, existing):
    member = make_member(tenant, role=Role.SDR)
    member.email = "rep@acme.test"
    member.save()
    headers = ["email", "first_name", "phone", "owner", "other"]
    job = ImportJob.objects.create(tenant=tenant, content=b"", file_size=0, file_sha256="", encoding="utf-8",
                                   delimiter=",")

    def queries(rows) -> int:
        ctx = ImportContext(tenant=tenant, job_id=job.pk, file_name="f.csv", headers=headers,
                            mapping=["email", "first_name", "phone", "owner_email", "attributes.other"],
                            actor=Actor.for_user(member), now=timezone.now())
        with tenant_scope(tenant), CaptureQueriesContext(connection) as captured:
            outcomes = chunk_apply(ctx=ctx, rows=rows)
        assert {o.result for o in outcomes} == {"created"}
        return len(captured)

    queries(_rows(5, start=5000))  # warm: what a process reads once and keeps (the tenant's webhook subscriptions)
    small, large = queries(_rows(20)), queries(_rows(200, start=1000))
    assert small == large and small <= 30


def test_a_chunk_writes_its_touches_and_audit_events_without_an_instance_per_row(tenant, make_member, existing):
    """A chunk's touches, audit events and import records go to COPY as plain rows: building and preparing a model
    instance for each cost more than PostgreSQL takes to write it. The rows are all there."""
    from django.db.models.signals import post_init

    member = make_member(tenant, role=Role.SDR)
    job = ImportJob.objects.create(tenant=tenant, content=b"", file_size=0, file_sha256="", encoding="utf-8",
                                   delimiter=",")
    ctx = ImportContext(tenant=tenant, job_id=job.pk, file_name="f.csv", headers=["email", "first_name", "phone"],
                        mapping=["email", "first_name", "phone"], actor=Actor.for_user(member), now=timezone.now())
    built: list = []

    def count(sender, **kwargs):
        built.append(sender)

    for model in (Touch, AuditEvent, ImportLead):
        post_init.connect(count, sender=model)
    try:
        with tenant_scope(tenant):
            outcomes = chunk_apply(ctx=ctx, rows=[(line, cells[:3]) for line, cells in _rows(200, start=3000)])
    finally:
        for model in (Touch, AuditEvent, ImportLead):
            post_init.disconnect(count, sender=model)
    assert [o.result for o in outcomes] == ["created"] * 200
    assert built == []
    ids = [o.lead_id for o in outcomes]
    assert Touch.objects.unscoped().filter(lead_id__in=ids, kind="created").count() == 200
    assert AuditEvent.objects.unscoped().filter(object_id__in=[str(i) for i in ids], action="lead.created").count() == 200
    assert ImportLead.objects.unscoped().filter(job=job, lead_id__in=ids, created=True).count() == 200


# --- tenants and roles ---------------------------------------------------------------------------------------


def test_another_tenants_import_is_not_there(tenant, other_tenant, admin, make_member, client_for):
    job_id = mapped(admin, "email\na@x.example\n")
    stranger = client_for(make_member(other_tenant, role=Role.ADMIN))
    assert stranger.get(url(job_id)).status_code == 404
    assert stranger.put(url(job_id, "mapping/"), {"mapping": ["email"]}, format="json").status_code == 404
    for action in ("preview/", "run/", "undo/"):
        assert stranger.post(url(job_id, action)).status_code == 404
    assert stranger.get(url(job_id, "refused.csv")).status_code == 404
    assert stranger.get(URL).json()["count"] == 0
    _key, raw = api_key_for(other_tenant)
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert admin.get(URL).json()["count"] == 1


def test_only_admins_marketing_ops_and_write_keys_import(tenant, admin, ops, make_member, client_for):
    job_id = mapped(admin, "email\na@x.example\n")
    for role in (Role.SDR, Role.AE, Role.MANAGER):
        client = client_for(make_member(tenant, role=role))
        assert upload(client, "email\nb@x.example\n").status_code == 403
        assert client.get(URL).status_code == 403
        assert client.get(url(job_id)).status_code == 403
        assert client.put(url(job_id, "mapping/"), {"mapping": ["email"]}, format="json").status_code == 403
        for action in ("preview/", "run/", "undo/"):
            assert client.post(url(job_id, action)).status_code == 403
        assert client.get(url(job_id, "refused.csv")).status_code == 403
    assert ops.get(url(job_id)).status_code == 200 and ops.post(url(job_id, "preview/")).status_code == 200
    from rest_framework.test import APIClient

    _key, raw = api_key_for(tenant, scopes=[ApiScope.LEADS_READ])
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert reader.get(URL).status_code == 403 and upload(reader, "email\nc@x.example\n").status_code == 403
    _key, raw = api_key_for(tenant, scopes=[ApiScope.LEADS_WRITE])
    writer = APIClient()
    writer.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert upload(writer, "email\nd@x.example\n").status_code == 201
    assert writer.get(url(job_id)).status_code == 200
