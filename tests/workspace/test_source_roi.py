"""Source ROI (issue 16 point 7): costs in through `POST /api/v1/costs/` (upsert, retries change nothing, field
messages, roles and scopes) and the admin, the ROI figures on a hand-built history (cost per lead, MQL, SQL and won
deal, revenue, ROI; pro rata months; other currencies left out), the dashboard's table and its CSV, and nothing of
another tenant anywhere."""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import ApiScope, Role
from leads.models import Outcome
from tests.support.factories import LeadFactory, api_key_for
from tests.support.workspace import person, signed_in_client
from workspace.dashboard_roi import ALL_CAMPAIGNS, NO_CAMPAIGN, source_roi
from workspace.dashboards import DateRange, Filters
from workspace.models import SourceCost

pytestmark = pytest.mark.django_db

UTC = dt.UTC
MARCH = DateRange(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31))


def at(day: int, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, 10, 0, tzinfo=UTC)


def cost(tenant, month: dt.date, source: str, amount: str, campaign: str = "", currency: str = "EUR") -> SourceCost:
    return SourceCost.objects.unscoped().create(tenant=tenant, month=month, source=source, campaign=campaign,
                                                amount=Decimal(amount), currency=currency)


def won(tenant, lead, amount: str, currency: str = "EUR", closed: dt.datetime | None = None) -> Outcome:
    return Outcome.objects.unscoped().create(tenant=tenant, lead=lead, result="won", amount=Decimal(amount),
                                             currency=currency, closed_at=closed or at(25), source="sync")


def key_client(tenant, scopes) -> APIClient:
    _key, raw = api_key_for(tenant, scopes=[str(s) for s in scopes])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def history(tenant, other_tenant):
    """March 2026: paid_search (1,000 for the source, 500 for its brand campaign) brought 4 leads, the brand campaign
    two of them, one won for 3,000; events (300) 2 leads; web_form (no cost) 1. Noise: February's cost and lead, a
    cost in USD, another tenant's cost and lead."""
    march, feb = dt.date(2026, 3, 1), dt.date(2026, 2, 1)
    cost(tenant, march, "paid_search", "1000.00")
    cost(tenant, march, "paid_search", "500.00", campaign="brand")
    cost(tenant, march, "events", "300.00")
    cost(tenant, feb, "paid_search", "9999.00")
    cost(tenant, march, "events", "77.00", campaign="usd-booth", currency="USD")
    cost(other_tenant, march, "paid_search", "123456.00")
    brand_won = LeadFactory(tenant=tenant, created_at=at(2), source="paid_search", campaign="brand", stage="sql")
    LeadFactory(tenant=tenant, created_at=at(3), source="paid_search", utm_campaign="brand", stage="mql")
    LeadFactory(tenant=tenant, created_at=at(4), source="paid_search", stage="mql")
    LeadFactory(tenant=tenant, created_at=at(5), source="paid_search", stage="raw")
    LeadFactory(tenant=tenant, created_at=at(6), source="events", stage="sal")
    LeadFactory(tenant=tenant, created_at=at(7), source="events", stage="raw")
    LeadFactory(tenant=tenant, created_at=at(8), source="web_form", stage="raw")
    LeadFactory(tenant=tenant, created_at=at(20, 2), source="paid_search", stage="raw")  # February
    won(tenant, brand_won, "3000.00")
    other = LeadFactory(tenant=other_tenant, created_at=at(2), source="paid_search", campaign="brand")
    won(other_tenant, other, "50000.00")
    return brand_won


def rows_by_key(roi) -> dict:
    return {(r.source, r.campaign): r for r in roi.rows}


def test_roi_per_source_and_campaign_on_a_hand_built_history(tenant, history):
    roi = source_roi(tenant=tenant, period=MARCH)

    assert roi.currency == "EUR"
    assert roi.other_currency == 1  # the USD booth, left out
    assert [(r.source, r.campaign) for r in roi.rows] == [
        ("paid_search", ALL_CAMPAIGNS), ("paid_search", NO_CAMPAIGN), ("paid_search", "brand"),
        ("events", ALL_CAMPAIGNS), ("web_form", ALL_CAMPAIGNS)]
    rows = rows_by_key(roi)
    paid = rows[("paid_search", ALL_CAMPAIGNS)]
    assert (paid.cost, paid.leads, paid.mqls, paid.sqls, paid.won, paid.revenue) == (
        Decimal("1500.00"), 4, 3, 1, 1, Decimal("3000.00"))
    assert (paid.per_lead, paid.per_mql, paid.per_sql, paid.per_won) == (
        Decimal("375.00"), Decimal("500.00"), Decimal("1500.00"), Decimal("1500.00"))
    assert paid.roi == pytest.approx(1.0)
    brand = rows[("paid_search", "brand")]
    assert (brand.cost, brand.leads, brand.mqls, brand.won, brand.revenue) == (
        Decimal("500.00"), 2, 2, 1, Decimal("3000.00"))
    assert brand.roi == pytest.approx(5.0)
    unattributed = rows[("paid_search", NO_CAMPAIGN)]
    assert (unattributed.cost, unattributed.leads, unattributed.revenue, unattributed.roi) == (
        Decimal("1000.00"), 2, None, pytest.approx(-1.0))
    events = rows[("events", ALL_CAMPAIGNS)]
    assert (events.cost, events.leads, events.mqls, events.sqls, events.won, events.per_mql) == (
        Decimal("300.00"), 2, 1, 0, 0, Decimal("300.00"))
    assert events.per_sql is None and events.roi == pytest.approx(-1.0)
    web = rows[("web_form", ALL_CAMPAIGNS)]
    assert (web.cost, web.leads, web.per_lead, web.roi) == (None, 1, None, None)
    assert (roi.total.cost, roi.total.leads, roi.total.won, roi.total.revenue) == (
        Decimal("1800.00"), 7, 1, Decimal("3000.00"))


def test_a_month_counts_pro_rata_to_the_days_of_it_in_the_period(tenant):
    cost(tenant, dt.date(2026, 3, 1), "events", "310.00")
    cost(tenant, dt.date(2026, 4, 1), "events", "300.00")
    roi = source_roi(tenant=tenant, period=DateRange(start=dt.date(2026, 3, 16), end=dt.date(2026, 4, 10)))
    # 16 of March's 31 days (160) and 10 of April's 30 (100).
    assert roi.rows[0].cost == Decimal("260.00")


def test_the_source_filter_narrows_costs_and_leads(tenant, history):
    roi = source_roi(tenant=tenant, period=MARCH, filters=Filters(source="events"))
    assert [(r.source, r.campaign) for r in roi.rows] == [("events", ALL_CAMPAIGNS)]
    assert roi.total.cost == Decimal("300.00")


# --- the dashboard and its CSV -----------------------------------------------------------------------------


def test_the_dashboard_shows_the_roi_table_and_exports_it(tenant, history):
    client = signed_in_client(person(tenant, role=Role.MARKETING_OPS))
    response = client.get("/dashboard/", {"start": "2026-03-01", "end": "2026-03-31"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="table-roi"' in page and "brand" in page and "1,500.00" in page and "500%" in page
    export = client.get(reverse("dashboard-export", args=["roi"]), {"start": "2026-03-01", "end": "2026-03-31"})
    assert export.status_code == 200
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8").lstrip("\ufeff"))))
    assert rows[0][:4] == ["Source", "Campaign", "Cost (EUR)", "Leads"]
    assert rows[0][-2:] == ["Revenue (EUR)", "ROI (%)"]
    assert rows[1] == ["paid_search", ALL_CAMPAIGNS, "1500.00", "4", "3", "1", "1", "375.00", "500.00", "1500.00",
                       "1500.00", "3000.00", "100.0"]
    assert rows[-1][:4] == ["All sources", "", "1800.00", "7"]
    assert "123456" not in export.content.decode() and "50000" not in page


def test_reps_get_neither_the_roi_nor_its_csv(tenant, history):
    client = signed_in_client(person(tenant, role=Role.SDR))
    assert client.get(reverse("dashboard-export", args=["roi"])).status_code == 403


def test_the_roi_adds_one_query_to_the_dashboard_whatever_the_data(tenant, django_assert_max_num_queries):
    client = signed_in_client(person(tenant, role=Role.MANAGER))
    client.get("/dashboard/")  # warm-up
    for i in range(30):
        cost(tenant, dt.datetime.now(tz=UTC).date().replace(day=1), f"src{i}", "10.00", campaign=f"c{i % 3}")
        LeadFactory(tenant=tenant, source=f"src{i}", campaign=f"c{i % 3}")
    # The dashboard's own bound (tests/workspace/test_dashboards.py) holds with the ROI's one query inside it.
    with django_assert_max_num_queries(17):
        response = client.get("/dashboard/")
    assert response.status_code == 200
    assert len(response.context["roi"].rows) > 30


# --- POST/GET /api/v1/costs/ -------------------------------------------------------------------------------


ITEM = {"month": "2026-11", "source": "paid_search", "campaign": "brand", "amount": "4200.00", "currency": "eur"}


def test_a_cost_is_upserted_and_a_retry_changes_nothing(tenant):
    client = key_client(tenant, [ApiScope.COSTS_WRITE, ApiScope.COSTS_READ])
    first = client.post("/api/v1/costs/", ITEM, format="json")
    assert first.status_code == 200, first.content
    assert first.json()["results"][0]["status"] == "created" and first.json()["created"] == 1
    row = SourceCost.objects.unscoped().get(tenant=tenant)
    assert (row.month, row.currency, row.amount) == (dt.date(2026, 11, 1), "EUR", Decimal("4200.00"))
    events = AuditEvent.objects.unscoped().filter(tenant=tenant, action="source_costs.upserted").count()

    again = client.post("/api/v1/costs/", {**ITEM, "month": "2026-11-01"}, format="json")
    assert again.json()["results"] == [{"index": 0, "id": row.pk, "status": "unchanged"}]
    assert SourceCost.objects.unscoped().get(pk=row.pk).updated_at == row.updated_at
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="source_costs.upserted").count() == events

    changed = client.post("/api/v1/costs/", {**ITEM, "amount": "4300"}, format="json")
    assert changed.json()["results"][0]["status"] == "updated"
    assert SourceCost.objects.unscoped().get(pk=row.pk).amount == Decimal("4300.00")
    assert SourceCost.objects.unscoped().filter(tenant=tenant).count() == 1


def test_a_batch_is_answered_item_by_item_in_one_statement(tenant, django_assert_max_num_queries):
    client = key_client(tenant, [ApiScope.COSTS_WRITE])
    batch = [{"month": "2026-10", "source": f"s{i}", "amount": str(i), "currency": "EUR"} for i in range(1000)]
    client.post("/api/v1/costs/", batch[:1], format="json")
    with django_assert_max_num_queries(12):
        response = client.post("/api/v1/costs/", batch, format="json")
    assert response.status_code == 200
    assert (response.json()["created"], response.json()["unchanged"]) == (999, 1)
    assert SourceCost.objects.unscoped().filter(tenant=tenant).count() == 1000


@pytest.mark.parametrize(("body", "field", "message"), [
    ({**ITEM, "month": "2026-11-15"}, "month", "YYYY-MM"),
    ({**ITEM, "month": "November"}, "month", "YYYY-MM"),
    ({**ITEM, "amount": "-1"}, "amount", "greater than or equal to 0"),
    ({**ITEM, "amount": "lots"}, "amount", "number"),
    ({**ITEM, "amount": "0.001"}, "amount", "decimal places"),
    ({**ITEM, "currency": "EURO"}, "currency", ""),
    ({**ITEM, "currency": "XYZ"}, "currency", "ISO 4217"),
    ({**ITEM, "source": "   "}, "source", ""),
    ({k: v for k, v in ITEM.items() if k != "source"}, "source", "required"),
])
def test_bad_input_is_a_400_on_its_field_and_nothing_is_written(tenant, body, field, message):
    response = key_client(tenant, [ApiScope.COSTS_WRITE]).post("/api/v1/costs/", body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors and message in " ".join(errors[field])
    assert not SourceCost.objects.unscoped().filter(tenant=tenant).exists()


def test_a_batch_with_one_bad_item_writes_nothing_and_names_the_item(tenant):
    client = key_client(tenant, [ApiScope.COSTS_WRITE])
    response = client.post("/api/v1/costs/", [ITEM, {**ITEM, "campaign": "other", "amount": "x"}, ITEM, 7],
                           format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"1.amount", "2.campaign", "3"}
    assert "Item 0" in errors["2.campaign"][0]
    assert not SourceCost.objects.unscoped().exists()
    assert client.post("/api/v1/costs/", [], format="json").status_code == 400
    too_many = client.post("/api/v1/costs/", [ITEM] * 1001, format="json")
    assert too_many.status_code == 400 and "1000" in too_many.json()["errors"]["detail"][0]
    assert client.post("/api/v1/costs/", "just text", format="json").status_code == 400


def test_the_list_filters_by_month_source_and_campaign_and_never_shows_another_tenant(tenant, other_tenant):
    cost(tenant, dt.date(2026, 1, 1), "events", "1")
    cost(tenant, dt.date(2026, 2, 1), "events", "2", campaign="booth")
    cost(tenant, dt.date(2026, 3, 1), "paid_search", "3")
    cost(other_tenant, dt.date(2026, 2, 1), "events", "999")
    client = key_client(tenant, [ApiScope.COSTS_READ])
    everything = client.get("/api/v1/costs/").json()
    assert [r["amount"] for r in everything["results"]] == ["3.00", "2.00", "1.00"]
    assert [r["amount"] for r in client.get("/api/v1/costs/", {"month_from": "2026-02", "source": "events"})
            .json()["results"]] == ["2.00"]
    assert [r["amount"] for r in client.get("/api/v1/costs/", {"campaign": ""}).json()["results"]] == ["3.00", "1.00"]
    assert client.get("/api/v1/costs/", {"month_from": "2026-03", "month_to": "2026-01"}).json()["count"] == 0
    assert client.get("/api/v1/costs/", {"month_from": ""}).status_code == 400
    assert client.get("/api/v1/costs/", {"source": "a\x00b"}).json()["count"] == 0
    assert client.get("/api/v1/costs/", {"month_to": "soon"}).status_code == 400


def test_the_same_key_in_two_tenants_is_two_rows(tenant, other_tenant):
    cost(other_tenant, dt.date(2026, 11, 1), "paid_search", "1.00", campaign="brand")
    response = key_client(tenant, [ApiScope.COSTS_WRITE]).post("/api/v1/costs/", ITEM, format="json")
    assert response.json()["results"][0]["status"] == "created"
    assert SourceCost.objects.unscoped().get(tenant=other_tenant).amount == Decimal("1.00")


@pytest.mark.parametrize(("role", "read", "write"), [
    (Role.SDR, 403, 403), (Role.AE, 403, 403), (Role.MANAGER, 200, 403), (Role.MARKETING_OPS, 200, 200),
    (Role.ADMIN, 200, 200)])
def test_members_read_and_write_costs_as_the_matrix_says(tenant, client_for, role, read, write):
    client = client_for(person(tenant, role=role))
    assert client.get("/api/v1/costs/").status_code == read
    assert client.post("/api/v1/costs/", ITEM, format="json").status_code == write


def test_keys_need_the_costs_scopes(tenant):
    leads_only = key_client(tenant, [ApiScope.LEADS_READ, ApiScope.LEADS_WRITE])
    assert leads_only.get("/api/v1/costs/").status_code == 403
    assert leads_only.post("/api/v1/costs/", ITEM, format="json").status_code == 403
    reader = key_client(tenant, [ApiScope.COSTS_READ])
    assert reader.get("/api/v1/costs/").status_code == 200
    assert reader.post("/api/v1/costs/", ITEM, format="json").status_code == 403


# --- the admin ----------------------------------------------------------------------------------------------


def staff(tenant, role) -> Client:
    user = person(tenant, role=role)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


def test_config_editors_enter_costs_in_the_admin_and_nobody_else_reaches_it(tenant, other_tenant):
    cost(other_tenant, dt.date(2026, 3, 1), "globex-secret-source", "5.00")
    ops = staff(tenant, Role.MARKETING_OPS)
    add = reverse("admin:workspace_sourcecost_add")
    form = {"month": "2026-03-17", "source": "events", "campaign": "", "amount": "250", "currency": "usd"}
    assert ops.post(add, form).status_code == 302
    row = SourceCost.objects.unscoped().get(tenant=tenant)
    assert (row.month, row.currency) == (dt.date(2026, 3, 1), "USD")
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="source_cost.created").exists()
    again = ops.post(add, form)
    assert again.status_code == 200 and "already has a cost" in again.content.decode()
    listing = ops.get(reverse("admin:workspace_sourcecost_changelist")).content.decode()
    assert "events" in listing and "globex-secret-source" not in listing

    manager = staff(tenant, Role.MANAGER)
    assert manager.get(reverse("admin:workspace_sourcecost_changelist")).status_code == 403
    assert manager.get(add).status_code == 403
    theirs = SourceCost.objects.unscoped().get(tenant=other_tenant)
    assert ops.get(reverse("admin:workspace_sourcecost_change", args=[theirs.pk])).status_code == 302
    assert staff(tenant, Role.SDR).get(reverse("admin:workspace_sourcecost_changelist")).status_code == 403
