"""`tenant_create` provisions the platform's part and sends `tenant_provisioned`; each app answers with its
defaults (the platform imports none of them), all in one transaction."""
from __future__ import annotations

import pytest
from django.db import transaction

from leadmgmt.tenancy.events import tenant_provisioned
from leadmgmt.tenancy.models import Tenant
from leadmgmt.tenancy.services import tenant_create
from leads.models import LeadForm
from nurture.models import NurtureSettings, Sequence
from routing.models import RejectionReason, RoutingRule, SlaPolicy
from scoring.models import ScoringModel

pytestmark = pytest.mark.django_db


def test_every_app_answers_with_its_defaults():
    provisioned = tenant_create(slug="initech", name="Initech", admin_email="ADMIN@initech.test")
    tenant = provisioned.tenant
    form = LeadForm.objects.unscoped().get(tenant=tenant)
    assert provisioned.form_key == form.key and form.allowed_origins == ["*"]
    assert ScoringModel.objects.unscoped().filter(tenant=tenant).count() == 1
    assert RoutingRule.objects.unscoped().filter(tenant=tenant).exists()
    assert SlaPolicy.objects.unscoped().filter(tenant=tenant).exists()
    assert RejectionReason.objects.unscoped().filter(tenant=tenant).exists()
    assert NurtureSettings.objects.unscoped().filter(tenant=tenant).exists()
    assert Sequence.objects.unscoped().filter(tenant=tenant).count() == 5
    assert provisioned.admin_email == "admin@initech.test"


def test_the_receivers_answer_in_floor_order():
    """Lowest floor first: a receiver may rely on what the floors below it created."""
    sync_receivers, _async = tenant_provisioned._live_receivers(Tenant)
    apps = [receiver.__module__.split(".")[0] for receiver in sync_receivers]
    assert apps == ["leads", "scoring", "routing", "nurture"]


def test_a_failing_receiver_rolls_the_whole_tenant_back():
    def explode(sender, **kwargs):
        raise RuntimeError("an app could not create its defaults")

    tenant_provisioned.connect(explode, dispatch_uid="test.explode")
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            tenant_create(slug="globex", name="Globex", admin_email="admin@globex.test")
    finally:
        tenant_provisioned.disconnect(dispatch_uid="test.explode")
    assert not Tenant.objects.filter(slug="globex").exists()
    assert not LeadForm.objects.unscoped().filter(tenant__slug="globex").exists()


def test_the_form_options_reach_the_leads_app():
    provisioned = tenant_create(slug="hooli", name="Hooli", admin_email="admin@hooli.test", form_name="Pricing page",
                                allowed_origins=["https://hooli.example"])
    form = LeadForm.objects.unscoped().get(tenant=provisioned.tenant)
    assert (form.name, form.allowed_origins) == ("Pricing page", ["https://hooli.example"])
