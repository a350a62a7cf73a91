"""The account score where people look: the lead page's account card, the leads API (`account_score` and the
account's score and engaged people), the Account admin's list and detail; another tenant's account is never
shown. And end to end: a capture batch of several people of one company is scored, its account with it, and
routed by an `account_score` rule in the same run."""
from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.tenancy.models import Role
from leads.models import Account, Lead, Signal
from leads.services.capture import lead_capture
from routing.models import Assignment
from scoring.services import scoring_default_model_create
from tests.support.factories import AccountFactory, LeadFactory
from tests.support.routing import rep, rule, team
from tests.support.workspace import owned_lead
from workspace.services.pipeline import captured_leads_process

pytestmark = pytest.mark.django_db


def scored_account(tenant, **kwargs) -> Account:
    account = AccountFactory(tenant=tenant, **kwargs)
    Account.objects.unscoped().filter(pk=account.pk).update(
        score=72, scored_leads=5, engaged_leads=4, fit_max=35, fit_avg=22, engagement_max=25, engagement_sum=60,
        others_points=18, breadth_bonus=30)
    return Account.objects.unscoped().get(pk=account.pk)


def test_the_lead_page_shows_the_account_score_and_its_engaged_people(tenant, org, signed_in):
    account = scored_account(tenant, domain="initech.example", name="Initech")
    lead = owned_lead(tenant, org["rep"], account=account)
    html = signed_in(org["rep"], tenant).get(f"/leads/{lead.pk}/").content.decode()
    assert 'data-testid="account-score"' in html and "Account score 72 · 4 engaged people" in html
    assert "best fit 35 + best engagement 25 + other engaged people 18 + breadth bonus 30 = 72" in html
    unscored = owned_lead(tenant, org["rep"], account=AccountFactory(tenant=tenant))
    assert 'data-testid="account-score"' not in signed_in(org["rep"], tenant).get(f"/leads/{unscored.pk}/").content.decode()


def test_the_leads_api_gives_each_lead_its_account_score(tenant, make_member, django_assert_max_num_queries):
    admin = make_member(tenant, Role.ADMIN)
    client = APIClient()
    client.force_login(admin)
    account = scored_account(tenant)
    with_account = LeadFactory(tenant=tenant, account=account)
    without = LeadFactory(tenant=tenant)
    body = client.get(f"/api/v1/leads/{with_account.pk}/").json()
    assert body["account_score"] == 72
    assert body["account"] == {"id": account.pk, "domain": account.domain, "name": account.name, "score": 72,
                               "engaged_leads": 4}
    assert client.get(f"/api/v1/leads/{without.pk}/").json()["account_score"] is None
    for _ in range(10):
        LeadFactory(tenant=tenant, account=scored_account(tenant))
    with django_assert_max_num_queries(12):  # the accounts come with the page's leads, not one query each
        rows = client.get("/api/v1/leads/?page_size=50").json()["results"]
    assert sum(1 for row in rows if row["account_score"] == 72) == 11


@pytest.fixture
def ops_admin(tenant, make_member):
    user = make_member(tenant, role=Role.MARKETING_OPS)
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def test_the_account_admin_lists_scores_and_explains_them_and_keeps_them_read_only(tenant, ops_admin,
                                                                                    django_assert_max_num_queries):
    account = scored_account(tenant, domain="initech.example")
    for _ in range(5):
        scored_account(tenant)
    with django_assert_max_num_queries(15):
        page = ops_admin.get(reverse("admin:leads_account_changelist") + "?o=-4")
    assert page.status_code == 200
    html = page.content.decode()
    assert "initech.example" in html and "<td class=\"field-score\">72</td>" in html
    assert "field-engaged_leads" in html
    detail = ops_admin.get(reverse("admin:leads_account_change", args=[account.pk])).content.decode()
    assert "Account score" in detail and "best fit 35 + best engagement 25" in detail
    assert 'name="score"' not in detail and 'name="engaged_leads"' not in detail  # scoring writes them
    ops_admin.post(reverse("admin:leads_account_change", args=[account.pk]),
                   {"domain": "initech.example", "name": "Initech", "owner": "", "score": "5"})
    assert Account.objects.unscoped().get(pk=account.pk).score == 72


def test_the_account_admin_never_shows_another_tenants_account(tenant, other_tenant, ops_admin):
    theirs = scored_account(other_tenant, domain="globex.example")
    listing = ops_admin.get(reverse("admin:leads_account_changelist")).content.decode()
    assert "globex.example" not in listing
    page = ops_admin.get(reverse("admin:leads_account_change", args=[theirs.pk]), follow=True)
    assert "globex.example" not in page.content.decode()


def test_a_capture_batch_scores_its_account_and_routes_by_it_in_the_same_run(tenant, lead_form):
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    aes, sdrs = team(tenant, "AEs"), team(tenant, "SDRs")
    ae, sdr = rep(tenant, aes, role=Role.AE), rep(tenant, sdrs)
    rule(tenant, 10, team=aes, roles=[Role.AE], name="Buying committee",
         conditions=[{"field": "account_score", "operator": "range", "value": {"min": 60}}])
    rule(tenant, 20, team=sdrs, name="Everyone else")
    now = timezone.now()
    # Each looked at the pricing page before filling in the form (20 points of engagement each).
    Signal.objects.unscoped().bulk_create([
        Signal(tenant=tenant, email=f"{name}@initech.example", type="pricing_page_view", occurred_at=now)
        for name in ("peter", "bill", "milton")])
    with transaction.atomic():
        leads = [lead_capture(tenant=tenant, data={"email": f"{name}@initech.example", "job_title": title},
                              actor=Actor.for_form(lead_form), form=lead_form).lead
                 for name, title in (("peter", "CEO"), ("bill", "VP Engineering"), ("milton", "Director IT"))]
        loner = lead_capture(tenant=tenant, data={"email": "solo@hooli.example", "job_title": "Engineer"},
                             actor=Actor.for_form(lead_form), form=lead_form).lead
    captured_leads_process(tenant=tenant)
    account = Account.objects.unscoped().get(tenant=tenant, domain="initech.example")
    # One of them alone would score 25 + 20 = 45; the three: 25 + 20 + 50 % of 40 + 2 × 10.
    assert (account.scored_leads, account.engaged_leads, account.score) == (3, 3, 85)
    owners = dict(Lead.objects.unscoped().filter(pk__in=[x.pk for x in [*leads, loner]]).values_list("pk", "owner_id"))
    assert {owners[x.pk] for x in leads} == {ae.pk} and owners[loner.pk] == sdr.pk
    assert Assignment.objects.unscoped().filter(lead__in=leads, rule_name="Buying committee").count() == 3
