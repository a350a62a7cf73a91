"""The feedback-loop report (issue 16 point 6): each section's numbers on a small hand-built history, a constant
number of statements as the data grows, the range handling, who may read it (page, CSV, API), another tenant's data
never in it, the CSV's content, escaping and audit event."""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import ApiScope, Role
from leads.models import Lead
from tests.support.factories import api_key_for
from tests.support.feedback import END, INJECTION, START, feedback_history
from tests.support.workspace import person, signed_in_client
from workspace.feedback_report import feedback_report, last_full_month
from workspace.models import FeedbackSettings

pytestmark = pytest.mark.django_db
RANGE = {"from": START.isoformat(), "to": END.isoformat()}


@pytest.fixture
def history(tenant):
    return feedback_history(tenant)


def _report(tenant):
    with tenant_scope(tenant):
        return feedback_report(tenant=tenant, start=START, end=END)


def _counts(rows) -> dict:
    return {(r.value, r.reason_label): r.count for r in rows}


def test_rejection_reasons_by_source_band_campaign_and_the_rules_that_fired(tenant, history):
    report = _report(tenant)
    assert report.rejections_total == 4  # October's rejection is out of the range
    assert {(r.reason, r.reason_label): r.count for r in report.rejections_by_reason} == {
        ("not_icp", "Not our ideal customer"): 2, ("no_budget", "No budget"): 1, ("", "Student project"): 1}
    by = {dim: _counts(rows) for dim, rows in report.rejections.items()}
    assert by["source"] == {("web", "Not our ideal customer"): 1, ("ads", "No budget"): 1,
                            ("ads", "Not our ideal customer"): 1, ("event", "Student project"): 1}
    # the band when rejected: L3 was "sal" then (its score fell to warm later)
    assert by["band"] == {("sal", "Not our ideal customer"): 1, ("mql", "No budget"): 1,
                          ("mql", "Not our ideal customer"): 1, ("(none)", "Student project"): 1}
    assert by["campaign"] == {("spring-promo", "Not our ideal customer"): 2, (INJECTION, "No budget"): 1,
                              ("(none)", "Student project"): 1}
    assert by["routing_rule"] == {("Web round robin", "Not our ideal customer"): 1, ("Ads territory", "No budget"): 1,
                                  ("Ads territory", "Not our ideal customer"): 1, ("(none)", "Student project"): 1}
    ra, _rb, rc = history["rules"]  # rule B gave negative points: it did not "fire" for the lead
    assert by["scoring_rule"] == {(ra.name, "Not our ideal customer"): 2, (ra.name, "No budget"): 1,
                                  (rc.name, "Not our ideal customer"): 1}


def test_mql_acceptance_by_source(tenant, history):
    report = _report(tenant)
    rows = {r.source: (r.handed, r.accepted, r.rejected, r.pending, r.acceptance_rate) for r in report.acceptance}
    assert rows == {"web": (4, 2, 1, 1, 0.6667), "ads": (3, 1, 2, 0, 0.3333)}
    total = report.acceptance_total
    assert (total.handed, total.accepted, total.rejected, total.pending, total.acceptance_rate) == (7, 3, 3, 1, 0.5)


def test_won_revenue_by_source_industry_and_title_per_currency(tenant, history):
    report = _report(tenant)

    def rows(dim):
        return {(r.value, r.currency): (r.won, r.revenue) for r in report.won[dim]}

    assert rows("source") == {("web", "EUR"): (1, Decimal("10000.00")), ("web", "USD"): (1, Decimal("5000.00")),
                              ("web", ""): (1, None), ("ads", "EUR"): (1, Decimal("3000.00"))}
    assert rows("industry") == {("Software", "EUR"): (2, Decimal("13000.00")), ("Healthcare", "USD"): (1, Decimal("5000.00")),
                                ("(none)", ""): (1, None)}
    titles = rows("title")  # "VP Sales" and "vp sales " are one title, spelt one way
    assert len({v for v, _c in titles if v.lower() == "vp sales"}) == 1
    assert {(v.lower(), c): n for (v, c), n in titles.items()} == {
        ("vp sales", "EUR"): (1, Decimal("10000.00")), ("vp sales", "USD"): (1, Decimal("5000.00")),
        ("cto", "EUR"): (1, Decimal("3000.00")), ("(none)", ""): (1, None)}
    assert {(r.currency): (r.won, r.revenue) for r in report.won_total} == {
        "EUR": (2, Decimal("13000.00")), "USD": (1, Decimal("5000.00")), "": (1, None)}


def test_time_to_convert_median_and_p75_by_source(tenant, history):
    report = _report(tenant)
    assert {r.source: (r.won, r.median_days, r.p75_days) for r in report.time_to_convert} == {
        "web": (3, 20.0, 40.0), "ads": (1, 25.0, 25.0)}
    total = report.time_to_convert_total
    assert (total.won, total.median_days, total.p75_days) == (4, 22.5, 33.8)


def test_recommended_threshold_from_the_score_at_handoff(tenant, history):
    t = _report(tenant).threshold
    # decided MQLs by score at handoff (October's included: history up to the range's end), at or above each score:
    # 95 1/1, 90 2/2, 80 3/3, 70 3/4, 60 4/5, 50 4/6, 45 4/7; the lowest reaching 60 % is 50.
    assert [(p["score"], p["accepted"], p["decided"]) for p in t.curve] == [
        (45, 4, 7), (50, 4, 6), (60, 4, 5), (70, 3, 4), (80, 3, 3), (90, 2, 2), (95, 1, 1)]
    assert (t.target, t.recommended, t.expected_acceptance, t.decided) == (0.6, 50, 0.6667, 7)
    assert (t.current, t.current_acceptance) == (41, 0.5714)  # the default model's lowest auto-MQL band
    # volume: leads created in November by their score now (L3 fell to 30)
    assert (t.current_volume, t.recommended_volume) == (6, 4)


def test_the_target_is_the_tenants_setting(tenant, history):
    FeedbackSettings.objects.unscoped().create(tenant=tenant, mql_acceptance_target=75)
    t = _report(tenant).threshold
    assert (t.target, t.recommended, t.expected_acceptance) == (0.75, 60, 0.8)
    FeedbackSettings.objects.unscoped().filter(tenant=tenant).update(mql_acceptance_target=100)
    t = _report(tenant).threshold
    assert (t.recommended, t.expected_acceptance) == (80, 1.0)


def test_an_empty_history_gives_empty_sections_and_no_recommendation(tenant):
    report = _report(tenant)
    assert (report.rejections_total, report.acceptance, report.won_total, report.time_to_convert) == (0, [], [], [])
    assert report.threshold.recommended is None and "No MQL" in report.threshold.message


def test_a_constant_number_of_statements_whatever_the_data(tenant, django_assert_num_queries):
    feedback_history(tenant)
    with django_assert_num_queries(5):
        _report(tenant)
    feedback_history(tenant, prefix="more-")  # twice the history
    with django_assert_num_queries(5):
        report = _report(tenant)
    assert report.rejections_total == 8


def test_another_tenants_data_never_shows(tenant, other_tenant, history):
    feedback_history(other_tenant, prefix="globex-")
    before = _report(tenant)
    assert before.rejections_total == 4 and before.acceptance_total.handed == 7
    assert sum(r.won for r in before.won_total) == 4


# --- the page, the CSV and the API ---------------------------------------------------------------------------


@pytest.fixture
def people(tenant):
    return {role: person(tenant, role=role) for role in (Role.SDR, Role.AE, Role.MANAGER, Role.ADMIN,
                                                          Role.MARKETING_OPS)}


def test_who_may_read_the_report(tenant, people, client_for):
    for role, user in people.items():
        allowed = role in (Role.MANAGER, Role.ADMIN, Role.MARKETING_OPS)
        web = signed_in_client(user, tenant)
        assert web.get("/reports/feedback/").status_code == (200 if allowed else 403), role
        assert web.get("/reports/feedback.csv").status_code == (200 if allowed else 403), role
        assert client_for(user).get("/api/v1/reports/feedback/").status_code == (200 if allowed else 403), role
        page = web.get("/queue/").content.decode()
        assert ('href="/reports/feedback/"' in page) == allowed, role
    for scopes, status in (([ApiScope.LEADS_READ], 200), ([ApiScope.SIGNALS_WRITE], 403)):
        _key, raw = api_key_for(tenant, scopes=[str(s) for s in scopes])
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert api.get("/api/v1/reports/feedback/", RANGE).status_code == status, scopes


def test_the_api_returns_the_report_as_json(tenant, history, people, client_for):
    response = client_for(people[Role.MARKETING_OPS]).get("/api/v1/reports/feedback/", RANGE)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["start"], body["end"], body["rejections_total"]) == ("2026-11-01", "2026-11-30", 4)
    assert body["threshold"]["recommended"] == 50
    assert {(r["value"], r["currency"]): r["revenue"] for r in body["won"]["source"]}[("web", "EUR")] == "10000.00"
    assert body["acceptance_total"]["acceptance_rate"] == 0.5


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"from": "2026-11-30", "to": "2026-11-01"}, "from", "on or before"),
    ({"from": "2025-01-01", "to": "2026-11-30"}, "from", "at most 366"),
    ({"from": "yesterday", "to": "2026-11-30"}, "from", "YYYY-MM-DD"),
    ({"to": "2026-11-30"}, "from", "both dates"),
    ({"from": "2026-11-01"}, "to", "both dates"),
    ({"from": "0001-01-01", "to": "0001-01-02"}, "from", "between"),
])
def test_bad_ranges_are_400_with_field_messages(tenant, people, client_for, params, field, message):
    api = client_for(people[Role.ADMIN]).get("/api/v1/reports/feedback/", params)
    assert api.status_code == 400, api.content
    assert message in " ".join(api.json()["errors"][field])
    web = signed_in_client(people[Role.ADMIN], tenant)
    page = web.get("/reports/feedback/", params)
    assert page.status_code == 400 and message in page.content.decode()
    assert web.get("/reports/feedback.csv", params).status_code == 400


def test_the_default_range_is_the_last_full_month(tenant, people, client_for):
    body = client_for(people[Role.MANAGER]).get("/api/v1/reports/feedback/").json()
    start, end = last_full_month(dt.date.fromisoformat(body["end"]) + dt.timedelta(days=1))
    assert (body["start"], body["end"]) == (start.isoformat(), end.isoformat())
    assert dt.date.fromisoformat(body["start"]).day == 1
    assert last_full_month(dt.date(2026, 3, 15)) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert last_full_month(dt.date(2026, 1, 1)) == (dt.date(2025, 12, 1), dt.date(2025, 12, 31))


def test_the_page_shows_every_section(tenant, history, people):
    page = signed_in_client(people[Role.MARKETING_OPS], tenant).get("/reports/feedback/", RANGE)
    assert page.status_code == 200
    text = page.content.decode()
    for needle in ("Recommended MQL threshold", "MQL acceptance by source", "Rejection reasons", "Won revenue",
                   "Time to convert", "Web round robin", "spring-promo", "10,000.00 EUR", "Student project"):
        assert needle in text, needle
    assert "from=2026-11-01&amp;to=2026-11-30" in text  # the CSV link carries the range


def test_the_csv_holds_every_section_escaped_and_is_audited(tenant, history, people):
    response = signed_in_client(people[Role.MANAGER], tenant).get("/reports/feedback.csv", RANGE)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "feedback-2026-11-01-to-2026-11-30.csv" in response["Content-Disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0][0] == "section"
    assert {r[0] for r in rows[1:]} == {"rejections", "mql acceptance", "won revenue", "time to convert",
                                        "mql threshold"}
    assert ["rejections", "Campaign (utm_campaign)", "'" + INJECTION, "No budget", "1", "", ""] in rows
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert ["mql threshold", "recommended", "50", "", "4", "0.6667"] == rows[[r[1] for r in rows].index(
        "recommended")][:6]
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="report.feedback_exported")
    assert event.actor_user == people[Role.MANAGER]
    assert event.metadata | {} == {"report": "feedback", "from": "2026-11-01", "to": "2026-11-30",
                                   "rows": len(rows) - 1, "source": "page"}


def test_the_page_of_another_tenants_member_shows_only_their_data(tenant, other_tenant, history):
    feedback_history(other_tenant, prefix="globex-")
    Lead.objects.unscoped().filter(tenant=other_tenant).update(source="globex-only")
    admin = person(tenant, role=Role.ADMIN)
    text = signed_in_client(admin, tenant).get("/reports/feedback/", RANGE).content.decode()
    assert "globex-only" not in text and "web" in text
    other_admin = person(other_tenant, role=Role.ADMIN)
    other = signed_in_client(other_admin, other_tenant).get("/reports/feedback/", RANGE).content.decode()
    assert "globex-only" in other


def test_a_blank_api_parameter_is_refused(tenant, people, client_for):
    response = client_for(people[Role.ADMIN]).get("/api/v1/reports/feedback/?to=")
    assert response.status_code == 400 and response.json()["errors"]["to"] == [
        "Give a date or leave the parameter out."]


# --- the settings in the admin ---------------------------------------------------------------------------------


def _staff(tenant, role):
    user = person(tenant, role=role)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return signed_in_client(user, tenant)


def test_marketing_ops_set_the_target_in_the_admin_and_never_see_another_tenants(tenant, other_tenant):
    theirs = FeedbackSettings.objects.unscoped().create(tenant=other_tenant, mql_acceptance_target=90)
    ops = _staff(tenant, Role.MARKETING_OPS)
    assert ops.get("/admin/workspace/feedbacksettings/").status_code == 200
    assert ops.get(f"/admin/workspace/feedbacksettings/{theirs.pk}/change/").status_code == 302  # "does not exist"
    refused = ops.post("/admin/workspace/feedbacksettings/add/", {"mql_acceptance_target": "150"})
    assert refused.status_code == 200 and "100" in refused.content.decode()
    added = ops.post("/admin/workspace/feedbacksettings/add/", {"mql_acceptance_target": "70"})
    assert added.status_code == 302, added.content.decode()[:2000]
    mine = FeedbackSettings.objects.unscoped().get(tenant=tenant)
    assert mine.mql_acceptance_target == 70
    assert ops.get("/admin/workspace/feedbacksettings/add/").status_code == 403  # one row per tenant
    assert "90" not in ops.get("/admin/workspace/feedbacksettings/").content.decode().split("<tbody>")[-1]
    assert _report(tenant).threshold.target == 0.7
    assert _staff(tenant, Role.SDR).get("/admin/workspace/feedbacksettings/").status_code == 403


def test_the_dashboards_link_to_the_report(tenant, people):
    page = signed_in_client(people[Role.MARKETING_OPS], tenant).get("/dashboard/").content.decode()
    assert 'href="/reports/feedback/"' in page.split('<main id="content"')[-1]
