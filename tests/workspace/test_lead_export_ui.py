"""The UI's "Export CSV": My queue (`/queue/export/`) and the team queue (`/manager/export/`) download the list
the page shows, with its filters and the columns ticked; other teams, roles and tenants stay out."""
from __future__ import annotations

import csv
import io

import pytest
from django.http import StreamingHttpResponse

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leads.models import LeadStatus
from tests.support.factories import TeamFactory
from tests.support.workspace import owned_lead, person

pytestmark = pytest.mark.django_db


def rows(response) -> list[list[str]]:
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_my_queue_offers_the_chooser_with_the_default_columns_and_the_current_filters(tenant, org, signed_in):
    owned_lead(tenant, org["rep"])
    html = signed_in(org["rep"], tenant).get("/queue/?status=new&q=acme").content.decode()
    assert 'data-testid="export-chooser"' in html and 'action="/queue/export/"' in html
    assert 'name="columns" value="email" checked' in html and 'name="columns" value="account_domain">' in html
    assert '<input type="hidden" name="status" value="new" data-filter-copy>' in html
    assert '<input type="hidden" name="q" value="acme" data-filter-copy>' in html


def test_my_queue_export_has_my_open_leads_with_the_filters_in_queue_order(tenant, org, signed_in):
    first = owned_lead(tenant, org["rep"], company="Acme One", score=90, is_hot=True)
    second = owned_lead(tenant, org["rep"], company="Acme Two", score=10)
    owned_lead(tenant, org["rep"], company="Globex")  # filtered out by q
    closed = owned_lead(tenant, org["rep"], company="Acme Closed")
    closed.status = LeadStatus.REJECTED
    closed.save(update_fields=["status"])
    owned_lead(tenant, org["rep2"], company="Acme Else")  # another rep's
    table = rows(signed_in(org["rep"], tenant).get("/queue/export/", {"q": "acme", "columns": ["id", "company"]}))
    assert table == [["Lead ID", "Company"], [str(first.pk), "Acme One"], [str(second.pk), "Acme Two"]]
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="leads.exported")
    assert event.metadata["source"] == "queue" and event.metadata["filters"] == {"q": ["acme"]}
    assert event.metadata["rows"] == 2 and event.actor_user_id == org["rep"].pk


def test_an_unknown_column_is_a_400(tenant, org, signed_in):
    response = signed_in(org["rep"], tenant).get("/queue/export/", {"columns": "email,secret_field"})
    assert response.status_code == 400 and b"secret_field" in response.content


def test_the_team_queue_exports_the_managers_scope_with_its_filters(tenant, org, signed_in):
    west = TeamFactory(tenant=tenant, name="West")
    west_rep = person(tenant, team=west)
    mine = owned_lead(tenant, org["rep"])
    theirs = owned_lead(tenant, org["rep2"])
    outside = owned_lead(tenant, west_rep)
    client = signed_in(org["manager"], tenant)
    html = client.get("/manager/").content.decode()
    assert 'action="/manager/export/"' in html and 'id="team-queue-filters"' in html
    exported = {row[0] for row in rows(client.get("/manager/export/", {"columns": "id"}))[1:]}
    assert exported == {str(mine.pk), str(theirs.pk)} and str(outside.pk) not in exported
    only_rep = rows(client.get("/manager/export/", {"columns": "id,owner_email", "rep": org["rep"].pk}))
    assert [row[0] for row in only_rep[1:]] == [str(mine.pk)]
    admin = person(tenant, role=Role.ADMIN)
    assert str(outside.pk) in {row[0] for row in rows(signed_in(admin, tenant).get("/manager/export/",
                                                                                  {"columns": "id"}))}


def test_reps_and_marketing_ops_cannot_export_the_team_queue(tenant, org, signed_in):
    owned_lead(tenant, org["rep"])
    assert signed_in(org["rep"], tenant).get("/manager/export/").status_code == 403
    assert signed_in(person(tenant, role=Role.MARKETING_OPS), tenant).get("/manager/export/").status_code == 403
    assert not AuditEvent.objects.unscoped().filter(action="leads.exported").exists()


def test_another_tenants_members_export_only_their_own_leads(tenant, other_tenant, org, signed_in):
    owned_lead(tenant, org["rep"], email="ours@acme.example")
    stranger = person(other_tenant, role=Role.ADMIN)
    client = signed_in(stranger, other_tenant)
    for url in ("/queue/export/", "/manager/export/"):
        table = rows(client.get(url, {"columns": "email"}))
        assert table == [["Email"]], url


def test_signed_out_visitors_are_sent_to_sign_in(client):
    assert client.get("/queue/export/").status_code == 302
    assert client.get("/manager/export/").status_code == 302
