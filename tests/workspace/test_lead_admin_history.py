"""The lead's admin page shows its assignment history; owners change only through routing."""
from __future__ import annotations

import pytest
from django.urls import reverse

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.models import Role
from routing.models import Trigger
from routing.services.assign import lead_assign
from tests.support.factories import LeadFactory

pytestmark = pytest.mark.django_db


def _admin(make_member, tenant):
    user = make_member(tenant, role=Role.ADMIN)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def test_lead_admin_page_lists_assignment_history(client, tenant, make_member):
    admin_user = _admin(make_member, tenant)
    rep = make_member(tenant, role=Role.SDR)
    lead = LeadFactory(tenant=tenant)
    lead_assign(lead=lead, owner=rep, actor=Actor.for_user(admin_user), trigger=Trigger.REASSIGNMENT,
                reason="Takes over the Acme account")
    client.force_login(admin_user)
    page = client.get(reverse("admin:leads_lead_change", args=[lead.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "assignment history" in html.lower()
    assert "Takes over the Acme account" in html
    assert rep.username in html


def test_owner_cannot_be_typed_into_the_lead_admin_form(client, tenant, make_member):
    admin_user = _admin(make_member, tenant)
    rep = make_member(tenant, role=Role.SDR)
    lead = LeadFactory(tenant=tenant)
    client.force_login(admin_user)
    page = client.get(reverse("admin:leads_lead_change", args=[lead.pk]))
    form = page.context["adminform"].form
    assert "owner" not in form.fields  # read-only: reassign through routing, which records history
    client.post(reverse("admin:leads_lead_change", args=[lead.pk]),
                {"email": lead.email, "owner": rep.pk, "status": lead.status, "stage": lead.stage})
    lead.refresh_from_db()
    assert lead.owner_id is None


def test_another_tenants_history_is_not_on_the_page(client, tenant, other_tenant, make_member):
    admin_user = _admin(make_member, tenant)
    other_lead = LeadFactory(tenant=other_tenant)
    client.force_login(admin_user)
    page = client.get(reverse("admin:leads_lead_change", args=[other_lead.pk]))
    assert page.status_code in (302, 404)
