"""`manage.py seed_demo`: the demo tenant `make run` prints, complete and idempotent."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import ApiKey, Membership, Role, Team, Tenant
from leadmgmt.tenancy.selectors import api_key_lookup
from leads.models import DuplicatePair, Lead, LeadForm, Outcome, SignalType, Touch
from nurture.models import NurtureSettings, Sequence, Step, Suppression
from scoring.models import PredictiveModel
from workspace.management.commands.seed_demo import (
    DEMO_BOUNCED,
    DEMO_LEADS,
    DEMO_PASSWORD,
    HISTORY_SIZE,
)

pytestmark = pytest.mark.django_db

COUNTED = [Tenant, get_user_model(), Team, LeadForm, Lead, Touch, AuditEvent, NurtureSettings, Sequence, Step,
           SignalType, DuplicatePair, Suppression]


def seed(credentials_file, base_url="http://127.0.0.1:8000") -> dict:
    out = StringIO()
    call_command("seed_demo", "--json", "--credentials-file", str(credentials_file), "--base-url", base_url, stdout=out)
    return json.loads(out.getvalue())


def row_counts() -> dict[str, int]:
    counts = {model.__name__: model._default_manager.count() for model in COUNTED if not hasattr(model.objects, "unscoped")}
    counts |= {m.__name__: m.objects.unscoped().count() for m in COUNTED if hasattr(m.objects, "unscoped")}
    counts["Membership"] = Membership.objects.unscoped().count()
    counts["ApiKey"] = ApiKey.objects.unscoped().count()
    return counts


def test_seed_demo_creates_a_usable_demo_tenant(tmp_path):
    data = seed(tmp_path / "creds.json")

    tenant = Tenant.objects.get(slug="demo")
    assert tenant.name == "Demo Co" and data["created"] is True
    roles = dict(Membership.objects.unscoped().filter(tenant=tenant).values_list("user__username", "role"))
    assert sorted(roles.values()) == sorted([Role.ADMIN, Role.MANAGER, Role.SDR, Role.SDR, Role.AE, Role.AE,
                                                 Role.MARKETING_OPS])
    assert {u["email"]: u["role"] for u in data["users"]} == roles
    for user in get_user_model().objects.filter(username__in=roles):
        assert user.check_password(DEMO_PASSWORD)
    assert get_user_model().objects.get(username="admin@demo.test").is_staff
    names = {u.username: u.get_full_name() for u in get_user_model().objects.filter(username__in=roles)}
    assert names["sdr1@demo.test"] == "Dana Reyes" and all(names.values()), "demo people have names"

    form = LeadForm.objects.unscoped().get(key=data["form_key"])
    assert form.tenant == tenant and form.allowed_origins == ["*"] and form.is_active
    assert form.success_url == "http://127.0.0.1:8000/?submitted=1"

    key = api_key_lookup(raw=data["api_key"])
    assert key is not None and key.tenant == tenant
    assert json.loads((tmp_path / "creds.json").read_text())["api_key"] == data["api_key"]
    assert (tmp_path / "creds.json").stat().st_mode & 0o077 == 0

    leads = Lead.objects.unscoped().filter(tenant=tenant)
    assert leads.count() == len(DEMO_LEADS) + HISTORY_SIZE == data["leads_total"] == data["leads_added"]
    assert Touch.objects.unscoped().filter(tenant=tenant).count() >= len(DEMO_LEADS)
    # A closed history, so the learned model, backtest and feedback report show something on the first run.
    outcomes = Outcome.objects.unscoped().filter(tenant=tenant)
    assert outcomes.count() == HISTORY_SIZE and 30 <= outcomes.filter(result="won").count() <= HISTORY_SIZE - 200
    assert all(o.amount for o in outcomes.filter(result="won"))
    assert not outcomes.filter(result="lost", lost_reason=None).exists(), "lost for a reason of the taxonomy"
    learned = PredictiveModel.objects.unscoped().get(tenant=tenant, is_current=True)
    assert learned.status == "ready" and learned.closed_count == HISTORY_SIZE
    open_leads = leads.exclude(email__endswith="history.demo.test").exclude(email__endswith="home.history.demo.test")
    assert open_leads.count() == len(DEMO_LEADS)
    assert not open_leads.filter(conversion_probability=None).exists(), "every demo lead has its odds"
    assert not leads.filter(owner=None, email__endswith="history.demo.test").exists()
    audited = AuditEvent.objects.unscoped().filter(tenant=tenant)
    assert audited.filter(action="tenant.created").count() == 1
    nurture = NurtureSettings.objects.unscoped().get(tenant=tenant)
    assert nurture.postal_address.strip(), "the demo tenant can send nurture email under `make run`"
    assert Sequence.objects.unscoped().filter(tenant=tenant, status="active").count() == 5
    assert audited.filter(object_type="leads.lead").values("object_id").distinct().count() == len(DEMO_LEADS) \
        + HISTORY_SIZE, "every sample lead's capture, every closed one's outcome"


def test_seed_demo_gives_managers_a_duplicate_to_review_and_a_bounced_address(tmp_path):
    seed(tmp_path / "creds.json")
    tenant = Tenant.objects.get(slug="demo")

    [pair] = DuplicatePair.objects.unscoped().filter(tenant=tenant)
    assert pair.status == "open"
    assert {pair.lead.email, pair.other.email} == {"dana.whitfield@northwind-analytics.com",
                                                   "dana.whitfield.home@gmail.com"}
    bounced = Lead.objects.unscoped().get(tenant=tenant, email=DEMO_BOUNCED[0])
    assert bounced.email_bounced_at is not None and "does not exist" in bounced.email_bounce_note
    assert Suppression.objects.unscoped().filter(tenant=tenant, email=DEMO_BOUNCED[0]).exists()


def test_seed_demo_twice_adds_nothing_and_prints_the_same_working_credentials(tmp_path):
    first = seed(tmp_path / "creds.json")
    before = row_counts()

    second = seed(tmp_path / "creds.json")

    assert row_counts() == before
    assert second["created"] is False and second["leads_added"] == 0
    assert (second["form_key"], second["api_key"]) == (first["form_key"], first["api_key"])
    assert api_key_lookup(raw=second["api_key"]) is not None


def test_seed_demo_rotates_the_demo_key_when_its_secret_is_lost(tmp_path):
    first = seed(tmp_path / "creds.json")
    (tmp_path / "creds.json").unlink()

    second = seed(tmp_path / "creds.json")

    assert second["api_key"] != first["api_key"]
    assert api_key_lookup(raw=first["api_key"]) is None, "the key nobody can print any more is revoked"
    assert api_key_lookup(raw=second["api_key"]).tenant.slug == "demo"
    active = ApiKey.objects.unscoped().filter(tenant__slug="demo", revoked_at__isnull=True)
    assert active.count() == 1
    assert AuditEvent.objects.unscoped().filter(action="api_key.revoked", tenant__slug="demo").count() == 1
    assert second["leads_added"] == 0


def test_seed_demo_leaves_other_tenants_alone(tmp_path, tenant):
    from tests.support.factories import LeadFactory

    other_lead = LeadFactory(tenant=tenant, email=DEMO_LEADS[0]["email"])

    data = seed(tmp_path / "creds.json")

    assert data["leads_added"] == len(DEMO_LEADS) + HISTORY_SIZE, "the same email in another tenant is another lead"
    other_lead.refresh_from_db()
    assert other_lead.tenant == tenant
    assert Lead.objects.unscoped().filter(tenant=tenant).count() == 1
