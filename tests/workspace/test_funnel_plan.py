"""The funnel plan (issue 16 point 8): the arithmetic worked backwards from the target (seed 001's example), the
months' actual counts from the stage history and outcomes, the measured rates, the plan page (form, field messages,
roles, another tenant's plan invisible, constant queries) and `GET/PUT /api/v1/funnel-plan/`."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import ApiScope, Role
from leads.models import Outcome, StageTransition
from tests.support.factories import LeadFactory, api_key_for
from tests.support.workspace import person, signed_in_client
from workspace.funnel_plan import funnel_actuals, measured_rates, plan_needs, plan_report
from workspace.models import FunnelPlan

pytestmark = pytest.mark.django_db

UTC = dt.UTC
TODAY = dt.date(2026, 3, 20)
SEED_RATES = {"lead_to_mql": Decimal("0.15"), "mql_to_sal": Decimal("0.5"), "sal_to_opportunity": Decimal("0.4"),
              "opportunity_to_won": Decimal("0.25")}


def at(month: int, day: int) -> dt.datetime:
    return dt.datetime(2026, month, day, 10, 0, tzinfo=UTC)


def move(lead, to_stage: str, when: dt.datetime, from_stage: str = "") -> None:
    StageTransition.objects.unscoped().create(tenant_id=lead.tenant_id, lead=lead, from_stage=from_stage,
                                              to_stage=to_stage, at=when, actor_name="test")


def plan(tenant, **values) -> FunnelPlan:
    fields = {"revenue_target": Decimal("100000"), "currency": "EUR", "average_contract_value": Decimal("12000"),
              **SEED_RATES, **values}
    return FunnelPlan.objects.unscoped().create(tenant=tenant, **fields)


def test_the_plan_works_backwards_as_seed_001_does():
    # "$12,000 ACV and $1.2M target: 100 customers; 25 % close: 400 opportunities; 20 % MQL → opportunity: 2,000
    # MQLs; 15 % lead → MQL: roughly 13,333 leads" (MQL → opportunity 20 % = 50 % MQL → SAL × 40 % SAL → opportunity).
    needs = plan_needs(revenue_target=Decimal("1200000"), target_period="month",
                       average_contract_value=Decimal("12000"), rates=SEED_RATES)
    assert needs.whole() == {"won": 100, "opportunities": 400, "sals": 1000, "mqls": 2000, "leads": 13334}
    quarterly = plan_needs(revenue_target=Decimal("36000"), target_period="quarter",
                           average_contract_value=Decimal("12000"), rates=SEED_RATES)
    assert quarterly.revenue == Decimal("12000") and quarterly.whole()["won"] == 1
    assert quarterly.whole()["leads"] == 134  # 133.33… rounded up


@pytest.fixture
def history(tenant, other_tenant):
    """February: 2 leads, one reached MQL. March (so far): 3 leads; A MQL then SAL, B (MQL in February) SAL, C
    straight to opportunity; two deals won (3,000 EUR and one in USD). Another tenant's lead and deal."""
    a = LeadFactory(tenant=tenant, created_at=at(3, 1))
    b = LeadFactory(tenant=tenant, created_at=at(2, 3))
    LeadFactory(tenant=tenant, created_at=at(2, 4))
    c = LeadFactory(tenant=tenant, created_at=at(3, 2))
    d = LeadFactory(tenant=tenant, created_at=at(3, 3))
    move(a, "mql", at(3, 5), "raw")
    move(a, "sal", at(3, 6), "mql")
    move(b, "mql", at(2, 10), "raw")
    move(b, "sal", at(3, 2), "mql")
    move(c, "opportunity", at(3, 7), "raw")
    Outcome.objects.unscoped().create(tenant=tenant, lead=c, result="won", amount=Decimal("3000"), currency="EUR",
                                      closed_at=at(3, 10), source="sync")
    Outcome.objects.unscoped().create(tenant=tenant, lead=d, result="won", amount=Decimal("10"), currency="USD",
                                      closed_at=at(3, 11), source="sync")
    other = LeadFactory(tenant=other_tenant, created_at=at(3, 1))
    move(other, "mql", at(3, 5), "raw")
    Outcome.objects.unscoped().create(tenant=other_tenant, lead=other, result="won", amount=Decimal("99999"),
                                      currency="EUR", closed_at=at(3, 10), source="sync")


def test_actual_counts_per_month_come_from_the_stage_history_and_outcomes(tenant, history,
                                                                          django_assert_num_queries):
    with django_assert_num_queries(1):
        months = funnel_actuals(tenant=tenant, first=dt.date(2026, 1, 1), last=dt.date(2026, 3, 1), tz="UTC",
                                currency="EUR")
    by_month = {m.month: m for m in months}
    jan, feb, march = by_month[dt.date(2026, 1, 1)], by_month[dt.date(2026, 2, 1)], by_month[dt.date(2026, 3, 1)]
    assert (jan.leads, jan.mqls) == (0, 0)
    assert (feb.leads, feb.mqls, feb.sals, feb.opportunities, feb.won) == (2, 1, 0, 0, 0)
    assert (march.leads, march.mqls, march.sals, march.opportunities, march.won) == (3, 2, 3, 1, 2)
    assert march.revenue == Decimal("3000")
    rates = measured_rates([feb])
    assert rates["lead_to_mql"] == Decimal("0.5000") and rates["mql_to_sal"] is None


def test_actual_against_plan_for_the_current_and_recent_months(tenant, history):
    report = plan_report(tenant=tenant, plan=plan(tenant, measured_months=1), today=TODAY)
    assert [m.month for m in report.months] == [dt.date(2026, m, 1) for m in (3, 2, 1)] + [
        dt.date(2025, 12, 1), dt.date(2025, 11, 1), dt.date(2025, 10, 1)]
    rows = report.rows()
    assert rows[0]["current"] and not rows[1]["current"]
    cells = {c["stage"]: c for c in rows[0]["cells"]}
    # 100,000 / 12,000 = 8.33 won deals → 9; 33.3 opportunities → 34; 83.3 SALs → 84; 166.7 MQLs → 167; 1,111 leads.
    assert {s: c["plan"] for s, c in cells.items()} == {"won": 9, "opportunities": 34, "sals": 84, "mqls": 167,
                                                        "leads": 1112}
    assert cells["won"]["actual"] == 2 and cells["won"]["share"] == pytest.approx(2 / 9)
    assert report.measured_rates["lead_to_mql"] == Decimal("0.5000")  # February alone


def test_measured_rates_replace_the_entered_ones_where_they_can_be_measured(tenant, history):
    report = plan_report(tenant=tenant, plan=plan(tenant, use_measured_rates=True, measured_months=1), today=TODAY)
    assert report.rates["lead_to_mql"] == Decimal("0.5000")
    assert report.rates["mql_to_sal"] == Decimal("0.5")  # nothing reached SAL in February: the entered rate
    assert report.rates_missing == ["MQL → SAL", "SAL → opportunity", "Opportunity → won"]


# --- the page ---------------------------------------------------------------------------------------------------


FORM = {"revenue_target": "120000", "target_period": "quarter", "currency": "eur", "average_contract_value": "12000",
        "lead_to_mql": "15", "mql_to_sal": "50", "sal_to_opportunity": "40", "opportunity_to_won": "25",
        "measured_months": "6"}


def test_config_editors_set_the_plan_on_its_page(tenant):
    client = signed_in_client(person(tenant, role=Role.MARKETING_OPS))
    empty = client.get("/dashboard/plan/")
    assert empty.status_code == 200 and 'data-testid="plan-empty"' in empty.content.decode()
    response = client.post("/dashboard/plan/", FORM)
    assert response.status_code == 302
    saved = FunnelPlan.objects.unscoped().get(tenant=tenant)
    assert (saved.target_period, saved.currency, saved.lead_to_mql, saved.opportunity_to_won) == (
        "quarter", "EUR", Decimal("0.1500"), Decimal("0.2500"))
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="funnel_plan.created").count() == 1
    page = client.get("/dashboard/plan/").content.decode()
    # 40,000 a month / 12,000 = 3.33 won → 4; 13.3 opportunities → 14; 33.3 SALs → 34; 66.7 MQLs → 67; 444.4 → 445.
    assert 'data-testid="need-won"' in page and ">445<" in page and ">67<" in page
    client.post("/dashboard/plan/", FORM)  # the same values again: nothing changes
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action__startswith="funnel_plan.").count() == 1


@pytest.mark.parametrize(("field", "value", "message"), [
    ("revenue_target", "0", "more than 0"), ("average_contract_value", "-5", "more than 0"),
    ("lead_to_mql", "0", "above 0 and at most 100"), ("opportunity_to_won", "120", "above 0 and at most 100"),
    ("currency", "EURO", ""), ("measured_months", "30", ""), ("revenue_target", "", "Enter the revenue target")])
def test_a_bad_plan_is_a_400_with_the_message_beside_its_field(tenant, field, value, message):
    client = signed_in_client(person(tenant, role=Role.ADMIN))
    response = client.post("/dashboard/plan/", {**FORM, field: value})
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert f'id="id_{field}-error"' in response.content.decode()
    assert not FunnelPlan.objects.unscoped().filter(tenant=tenant).exists()


@pytest.mark.parametrize(("role", "get", "post"), [
    (Role.SDR, 403, 403), (Role.AE, 403, 403), (Role.MANAGER, 200, 403), (Role.MARKETING_OPS, 200, 302),
    (Role.ADMIN, 200, 302)])
def test_the_page_answers_each_role_as_the_matrix_says(tenant, role, get, post):
    client = signed_in_client(person(tenant, role=role))
    assert client.get("/dashboard/plan/").status_code == get
    assert client.post("/dashboard/plan/", FORM).status_code == post


def test_managers_see_the_plan_without_its_form(tenant):
    plan(tenant)
    page = signed_in_client(person(tenant, role=Role.MANAGER)).get("/dashboard/plan/").content.decode()
    assert 'data-testid="plan-needs"' in page and "Save the plan" not in page


def test_another_tenants_plan_and_actuals_never_show(tenant, other_tenant, history):
    plan(other_tenant, revenue_target=Decimal("777777"))
    page = signed_in_client(person(tenant, role=Role.ADMIN)).get("/dashboard/plan/").content.decode()
    assert "777" not in page and 'data-testid="plan-empty"' in page
    response = APIClient()
    response.force_login(person(tenant, role=Role.ADMIN))
    assert response.get("/api/v1/funnel-plan/").status_code == 404


def test_the_page_runs_the_same_queries_whatever_the_data(tenant, django_assert_max_num_queries):
    plan(tenant)
    client = signed_in_client(person(tenant, role=Role.ADMIN))
    client.get("/dashboard/plan/")
    for i in range(40):
        lead = LeadFactory(tenant=tenant, created_at=at(2, 1 + i % 20))
        move(lead, "mql", at(2, 2 + i % 20), "raw")
    # session, user, memberships (middleware); the plan; the actuals; the menu's memberships; the bell.
    with django_assert_max_num_queries(9):
        assert client.get("/dashboard/plan/").status_code == 200


# --- GET/PUT /api/v1/funnel-plan/ -----------------------------------------------------------------------------


BODY = {"revenue_target": "1200000", "currency": "USD", "average_contract_value": "12000", "lead_to_mql": "0.15",
        "mql_to_sal": "0.5", "sal_to_opportunity": "0.4", "opportunity_to_won": "0.25"}


def key_client(tenant, scopes) -> APIClient:
    _key, raw = api_key_for(tenant, scopes=[str(s) for s in scopes])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_the_plan_is_put_and_read_back_with_what_a_month_needs(tenant):
    client = key_client(tenant, [ApiScope.PLAN_READ, ApiScope.PLAN_WRITE])
    assert client.get("/api/v1/funnel-plan/").status_code == 404
    response = client.put("/api/v1/funnel-plan/", BODY, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["needed_per_month"] == {"won": 100, "opportunities": 400, "sals": 1000, "mqls": 2000, "leads": 13334}
    assert body["target_period"] == "month" and body["lead_to_mql"] == "0.1500"
    assert client.get("/api/v1/funnel-plan/").json()["needed_per_month"]["leads"] == 13334
    defaults = client.put("/api/v1/funnel-plan/", {"revenue_target": "1000", "currency": "EUR",
                                                   "average_contract_value": "1000"}, format="json").json()
    assert defaults["opportunity_to_won"] == "0.2500" and defaults["needed_per_month"]["won"] == 1
    assert FunnelPlan.objects.unscoped().filter(tenant=tenant).count() == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"lead_to_mql": "0"}, "lead_to_mql"), ({"opportunity_to_won": "1.5"}, "opportunity_to_won"),
    ({"revenue_target": "0"}, "revenue_target"), ({"average_contract_value": "-1"}, "average_contract_value"),
    ({"currency": "ZZZ"}, "currency"), ({"target_period": "year"}, "target_period"),
    ({"measured_months": 0}, "measured_months"), ({"revenue_target": None}, "revenue_target")])
def test_a_bad_plan_is_a_400_on_its_field(tenant, change, field):
    response = key_client(tenant, [ApiScope.PLAN_WRITE]).put("/api/v1/funnel-plan/", {**BODY, **change},
                                                             format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not FunnelPlan.objects.unscoped().exists()


def test_who_may_read_and_change_the_plan_over_the_api(tenant, client_for):
    plan(tenant)
    assert key_client(tenant, [ApiScope.COSTS_READ]).get("/api/v1/funnel-plan/").status_code == 403
    assert key_client(tenant, [ApiScope.PLAN_READ]).put("/api/v1/funnel-plan/", BODY, format="json") \
        .status_code == 403
    manager = client_for(person(tenant, role=Role.MANAGER))
    assert manager.get("/api/v1/funnel-plan/").status_code == 200
    assert manager.put("/api/v1/funnel-plan/", BODY, format="json").status_code == 403
    assert client_for(person(tenant, role=Role.SDR)).get("/api/v1/funnel-plan/").status_code == 403
    assert client_for(person(tenant, role=Role.MARKETING_OPS)).put("/api/v1/funnel-plan/", BODY, format="json") \
        .status_code == 200
