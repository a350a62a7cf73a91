"""Tenant-scoped admin: each tenant's staff see and reach only their own rows; writes are audited."""
import pytest
from django.urls import reverse

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leads.models import Lead

from .factories import AccountFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_client(client, tenant, make_member):
    user = make_member(tenant, role=Role.MARKETING_OPS)
    user.is_staff = True
    user.save()
    client.force_login(user)
    return client


@pytest.fixture
def admin_member_client(client, tenant, make_member):
    user = make_member(tenant, role=Role.ADMIN)
    user.is_staff = True
    user.save()
    client.force_login(user)
    return client


def test_lead_changelist_shows_only_own_tenant(ops_client, tenant, other_tenant):
    mine = LeadFactory(tenant=tenant, email="mine@acme.test")
    LeadFactory(tenant=other_tenant, email="theirs@globex.test")
    response = ops_client.get(reverse("admin:leads_lead_changelist"))
    assert response.status_code == 200
    body = response.content.decode()
    assert mine.email in body
    assert "theirs@globex.test" not in body


def test_other_tenants_lead_is_unreachable_by_url(ops_client, other_tenant):
    theirs = LeadFactory(tenant=other_tenant, email="theirs@globex.test")
    response = ops_client.get(reverse("admin:leads_lead_change", args=[theirs.pk]), follow=True)
    assert "theirs@globex.test" not in response.content.decode()
    assert b"doesn" in response.content  # "… with ID … doesn't exist. Perhaps it was deleted?"


@pytest.mark.parametrize("url_name", ["admin:tenancy_tenant_changelist", "admin:auth_user_changelist",
                                      "admin:django_celery_beat_periodictask_changelist"])
def test_superuser_only_models_are_refused_to_tenant_staff(ops_client, url_name):
    assert ops_client.get(reverse(url_name)).status_code == 403


def test_marketing_ops_cannot_edit_memberships_or_keys(ops_client):
    assert ops_client.get(reverse("admin:tenancy_apikey_add")).status_code == 403
    assert ops_client.get(reverse("admin:tenancy_membership_changelist")).status_code == 403


def test_admin_edit_of_a_lead_is_audited_and_marked_as_edited(admin_member_client, tenant):
    lead = LeadFactory(tenant=tenant, email="x@acme.test", company="Acme", job_title="")
    url = reverse("admin:leads_lead_change", args=[lead.pk])
    page = admin_member_client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update({"job_title": "VP Sales", "attributes": "{}"})
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = admin_member_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    lead = Lead.objects.unscoped().get(pk=lead.pk)
    assert lead.job_title == "VP Sales"
    assert "job_title" in lead.edited_fields
    event = AuditEvent.objects.unscoped().get(action="lead.updated", object_id=str(lead.pk))
    assert event.changes["job_title"] == ["", "VP Sales"]
    assert event.actor_kind == "user"


def test_owner_choices_are_members_of_the_tenant_only(admin_member_client, tenant, other_tenant, make_member):
    # A lead's owner changes only through routing (read-only in its admin form); an Account's
    # owner (named-account routing) is chosen in the admin, among the tenant's members only.
    rep = make_member(tenant, role=Role.SDR)
    outsider = make_member(other_tenant, role=Role.SDR)
    UserFactory()
    account = AccountFactory(tenant=tenant)
    page = admin_member_client.get(reverse("admin:leads_account_change", args=[account.pk]))
    owner_qs = page.context["adminform"].form.fields["owner"].queryset
    assert rep in owner_qs and outsider not in owner_qs


def test_lead_page_shows_its_touches_to_tenant_staff(admin_member_client, tenant):
    from leads.models import Touch

    lead = LeadFactory(tenant=tenant)
    Touch.objects.unscoped().create(tenant=tenant, lead=lead, kind="created", payload={"utm_source": "linkedin-xyz"})
    page = admin_member_client.get(reverse("admin:leads_lead_change", args=[lead.pk]))
    assert "linkedin-xyz" in page.content.decode()


def test_lead_form_admin_shows_an_embeddable_snippet(admin_member_client, lead_form):
    page = admin_member_client.get(reverse("admin:leads_leadform_change", args=[lead_form.pk]))
    body = page.content.decode()
    assert lead_form.key in body and "/api/v1/intake/" in body
