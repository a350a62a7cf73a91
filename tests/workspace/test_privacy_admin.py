"""The Lead admin's privacy actions (issue 15): "Export personal data (subject access)" downloads the JSON,
"Erase person (GDPR)" asks on a confirmation page first; only tenant admins get them (the role table), and an
admin never reaches another tenant's lead through them."""
from __future__ import annotations

import json

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leads.erasure import email_hash
from leads.models import Lead
from tests.support.intake import post_json
from tests.support.privacy import rows_holding
from tests.support.scoring_admin import post_data

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:leads_lead_changelist"


def _staff(make_member, tenant, role):
    user = make_member(tenant, role=role)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def _captured(client, form, email, first_name="Ysoldine", last_name="Quarrington"):
    response = post_json(client, {"email": email, "first_name": first_name, "last_name": last_name,
                                  "phone": "+44 20 7946 0555"}, form=form)
    assert response.status_code == 201, response.content
    return Lead.objects.unscoped().get(tenant=form.tenant, email=email)


@pytest.fixture
def lead(client, lead_form):
    return _captured(client, lead_form, "ines.quarrie@privacy-admin.example")


def _act(client, action, leads, **extra):
    return client.post(reverse(CHANGELIST), {"action": action, ACTION_CHECKBOX_NAME: [str(x.pk) for x in leads],
                                             **extra})


def test_an_admin_downloads_the_subject_access_export(client, tenant, lead, make_member):
    admin_user = _staff(make_member, tenant, Role.ADMIN)
    client.force_login(admin_user)
    response = _act(client, "privacy_export", [lead])
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    disposition = response["Content-Disposition"]
    assert disposition == f'attachment; filename="subject-access-{email_hash(lead.email)[:16]}.json"'
    data = json.loads(response.content)
    assert data["leads"][0]["lead"]["email"] == lead.email
    assert data["leads"][0]["touches"][0]["payload"]["first_name"] == "Ysoldine"
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="person.exported")
    assert event.actor_user_id == admin_user.pk


def test_an_admin_erases_after_a_confirmation_page(client, tenant, lead, make_member):
    admin_user = _staff(make_member, tenant, Role.ADMIN)
    client.force_login(admin_user)
    listed = client.get(reverse(CHANGELIST)).content.decode()
    assert "Erase person (GDPR)" in listed and "Export personal data (subject access)" in listed
    # An edit in the admin first: Django's admin log keeps the lead's name (its object_repr).
    change = reverse("admin:leads_lead_change", args=[lead.pk])
    edited = client.post(change, {**post_data(client.get(change)), "job_title": "Chief of Staff"})
    assert edited.status_code == 302, edited.content
    assert LogEntry.objects.filter(object_id=str(lead.pk), object_repr__contains="Ysoldine").exists()

    page = _act(client, "privacy_erase", [lead])
    assert page.status_code == 200
    html = page.content.decode()
    assert "Erase 1 person at their request?" in html and 'name="confirmed" value="yes"' in html
    assert Lead.objects.unscoped().get(pk=lead.pk).erased_at is None  # asked, not done

    done = _act(client, "privacy_erase", [lead], confirmed="yes")
    assert done.status_code == 302
    erased = Lead.objects.unscoped().get(pk=lead.pk)
    assert erased.erased_at is not None and (erased.email, erased.first_name, erased.phone) == ("", "", "")
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="person.erased")
    assert event.actor_user_id == admin_user.pk and event.object_id == email_hash("ines.quarrie@privacy-admin.example")
    # The erased lead is still listed (counts), by its new name.
    listed = client.get(reverse(CHANGELIST)).content.decode()
    assert "ines.quarrie" not in listed
    assert rows_holding(["ines.quarrie@privacy-admin.example", "Ysoldine", "Quarrington", "79460555"]) == {}


def test_marketing_ops_see_the_leads_but_not_the_privacy_actions(client, tenant, lead, make_member):
    client.force_login(_staff(make_member, tenant, Role.MARKETING_OPS))
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Erase person (GDPR)" not in html and "Export personal data" not in html
    for action in ("privacy_erase", "privacy_export"):
        response = _act(client, action, [lead], confirmed="yes")
        assert response.status_code in (200, 302)
        assert not response.get("Content-Disposition")
    assert Lead.objects.unscoped().get(pk=lead.pk).erased_at is None
    assert not AuditEvent.objects.unscoped().filter(action__startswith="person.").exists()


@pytest.mark.parametrize("role", [Role.MANAGER, Role.SDR, Role.AE])
def test_other_roles_cannot_reach_the_lead_admin_or_its_actions(client, tenant, lead, make_member, role):
    client.force_login(_staff(make_member, tenant, role))
    response = _act(client, "privacy_erase", [lead], confirmed="yes")
    assert response.status_code in (302, 403)
    assert Lead.objects.unscoped().get(pk=lead.pk).erased_at is None


def test_an_admin_cannot_erase_or_export_another_tenants_person(client, tenant, other_tenant, other_lead_form,
                                                                 lead, make_member):
    theirs = _captured(client, other_lead_form, "someone@globex-person.example", first_name="Tamsin")
    client.force_login(_staff(make_member, tenant, Role.ADMIN))
    for action in ("privacy_erase", "privacy_export"):
        response = _act(client, action, [theirs], confirmed="yes")
        assert not response.get("Content-Disposition")
        assert "someone@globex-person.example" not in response.content.decode()
    assert Lead.objects.unscoped().get(pk=theirs.pk).erased_at is None
    assert not AuditEvent.objects.unscoped().filter(action__startswith="person.").exists()


def test_a_platform_superuser_erases_inside_the_leads_tenant(client, tenant, other_tenant, other_lead_form, lead):
    from django.contrib.auth import get_user_model

    theirs = _captured(client, other_lead_form, lead.email)  # the same address in another tenant
    root = get_user_model().objects.create_superuser("root@privacy.test", "root@privacy.test", "pw-for-tests-123")
    client.force_login(root)
    done = _act(client, "privacy_erase", [lead], confirmed="yes")
    assert done.status_code == 302
    assert Lead.objects.unscoped().get(pk=lead.pk).erased_at is not None
    assert Lead.objects.unscoped().get(pk=theirs.pk).erased_at is None
    event = AuditEvent.objects.unscoped().get(action="person.erased")
    assert event.tenant_id == tenant.pk and event.actor_user_id == root.pk
