"""Account scores: the formula (several engaged people of one company count for more than one), recomputed in
the scoring path set-based (the same statements for 5 leads as for 40), the whole-tenant command, idempotence,
the model's settings, and tenant isolation."""
from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.context import tenant_scope
from leads.models import Account, Lead, Signal
from scoring.account_scores import accounts_score
from scoring.models import ScoringModel
from scoring.services import leads_score, scoring_default_model_create
from scoring.tasks import accounts_score_task
from tests.support.factories import AccountFactory, LeadFactory, TenantFactory

pytestmark = pytest.mark.django_db


def person(tenant, account, *, signals=(), email=None, **fields):
    """A lead of `account` with these signals (types, now), not scored yet."""
    now = timezone.now()
    lead = LeadFactory(tenant=tenant, account=account, company_domain=account.domain if account else "",
                       email=email or f"p{Lead.objects.unscoped().count()}@{account.domain if account else 'x.example'}",
                       last_activity_at=now, **fields)
    Signal.objects.unscoped().bulk_create([Signal(tenant=tenant, lead=lead, type=t, occurred_at=now - timedelta(hours=1))
                                           for t in signals])
    return lead


def fresh(account) -> Account:
    return Account.objects.unscoped().get(pk=account.pk)


def test_an_account_with_one_engaged_lead_scores_as_that_lead(tenant, model):
    acme = AccountFactory(tenant=tenant, domain="acme.example")
    lead = person(tenant, acme, signals=["pricing_page_view"], job_title="VP Marketing")  # fit 20, engagement 20
    leads_score(tenant=tenant, lead_ids=[lead.pk], cause="manual")
    lead = Lead.objects.unscoped().get(pk=lead.pk)
    account = fresh(acme)
    assert (lead.fit_score, lead.engagement_score, lead.score) == (20, 20, 40)
    assert account.score == lead.score == 40
    assert (account.scored_leads, account.engaged_leads, account.fit_max, account.fit_avg, account.engagement_max,
            account.engagement_sum, account.others_points, account.breadth_bonus) == (1, 1, 20, 20, 20, 20, 0, 0)
    assert account.last_engaged_at == lead.last_activity_at and account.scored_at is not None
    assert account.score_summary == "Account score 40 · 1 engaged person"


def test_several_engaged_people_of_one_company_count_for_more_than_one(tenant, model):
    one, many = AccountFactory(tenant=tenant), AccountFactory(tenant=tenant)
    alone = person(tenant, one, signals=["pricing_page_view"], job_title="VP Marketing")
    team = [person(tenant, many, signals=["pricing_page_view"], job_title="VP Marketing"),
            person(tenant, many, signals=["product_page_view"], job_title="Manager"),  # fit 10, engagement 10
            person(tenant, many, signals=["demo_request"]),  # engagement 30
            person(tenant, many, signals=["blog_post_view"])]  # engagement 3: not an engaged person (< 10)
    leads_score(tenant=tenant, lead_ids=[alone.pk, *[x.pk for x in team]], cause="manual")
    single, group = fresh(one), fresh(many)
    assert single.score == 40
    # best fit 20 + best engagement 30 + 50 % of the other engaged people's (20 + 10) + 10 × (3 − 1) people
    assert (group.engaged_leads, group.scored_leads, group.fit_max, group.engagement_max, group.engagement_sum,
            group.others_points, group.breadth_bonus) == (3, 4, 20, 30, 60, 15, 20)
    assert group.score == 20 + 30 + 15 + 20 == 85 > single.score
    assert group.score_summary == "Account score 85 · 3 engaged people"
    assert group.score_explanation.startswith("best fit 20 + best engagement 30 + other engaged people 15")


def test_the_breadth_bonus_is_capped_and_the_score_clamped_to_100(tenant, model):
    big = AccountFactory(tenant=tenant)
    leads = [person(tenant, big, signals=["demo_request", "pricing_page_view"], job_title="CEO", company_size=600,
                     industry="Software") for _ in range(6)]
    leads_score(tenant=tenant, lead_ids=[x.pk for x in leads], cause="manual")
    account = fresh(big)
    assert account.engaged_leads == 6 and account.breadth_bonus == 30  # 10 × 5, capped at 30
    assert account.score == 100


def test_the_formula_follows_the_published_models_account_settings(tenant, model):
    ScoringModel.objects.unscoped().filter(pk=model.pk).update(
        account_engaged_min=25, account_others_percent=0, account_breadth_points=5, account_breadth_cap=5)
    acme = AccountFactory(tenant=tenant)
    leads = [person(tenant, acme, signals=["demo_request"]), person(tenant, acme, signals=["demo_request"]),
             person(tenant, acme, signals=["pricing_page_view"])]  # 20 < 25: not engaged now
    leads_score(tenant=tenant, lead_ids=[x.pk for x in leads], cause="manual")
    account = fresh(acme)
    assert (account.engaged_leads, account.others_points, account.breadth_bonus, account.score) == (2, 0, 5, 35)


def test_erased_and_unscored_leads_do_not_count_and_an_account_without_scored_leads_has_no_score(tenant, model):
    acme, empty = AccountFactory(tenant=tenant), AccountFactory(tenant=tenant)
    kept = person(tenant, acme, signals=["demo_request"])
    erased = person(tenant, acme, signals=["demo_request"])
    person(tenant, acme, signals=["demo_request"])  # never scored
    leads_score(tenant=tenant, lead_ids=[kept.pk, erased.pk], cause="manual")
    assert fresh(acme).engaged_leads == 2
    Lead.objects.unscoped().filter(pk=erased.pk).update(erased_at=timezone.now())
    leads_score(tenant=tenant, lead_ids=[kept.pk], cause="manual")
    assert (fresh(acme).engaged_leads, fresh(acme).score) == (1, 30)
    accounts_score(tenant=tenant)
    assert fresh(empty).score is None and fresh(empty).scored_leads == 0


def test_a_new_signal_raises_the_account_score_in_the_same_scoring_run(tenant, model):
    acme = AccountFactory(tenant=tenant)
    first = person(tenant, acme, signals=["demo_request"])
    second = person(tenant, acme)
    leads_score(tenant=tenant, lead_ids=[first.pk, second.pk], cause="manual")
    before = fresh(acme).score
    Signal.objects.unscoped().create(tenant=tenant, lead=second, type="pricing_page_view",
                                     occurred_at=timezone.now() - timedelta(minutes=5))
    run = leads_score(tenant=tenant, lead_ids=[second.pk], cause="signal")
    after = fresh(acme)
    assert run.accounts == 1
    assert after.engaged_leads == 2 and after.score == before + 10 + 10  # half of 20, plus one more person


def _score_statements(tenant, leads) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        leads_score(tenant=tenant, lead_ids=[x.pk for x in leads], cause="manual")
    return [q["sql"] for q in queries.captured_queries]


def test_account_scores_are_recomputed_set_based_the_same_statements_for_5_leads_as_for_40(tenant, model):
    def batch(n_leads, n_accounts):
        accounts = [AccountFactory(tenant=tenant) for _ in range(n_accounts)]
        return [person(tenant, accounts[i % n_accounts], signals=["pricing_page_view"]) for i in range(n_leads)]

    small, large = batch(5, 2), batch(40, 13)
    few, many = _score_statements(tenant, small), _score_statements(tenant, large)
    assert len(few) == len(many)
    assert sum("leads_account" in sql for sql in many) == 2  # lock the batch's accounts, then one UPDATE
    assert Account.objects.unscoped().filter(tenant=tenant, score__isnull=False).count() == 15


def test_a_whole_tenant_rescore_scores_every_account(tenant, model):
    accounts = [AccountFactory(tenant=tenant) for _ in range(4)]
    for i in range(12):
        person(tenant, accounts[i % 4], signals=["demo_request"])
    run = leads_score(tenant=tenant, cause="manual", slices=1)
    assert run.accounts == 4 and all(fresh(a).engaged_leads == 3 for a in accounts)


@pytest.mark.django_db(transaction=True)
def test_a_sliced_whole_tenant_rescore_scores_each_account_once_every_slice_is_written():
    tenant = TenantFactory(slug="sliced-accounts")
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    accounts = [AccountFactory(tenant=tenant) for _ in range(4)]
    for i in range(16):  # random ids: each account's leads fall into both slices
        person(tenant, accounts[i % 4], signals=["demo_request"])
    run = leads_score(tenant=tenant, cause="manual", slices=2)
    assert run.updated == 16 and run.accounts == 4
    assert all((fresh(a).engaged_leads, fresh(a).score) == (4, 100) for a in accounts)  # 30 + 45 + 30, clamped


def test_the_command_scores_a_whole_tenant_and_running_it_again_changes_nothing(tenant, model):
    acme = AccountFactory(tenant=tenant)
    leads = [person(tenant, acme, signals=["demo_request"]) for _ in range(2)]
    leads_score(tenant=tenant, lead_ids=[x.pk for x in leads], cause="manual")
    Account.objects.unscoped().filter(pk=acme.pk).update(score=None, scored_at=None, engaged_leads=0)
    out = StringIO()
    call_command("accounts_score", tenant.slug, "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"tenant": tenant.slug, "changed": 1, "scored_accounts": 1}
    scored = fresh(acme)
    assert (scored.score, scored.engaged_leads) == (30 + 15 + 10, 2)
    out = StringIO()
    call_command("accounts_score", tenant.slug, stdout=out)
    assert out.getvalue().strip() == f"{tenant.slug}: 0 account score(s) changed; 1 account(s) scored."
    assert fresh(acme).scored_at == scored.scored_at  # not written again
    assert accounts_score_task.delay(tenant_id=tenant.pk).get() == 0


def test_the_command_refuses_an_unknown_tenant(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No tenant"):
        call_command("accounts_score", "nope")


def test_account_scoring_never_reads_or_writes_another_tenants_accounts(tenant, model, other_tenant):
    scoring_default_model_create(tenant=other_tenant, actor=SYSTEM)
    ours, theirs = AccountFactory(tenant=tenant), AccountFactory(tenant=other_tenant)
    mine = person(tenant, ours, signals=["demo_request"])
    other = person(other_tenant, theirs, signals=["demo_request"])
    with tenant_scope(tenant):
        leads_score(tenant=tenant, lead_ids=[mine.pk, other.pk], cause="manual")  # the other's id is ignored
        assert accounts_score(tenant=tenant) == 0
        assert list(Account.objects.for_tenant(tenant).values_list("pk", flat=True)) == [ours.pk]
    assert fresh(ours).score == 30 and fresh(theirs).score is None
    with tenant_scope(other_tenant):
        assert accounts_score(tenant=other_tenant) == 0  # its lead is not scored yet: nothing to score
        leads_score(tenant=other_tenant, lead_ids=[other.pk], cause="manual")
    assert fresh(theirs).score == 30 and fresh(ours).score == 30


def test_marketing_ops_set_the_account_formula_on_a_draft_and_a_new_draft_copies_it(tenant, model, make_member):
    from django.test import Client
    from django.urls import reverse

    from leadmgmt.tenancy.models import Role
    from scoring.services import scoring_model_draft_create
    from tests.support.scoring_admin import post_data

    user = make_member(tenant, Role.MARKETING_OPS)
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    draft = scoring_model_draft_create(tenant=tenant, actor=SYSTEM)
    change = reverse("admin:scoring_scoringmodel_change", args=[draft.pk])
    page = client.get(change)
    assert "Account score (several engaged people at one company)" in page.content.decode()
    data = post_data(page) | {"account_engaged_min": "0", "account_others_percent": "150"}
    refused = client.post(change, data)
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert errors["account_engaged_min"] == ["A person counts as engaged from 1 engagement point at least."]
    assert errors["account_others_percent"] == ["A share runs from 0 to 100 percent."]
    data |= {"account_engaged_min": "15", "account_others_percent": "25", "account_breadth_points": "5",
             "account_breadth_cap": "20"}
    assert client.post(change, data).status_code == 302
    copy = scoring_model_draft_create(tenant=tenant, actor=SYSTEM, based_on=ScoringModel.objects.unscoped().get(
        pk=draft.pk))
    assert (copy.account_engaged_min, copy.account_others_percent, copy.account_breadth_points,
            copy.account_breadth_cap) == (15, 25, 5, 20)


@pytest.mark.django_db(transaction=True)
def test_concurrent_scoring_of_different_people_of_one_account_never_loses_one(tenant, model):
    import threading

    acme = AccountFactory(tenant=tenant)
    people = [person(tenant, acme) for _ in range(6)]
    for lead in people:
        Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="demo_request",
                                         occurred_at=timezone.now() - timedelta(minutes=1))
    barrier = threading.Barrier(len(people))
    errors = []

    def work(lead):
        try:
            barrier.wait()
            with tenant_scope(tenant):  # as the scoring task runs it (a new thread has no tenant)
                leads_score(tenant=tenant, lead_ids=[lead.pk], cause="signal")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(lead,)) for lead in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # Each run waits for the account's lock, then sees every run committed before it: the last one counts all six.
    account = fresh(acme)
    assert (account.scored_leads, account.engaged_leads, account.score) == (6, 6, 100)
    assert (account.engagement_sum, account.others_points, account.breadth_bonus) == (180, 75, 30)
