"""The Lead admin's "Export selected to CSV": the selected leads (or all matching) of the tenant, streamed and
audited; offered to the roles the matrix allows, never with another tenant's leads."""
from __future__ import annotations

import csv
import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from tests.support.factories import LeadFactory
from workspace.export import DEFAULT_COLUMNS

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:leads_lead_changelist")


def staff(make_member, tenant, role=Role.ADMIN) -> Client:
    user = make_member(tenant, role=role)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


def export(client, leads, *, across=False, query="", columns=DEFAULT_COLUMNS, confirmed=True):
    """The action as the chooser page posts it back (`confirmed`), or its first step (the chooser)."""
    data = {"action": "export_csv", ACTION_CHECKBOX_NAME: [str(lead.pk) for lead in leads], "index": 0}
    if across:
        data["select_across"] = "1"
    if confirmed:
        data.update(confirmed="yes", columns=list(columns))
    return client.post(CHANGELIST + query, data)


def emails(response) -> list[str]:
    assert response.status_code == 200, response.content[:500]
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0][2] == "Email"
    return [row[2] for row in rows[1:]]


def test_the_selected_leads_are_exported_and_audited(tenant, make_member):
    leads = [LeadFactory(tenant=tenant, email=f"l{i}@acme.example") for i in range(3)]
    client = staff(make_member, tenant)
    assert "Export selected to CSV" in client.get(CHANGELIST).content.decode()
    assert sorted(emails(export(client, leads[:2]))) == ["l0@acme.example", "l1@acme.example"]
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="leads.exported")
    assert event.metadata["source"] == "admin" and event.metadata["rows"] == 2
    assert event.metadata["filters"]["selected"] == ["2"]


def test_select_all_exports_every_lead_matching_the_changelist_filters(tenant, make_member):
    LeadFactory(tenant=tenant, email="web@acme.example", source="web_form")
    LeadFactory(tenant=tenant, email="event@acme.example", source="event")
    client = staff(make_member, tenant, Role.MARKETING_OPS)
    one = LeadFactory(tenant=tenant, email="web2@acme.example", source="web_form")
    assert sorted(emails(export(client, [one], across=True, query="?source=web_form"))) == [
        "web2@acme.example", "web@acme.example"]


def test_another_tenants_selected_ids_are_not_exported(tenant, other_tenant, make_member):
    theirs = LeadFactory(tenant=other_tenant, email="secret@globex.example")
    mine = LeadFactory(tenant=tenant, email="mine@acme.example")
    assert emails(export(staff(make_member, tenant), [theirs, mine])) == ["mine@acme.example"]


@pytest.mark.parametrize("role", [Role.SDR, Role.AE, Role.MANAGER])
def test_roles_without_the_lead_admin_cannot_export_through_it(tenant, make_member, role):
    lead = LeadFactory(tenant=tenant)
    response = export(staff(make_member, tenant, role), [lead])
    assert response.status_code == 403
    assert not AuditEvent.objects.unscoped().filter(action="leads.exported").exists()


def test_the_action_first_offers_the_columns_then_exports_the_chosen_ones(tenant, make_member):
    leads = [LeadFactory(tenant=tenant, email=f"c{i}@acme.example", company="Acme") for i in range(2)]
    client = staff(make_member, tenant)
    chooser = export(client, leads, confirmed=False)
    assert chooser.status_code == 200 and not isinstance(chooser, StreamingHttpResponse)
    page = chooser.content.decode()
    assert 'name="columns" value="email" checked' in page and 'name="columns" value="id">' in page
    assert page.count(f'name="{ACTION_CHECKBOX_NAME}"') == 2 and 'name="confirmed" value="yes"' in page
    assert "style=" not in page.split('id="content-main"')[1]  # the CSP refuses inline styles
    assert not AuditEvent.objects.unscoped().filter(action="leads.exported").exists()  # nothing exported yet

    response = export(client, leads, columns=["company", "email"])
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode()[1:])))
    assert rows[0] == ["Company", "Email"] and sorted(rows[1:]) == [["Acme", "c0@acme.example"],
                                                                    ["Acme", "c1@acme.example"]]
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="leads.exported")
    assert event.metadata["columns"] == ["company", "email"]


@pytest.mark.parametrize(("columns", "message"), [([], "Tick at least one column."),
                                                  (["email", "password"], "Unknown column &#x27;password&#x27;.")])
def test_no_column_or_an_unknown_one_is_refused_on_the_chooser(tenant, make_member, columns, message):
    lead = LeadFactory(tenant=tenant)
    response = export(staff(make_member, tenant), [lead], columns=columns)
    assert response.status_code == 400 and message in response.content.decode()
    assert 'name="columns" value="email" checked' in response.content.decode()
    assert not AuditEvent.objects.unscoped().filter(action="leads.exported").exists()
