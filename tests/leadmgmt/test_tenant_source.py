"""The tenant of a request comes from the form key, the API key or the session, never from the client."""
import pytest

from leadmgmt.tenancy.models import ApiKey
from leads.models import Lead
from tests.support.factories import LeadFactory
from tests.support.intake import post_json

pytestmark = pytest.mark.django_db


def test_intake_ignores_a_tenant_named_in_the_body(client, lead_form, other_tenant):
    response = post_json(client, {"email": "who@owns.example", "tenant": other_tenant.slug,
                                  "tenant_id": other_tenant.pk}, form=lead_form)
    assert response.status_code == 201
    lead = Lead.objects.unscoped().get(email="who@owns.example")
    assert lead.tenant_id == lead_form.tenant_id
    assert not Lead.objects.unscoped().filter(tenant=other_tenant).exists()


def test_leads_api_cannot_move_a_lead_to_another_tenant(api_client, tenant, other_tenant):
    lead = LeadFactory(tenant=tenant)
    response = api_client.patch(f"/api/v1/leads/{lead.pk}/", {"tenant": other_tenant.pk}, format="json")
    assert response.status_code == 400
    assert Lead.objects.unscoped().get(pk=lead.pk).tenant_id == tenant.pk


def test_leads_api_ignores_tenant_query_parameters(api_client, tenant, other_tenant):
    LeadFactory(tenant=other_tenant, email="theirs@globex.example")
    mine = LeadFactory(tenant=tenant, email="mine@acme.example")
    for query in (f"?tenant={other_tenant.pk}", f"?tenant_id={other_tenant.pk}", f"?tenant__slug={other_tenant.slug}"):
        emails = [row["email"] for row in api_client.get(f"/api/v1/leads/{query}").json()["results"]]
        assert emails == [mine.email]


def test_api_key_use_is_recorded_as_last_used(api_client, api_key):
    key, _raw = api_key
    assert key.last_used_at is None
    assert api_client.get("/api/v1/leads/").status_code == 200
    assert ApiKey.objects.unscoped().get(pk=key.pk).last_used_at is not None
