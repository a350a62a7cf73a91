"""`GET /api/v1/leads/export/`: the list API's leads as a streamed CSV, with the columns chosen, escaped against
formula injection, audited; the same visibility by role as the list, and another tenant's leads never there."""
from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import ApiScope, Role
from leads.models import LeadStatus
from tests.support.factories import AccountFactory, LeadFactory, TeamFactory, api_key_for
from workspace.export import DEFAULT_COLUMNS, csv_cell

pytestmark = pytest.mark.django_db
EXPORT = "/api/v1/leads/export/"
LIST = "/api/v1/leads/"


def key_client(tenant, scopes=None) -> APIClient:
    _key, raw = api_key_for(tenant, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def body(response) -> str:
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode("utf-8")


def table(response) -> list[list[str]]:
    text = body(response)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def ids_of(response) -> list[str]:
    rows = table(response)
    assert rows[0][0] == "Lead ID"
    return [row[0] for row in rows[1:]]


def list_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_export_streams_a_bom_header_and_the_default_columns(tenant, api_client):
    account = AccountFactory(tenant=tenant, domain="acme.example", name="Acme")
    LeadFactory(tenant=tenant, first_name="Zoë", last_name="Brontë", email="zoe@acme.example", account=account,
                company="Acme", score=72, band="A")
    response = api_client.get(EXPORT)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="leads-acme-corp-')
    rows = table(response)
    assert rows[0] == ["First name", "Last name", "Email", "Phone", "Company", "Job title", "Country", "Owner email",
                       "Status", "Stage", "Score", "Band", "Source", "Created"]
    assert len(rows[0]) == len(DEFAULT_COLUMNS)
    assert rows[1][:3] == ["Zoë", "Brontë", "zoe@acme.example"] and rows[1][10:12] == ["72", "A"]
    assert rows[1][13].endswith("Z")  # ISO 8601 in UTC


def test_export_writes_the_columns_asked_for_in_their_order_with_owner_account_and_custom_fields(
        tenant, api_client, make_member):
    owner = make_member(tenant, Role.SDR)
    owner.email = "rep@acme-corp.example"
    owner.save(update_fields=["email"])
    account = AccountFactory(tenant=tenant, domain="initech.example", name="Initech")
    lead = LeadFactory(tenant=tenant, owner=owner, account=account, attributes={"budget_range": "10-50k"})
    response = api_client.get(EXPORT, {"columns": "email,attributes.budget_range,owner_email,account,id,is_hot"})
    assert table(response) == [
        ["Email", "budget_range", "Owner email", "Account", "Lead ID", "Hot"],
        [lead.email, "10-50k", "rep@acme-corp.example", "Initech", str(lead.id), "no"],
    ]


def test_unknown_column_is_a_400_on_columns_naming_it(api_client):
    response = api_client.get(EXPORT, {"columns": "email,password_hash,attributes.bad key"})
    assert response.status_code == 400
    problems = response.json()["errors"]["columns"]
    assert any("password_hash" in p for p in problems) and any("attributes.bad key" in p for p in problems)
    assert not AuditEvent.objects.unscoped().filter(action="leads.exported").exists()


@pytest.mark.parametrize("columns", ["", "email,", "email,,phone", "email,email"])
def test_an_empty_or_repeated_column_is_a_400(api_client, columns):
    response = api_client.get(EXPORT, {"columns": columns})
    assert response.status_code == 400 and response.json()["errors"]["columns"]


def test_a_bad_filter_is_a_400_like_the_list(api_client):
    response = api_client.get(EXPORT, {"score_min": "forty"})
    assert response.status_code == 400 and "score_min" in response.json()["errors"]


@pytest.mark.parametrize("dangerous", ["=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_cells_that_a_spreadsheet_would_run_get_a_leading_apostrophe(tenant, api_client, dangerous):
    LeadFactory(tenant=tenant, company=dangerous, first_name="Ann")
    rows = table(api_client.get(EXPORT, {"columns": "first_name,company"}))
    assert rows[1] == ["Ann", "'" + dangerous]


def test_numbers_and_plain_text_are_not_escaped():
    assert csv_cell(-5) == "-5" and csv_cell("Acme = fine") == "Acme = fine" and csv_cell(None) == ""


def test_export_has_the_list_apis_filters_and_order(tenant, api_client):
    for i in range(6):
        LeadFactory(tenant=tenant, company=f"Acme {i}" if i % 2 else f"Other {i}", score=10 * i,
                    status=LeadStatus.CONTACTED if i < 4 else LeadStatus.NEW)
    for params in ({"q": "acme", "ordering": "-score"}, {"status": "contacted", "ordering": "score"},
                   {"score_min": "20", "score_max": "40"}, {}):
        exported = ids_of(api_client.get(EXPORT, {**params, "columns": "id"}))
        assert exported == list_ids(api_client.get(LIST, params)), params
    assert len(ids_of(api_client.get(EXPORT, {"q": "acme", "columns": "id"}))) == 3


def test_each_role_exports_only_the_leads_it_sees(tenant, make_member, client_for):
    east, west = TeamFactory(tenant=tenant, name="East"), TeamFactory(tenant=tenant, name="West")
    rep, manager = make_member(tenant, Role.SDR, team=east), make_member(tenant, Role.MANAGER, team=east)
    west_rep, ops = make_member(tenant, Role.SDR, team=west), make_member(tenant, Role.MARKETING_OPS)
    mine = LeadFactory(tenant=tenant, owner=rep)
    west = LeadFactory(tenant=tenant, owner=west_rep)
    unassigned = LeadFactory(tenant=tenant)
    assert ids_of(client_for(rep).get(EXPORT, {"columns": "id"})) == [str(mine.id)]
    assert set(ids_of(client_for(manager).get(EXPORT, {"columns": "id"}))) == {str(mine.id), str(unassigned.id)}
    assert set(ids_of(client_for(ops).get(EXPORT, {"columns": "id"}))) == {str(mine.id), str(west.id),
                                                                            str(unassigned.id)}


def test_another_tenants_leads_are_never_exported(tenant, other_tenant, api_client, make_member, client_for):
    LeadFactory(tenant=other_tenant, email="secret@globex.example")
    mine = LeadFactory(tenant=tenant)
    assert ids_of(api_client.get(EXPORT, {"columns": "id"})) == [str(mine.id)]
    admin_elsewhere = make_member(other_tenant, Role.ADMIN)
    assert "secret@globex.example" in body(client_for(admin_elsewhere).get(EXPORT, {"columns": "email"}))
    assert str(mine.id) not in body(client_for(admin_elsewhere).get(EXPORT, {"columns": "id"}))


def test_a_key_without_leads_read_and_an_anonymous_caller_are_refused(tenant):
    LeadFactory(tenant=tenant)
    assert key_client(tenant, scopes=[ApiScope.SIGNALS_WRITE]).get(EXPORT).status_code == 403
    assert APIClient().get(EXPORT).status_code in (401, 403)


def test_an_inactive_member_cannot_export(tenant, make_member, client_for):
    from leadmgmt.tenancy.models import Membership

    user = make_member(tenant, Role.ADMIN)
    Membership.objects.unscoped().filter(user=user).update(is_active=False)
    assert client_for(user).get(EXPORT).status_code in (403, 404)


def test_an_export_is_audited_with_filters_columns_and_row_count(tenant, api_key, api_client):
    for _ in range(3):
        LeadFactory(tenant=tenant, status=LeadStatus.NEW)
    LeadFactory(tenant=tenant, status=LeadStatus.CONTACTED)
    body(api_client.get(EXPORT, {"status": "new", "columns": "email,score"}))
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="leads.exported")
    assert event.metadata == {"source": "api", "filters": {"status": ["new"]}, "columns": ["email", "score"],
                              "rows": 3, "complete": True}
    assert event.actor_api_key_id == api_key[0].pk


def test_rows_are_fetched_from_a_cursor_in_chunks_in_a_constant_number_of_queries(tenant, api_client, monkeypatch):
    import workspace.export

    monkeypatch.setattr(workspace.export, "CHUNK_ROWS", 3)  # small chunks, to see them
    owner_account = AccountFactory(tenant=tenant)
    for _ in range(7):
        LeadFactory(tenant=tenant, account=owner_account)
    response = api_client.get(EXPORT, {"columns": "email,account,owner_email"})
    with CaptureQueriesContext(connection) as queries:
        chunks = list(response.streaming_content)
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    declares = [s for s in statements if "DECLARE lead_export_" in s]
    fetches = [s for s in statements if "FETCH FORWARD 3 FROM lead_export_" in s]
    assert len(declares) == 1 and "JOIN" in declares[0]  # account and owner joined, not read per row
    assert len(fetches) == 4  # 3 + 3 + 1 rows, then the empty fetch that ends it
    assert len(chunks) == 1 + 3  # the header, then one chunk per fetch with rows
    assert len(statements) == 1 + 4 + 1 + 1  # declare, fetches, close, the audit


def test_the_number_of_queries_does_not_grow_with_the_rows(tenant, api_client, make_member):
    owner = make_member(tenant, Role.SDR)
    account = AccountFactory(tenant=tenant)

    def count() -> int:
        response = api_client.get(EXPORT, {"columns": "email,account,owner_email,owner_name"})
        with CaptureQueriesContext(connection) as queries:
            b"".join(response.streaming_content)
        return len(queries.captured_queries)

    LeadFactory(tenant=tenant, owner=owner, account=account)
    few = count()
    for _ in range(40):
        LeadFactory(tenant=tenant, owner=owner, account=account)
    assert count() == few


def test_an_export_the_client_abandons_midway_is_audited_as_incomplete(tenant, api_key):
    from leadmgmt.audit.actors import Actor
    from leads.models import Lead
    from workspace.export import leads_export_csv

    for _ in range(5):
        LeadFactory(tenant=tenant)
    lines = leads_export_csv(tenant=tenant, actor=Actor.for_api_key(api_key[0]), columns=["id"], chunk_rows=2,
                             queryset=Lead.objects.unscoped().filter(tenant=tenant).order_by("id"))
    next(lines), next(lines)  # the header, then the first two rows: then the client goes away
    lines.close()  # what the WSGI server does to the response's iterator on a broken connection
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="leads.exported")
    assert (event.metadata["rows"], event.metadata["complete"]) == (2, False)


def test_a_filter_that_matches_nothing_by_construction_gives_the_header_alone(tenant, api_client):
    LeadFactory(tenant=tenant)
    rows = table(api_client.get(EXPORT, {"owner": "me", "columns": "id,email"}))  # an API key is nobody's "me"
    assert rows == [["Lead ID", "Email"]]
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="leads.exported")
    assert (event.metadata["rows"], event.metadata["complete"]) == (0, True)


def test_a_client_asking_for_text_csv_gets_the_file_and_json_errors(tenant, api_client):
    LeadFactory(tenant=tenant, email="ada@acme.example")
    assert "ada@acme.example" in body(api_client.get(EXPORT, {"columns": "email"}, HTTP_ACCEPT="text/csv"))
    refused = api_client.get(EXPORT, {"columns": "nope"}, HTTP_ACCEPT="text/csv")
    assert refused.status_code == 400 and refused["Content-Type"] == "application/json"
    assert "columns" in refused.json()["errors"]


def test_the_audit_keeps_the_known_filters_only(tenant, api_client):
    body(api_client.get(EXPORT, {"columns": "id", "\x00": "x", "utm": "y", "q": "acme", "ordering": "-score"}))
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="leads.exported")
    assert event.metadata["filters"] == {"ordering": ["-score"], "q": ["acme"]}
