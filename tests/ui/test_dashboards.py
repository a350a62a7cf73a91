"""Dashboard selectors on controlled data: exact figures, and another tenant's rows never counted."""
from __future__ import annotations

import datetime as dt

import pytest

from leads.dashboards import (
    DateRange,
    lead_aging,
    lead_volume_by_source,
    rejection_reasons,
    response_time,
    sla_compliance,
    stage_funnel,
    stage_velocity,
)
from leads.models import Lead, StageTransition
from routing.models import RejectionReason, SlaClock
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
PERIOD = DateRange(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 20))


def at(day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def lead(tenant, created: dt.datetime, **fields) -> Lead:
    return LeadFactory(tenant=tenant, created_at=created, **fields)


def test_volume_counts_leads_per_day_and_source_in_the_period(tenant, other_tenant):
    lead(tenant, at(1), source="web_form")
    lead(tenant, at(1, 23, 59), source="web_form")
    lead(tenant, at(2), source="event")
    lead(tenant, at(20, 23, 30), source="")
    lead(tenant, dt.datetime(2026, 2, 28, 23, 59, tzinfo=UTC), source="web_form")  # before the period
    lead(tenant, at(21, 0, 0), source="web_form")  # after it
    lead(other_tenant, at(1), source="web_form")

    volume = lead_volume_by_source(tenant=tenant, period=PERIOD)

    assert volume.total == 4
    assert len(volume.buckets) == 20 and volume.buckets[0] == dt.date(2026, 3, 1)
    assert volume.sources == ["web_form", "(no source)", "event"]
    assert volume.counts["web_form"][:2] == [2, 0]
    assert volume.counts["event"][1] == 1
    assert volume.counts["(no source)"][19] == 1
    assert volume.totals() == {"web_form": 2, "(no source)": 1, "event": 1}


def test_volume_by_week_in_the_tenant_time_zone_groups_small_sources_as_other(tenant):
    period = DateRange(start=dt.date(2026, 3, 2), end=dt.date(2026, 3, 15), tz="America/New_York", unit="week")
    # 2026-03-09 03:00 UTC is still Sunday 8 March in New York: the first week.
    lead(tenant, dt.datetime(2026, 3, 9, 3, 0, tzinfo=UTC), source="s1")
    for i, source in enumerate(["s1", "s2", "s3", "s4", "s5", "s6", "s7"]):
        lead(tenant, at(10 + (i % 3)), source=source)

    volume = lead_volume_by_source(tenant=tenant, period=period)

    assert volume.buckets == [dt.date(2026, 3, 2), dt.date(2026, 3, 9)]
    assert volume.sources == ["s1", "s2", "s3", "s4", "s5", "Other"]
    assert volume.counts["s1"] == [1, 1]
    assert volume.counts["Other"] == [0, 2]
    assert volume.total == 8


def test_response_time_median_and_p90_over_contacted_leads(tenant, other_tenant):
    for minutes in (1, 2, 3, 4, 10):
        created = at(5)
        lead(tenant, created, first_contacted_at=created + dt.timedelta(minutes=minutes))
    lead(tenant, at(6))  # not contacted yet
    lead(other_tenant, at(5), first_contacted_at=at(9))

    figures = response_time(tenant=tenant, period=PERIOD)

    assert (figures.leads, figures.contacted) == (6, 5)
    assert figures.median_seconds == 180.0
    # percentile_cont(0.9) of 60,120,180,240,600 interpolates between 240 and 600: 240 + 0.6 * 360.
    assert figures.p90_seconds == pytest.approx(456.0)


def test_response_time_with_no_leads_has_no_percentiles(tenant):
    figures = response_time(tenant=tenant, period=PERIOD)
    assert (figures.leads, figures.contacted, figures.median_seconds, figures.p90_seconds) == (0, 0, None, None)


def clock(tenant, *, started, due, stopped=None, reason="", breached=None, kind="first_contact"):
    target = lead(tenant, started)
    return SlaClock.objects.unscoped().create(tenant=tenant, lead=target, kind=kind, started_at=started, due_at=due,
                                              stopped_at=stopped, stop_reason=reason, breached_at=breached)


def test_sla_compliance_counts_met_breached_and_running_clocks(tenant, other_tenant):
    clock(tenant, started=at(3), due=at(3, 11), stopped=at(3, 10, 30), reason="first_contact")  # met
    clock(tenant, started=at(4), due=at(4, 11), stopped=at(4, 10, 59), reason="accepted")  # met
    clock(tenant, started=at(4), due=at(4, 11), stopped=at(4, 12), reason="first_contact")  # late: breached
    clock(tenant, started=at(5), due=at(5, 11), breached=at(5, 11), stopped=at(5, 13), reason="reassigned")
    clock(tenant, started=at(6), due=at(6, 11))  # never stopped, past due: breached
    clock(tenant, started=at(20), due=at(20, 13))  # running
    clock(tenant, started=at(7), due=at(7, 11), stopped=at(7, 10), reason="reassigned")  # handed over in time
    clock(tenant, started=at(8), due=at(8, 11), stopped=at(8, 10), reason="accepted", kind="acceptance")
    clock(tenant, started=dt.datetime(2026, 2, 1, tzinfo=UTC), due=dt.datetime(2026, 2, 2, tzinfo=UTC))
    clock(other_tenant, started=at(3), due=at(3, 11))

    sla = sla_compliance(tenant=tenant, period=PERIOD, now=NOW)

    first = sla["first_contact"]
    assert (first.met, first.breached, first.running) == (2, 3, 1)
    assert first.rate == pytest.approx(0.4)
    assert (sla["acceptance"].met, sla["acceptance"].breached, sla["acceptance"].rate) == (1, 0, 1.0)


def move(target: Lead, from_stage: str, to_stage: str, when: dt.datetime) -> None:
    StageTransition.objects.unscoped().create(tenant_id=target.tenant_id, lead=target, from_stage=from_stage,
                                              to_stage=to_stage, at=when, actor_name="test")


def test_funnel_counts_each_lead_up_to_the_furthest_stage_it_reached(tenant, other_tenant):
    for _ in range(4):
        lead(tenant, at(2))  # raw
    lead(tenant, at(2), stage="mql")
    sal = lead(tenant, at(2), stage="sal")
    move(sal, "mql", "sal", at(3))
    sql = lead(tenant, at(2), stage="sql", status="qualified")
    move(sql, "mql", "sql", at(3))
    lead(tenant, at(2), stage="opportunity", status="converted")
    # Rejected after reaching SAL: its stage went back to raw, but the history says SAL.
    back = lead(tenant, at(2), stage="raw", status="rejected")
    move(back, "mql", "sal", at(3))
    move(back, "sal", "raw", at(4))
    lead(tenant, at(2), stage="raw", status="converted")  # converted without stage moves
    lead(other_tenant, at(2), stage="opportunity")

    steps = stage_funnel(tenant=tenant, period=PERIOD)

    assert [(s.label, s.count) for s in steps] == [
        ("Captured", 10), ("MQL", 6), ("SAL", 5), ("SQL", 3), ("Opportunity", 2)]
    assert steps[0].from_previous is None and steps[0].from_start == 1.0
    assert steps[1].from_previous == pytest.approx(0.6)
    assert steps[3].from_previous == pytest.approx(0.6)
    assert steps[4].from_start == pytest.approx(0.2)


def test_funnel_of_an_empty_period_has_no_rates(tenant):
    steps = stage_funnel(tenant=tenant, period=PERIOD)
    assert [s.count for s in steps] == [0, 0, 0, 0, 0]
    assert all(s.from_previous is None and s.from_start is None for s in steps)


def test_velocity_is_the_median_time_before_each_kind_of_move(tenant, other_tenant):
    a = lead(tenant, at(1))
    move(a, "raw", "mql", at(1, 12))  # 2 h after creation
    move(a, "mql", "sal", at(2, 12))  # 24 h after the previous move
    b = lead(tenant, at(1))
    move(b, "raw", "mql", at(1, 14))  # 4 h
    move(b, "mql", "sal", at(3, 14))  # 48 h
    c = lead(tenant, at(1))
    move(c, "raw", "mql", at(1, 16))  # 6 h
    # A move before the period counts as the previous move, but not as a move of its own.
    d = lead(tenant, dt.datetime(2026, 2, 20, tzinfo=UTC))
    move(d, "raw", "mql", dt.datetime(2026, 2, 25, tzinfo=UTC))
    move(d, "mql", "sal", dt.datetime(2026, 2, 25, tzinfo=UTC) + dt.timedelta(days=10))  # 5 March: 240 h
    e = lead(other_tenant, at(1))
    move(e, "raw", "mql", at(1, 11))

    rows = stage_velocity(tenant=tenant, period=PERIOD)

    assert [(r.label, r.moves, r.median_seconds / 3600) for r in rows] == [
        ("Raw lead → MQL", 3, 4.0), ("MQL → SAL", 3, 48.0)]


def test_aging_buckets_open_leads_by_days_untouched(tenant, other_tenant, make_member):
    rep = make_member(tenant)
    hours_ago = lambda h: NOW - dt.timedelta(hours=h)  # noqa: E731
    lead(tenant, hours_ago(100), owner=rep, assigned_at=hours_ago(100), last_activity_at=hours_ago(1))  # 0-2
    lead(tenant, hours_ago(47))  # 0-2, unassigned
    lead(tenant, hours_ago(200), owner=rep, assigned_at=hours_ago(60))  # 2-3
    lead(tenant, hours_ago(80), status="contacted", owner=rep, assigned_at=hours_ago(80))  # 3-7
    lead(tenant, hours_ago(24 * 7))  # 7+ exactly, unassigned
    lead(tenant, hours_ago(24 * 30), status="converted")  # closed: not aging
    lead(tenant, hours_ago(24 * 30), status="rejected")
    lead(other_tenant, hours_ago(24 * 30))

    buckets = lead_aging(tenant=tenant, now=NOW)

    assert [(b.label, b.leads, b.unassigned) for b in buckets] == [
        ("0–2 days", 2, 1), ("2–3 days", 1, 0), ("3–7 days", 1, 0), ("7+ days", 1, 1)]


def test_rejection_reasons_counted_with_taxonomy_labels(tenant, other_tenant):
    RejectionReason.objects.unscoped().create(tenant=tenant, code="bad_fit", label="Bad fit <ICP>")
    RejectionReason.objects.unscoped().create(tenant=tenant, code="not_now", label="Not now", nurture=True)
    RejectionReason.objects.unscoped().create(tenant=other_tenant, code="bad_fit", label="Globex label")
    lead(tenant, at(2), status="rejected", rejection_reason="bad_fit")
    lead(tenant, at(3), status="unqualified", rejection_reason="bad_fit")
    lead(tenant, at(3), status="unqualified", rejection_reason="bad_fit")
    lead(tenant, at(4), status="recycled", rejection_reason="not_now")
    lead(tenant, at(4), status="rejected", rejection_reason="retired_code")
    lead(tenant, dt.datetime(2026, 2, 1, tzinfo=UTC), status="rejected", rejection_reason="not_now")
    lead(tenant, at(5), status="recycled")  # recycled for no response: no reason
    lead(other_tenant, at(2), status="rejected", rejection_reason="bad_fit")

    rows = rejection_reasons(tenant=tenant, period=PERIOD)

    assert [(r.code, r.label, r.rejected, r.disqualified, r.total) for r in rows] == [
        ("bad_fit", "Bad fit <ICP>", 1, 2, 3), ("not_now", "Not now", 1, 0, 1),
        ("retired_code", "retired_code", 1, 0, 1)]


def test_another_tenants_data_never_shows_in_any_selector(tenant, other_tenant):
    """Everything lives in the other tenant; this tenant's dashboard is empty."""
    other = lead(other_tenant, at(2), stage="sql", status="qualified", source="web_form",
                 first_contacted_at=at(2, 11), rejection_reason="bad_fit")
    move(other, "raw", "sql", at(3))
    SlaClock.objects.unscoped().create(tenant=other_tenant, lead=other, kind="first_contact", started_at=at(2),
                                       due_at=at(2, 11), stopped_at=at(2, 10, 30), stop_reason="first_contact")

    assert lead_volume_by_source(tenant=tenant, period=PERIOD).total == 0
    assert response_time(tenant=tenant, period=PERIOD).leads == 0
    assert sla_compliance(tenant=tenant, period=PERIOD, now=NOW) == {}
    assert [s.count for s in stage_funnel(tenant=tenant, period=PERIOD)] == [0] * 5
    assert stage_velocity(tenant=tenant, period=PERIOD) == []
    assert sum(b.leads for b in lead_aging(tenant=tenant, now=NOW)) == 0
    assert rejection_reasons(tenant=tenant, period=PERIOD) == []
    # and the other tenant sees its own
    assert lead_volume_by_source(tenant=other_tenant, period=PERIOD).total == 1


def test_default_range_is_the_last_30_days_in_the_tenant_time_zone():
    period = DateRange.default(tz="Asia/Tokyo", today=dt.date(2026, 3, 20))
    assert (period.start, period.end) == (dt.date(2026, 2, 19), dt.date(2026, 3, 20))
    assert period.since == dt.datetime(2026, 2, 18, 15, 0, tzinfo=UTC)
    assert len(period.buckets()) == 30


# --- the /dashboard/ page -----------------------------------------------------------------------------------

from django.test import Client  # noqa: E402

from leadmgmt.tenancy.middleware import SESSION_TENANT_KEY  # noqa: E402
from leadmgmt.tenancy.models import Role  # noqa: E402


def signed_in(user, tenant=None) -> Client:
    client = Client()
    client.force_login(user)
    if tenant is not None:
        session = client.session
        session[SESSION_TENANT_KEY] = tenant.pk
        session.save()
    return client


def recent(days_ago: float = 1, **fields) -> dict:
    from django.utils import timezone

    return {"created_at": timezone.now() - dt.timedelta(days=days_ago), **fields}


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ADMIN, Role.MARKETING_OPS])
def test_dashboard_page_shows_key_numbers_and_charts(tenant, make_member, role):
    user = make_member(tenant, role=role)
    RejectionReason.objects.unscoped().create(tenant=tenant, code="bad_fit", label="Bad fit")
    for _ in range(3):
        LeadFactory(tenant=tenant, **recent(source="webinar"))
    LeadFactory(tenant=tenant, **recent(source="web_form", status="rejected", rejection_reason="bad_fit"))

    response = signed_in(user).get("/dashboard/")

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"') == 4  # volume, funnel, aging, rejections
    assert "Leads captured per day by source" in html and "webinar" in html and "Bad fit" in html
    cards = response.context["cards"]
    assert cards[0]["label"] == "Leads captured" and cards[0]["value"] == "4"
    assert "No lead changed stage in this period" in html  # velocity's empty state


def test_dashboard_of_an_empty_tenant_says_what_to_do_next(tenant, make_member):
    response = signed_in(make_member(tenant, role=Role.MANAGER)).get("/dashboard/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "No leads were captured in this period. Check that your lead forms are live" in html
    assert "No open leads right now" in html
    assert "No SLA clock started in this period" in html
    assert "<svg" not in html


@pytest.mark.parametrize("role", [Role.SDR, Role.AE])
def test_reps_get_the_403_page(tenant, make_member, role):
    response = signed_in(make_member(tenant, role=role)).get("/dashboard/")
    assert response.status_code == 403
    assert "Leads captured" not in response.content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(db):
    response = Client().get("/dashboard/")
    assert response.status_code == 302 and "login" in response["Location"]


def test_a_user_without_a_membership_gets_403(db):
    from tests.factories import UserFactory

    assert signed_in(UserFactory()).get("/dashboard/").status_code == 403


def test_date_range_from_get_filters_and_switches_to_weeks(tenant, make_member):
    user = make_member(tenant, role=Role.MANAGER)
    LeadFactory(tenant=tenant, created_at=dt.datetime(2026, 1, 15, 12, tzinfo=UTC), source="in_range")
    LeadFactory(tenant=tenant, created_at=dt.datetime(2025, 6, 1, 12, tzinfo=UTC), source="too_early")

    response = signed_in(user).get("/dashboard/", {"start": "2025-12-01", "end": "2026-02-28"})

    period = response.context["period"]
    assert (period.start, period.end, period.unit) == (dt.date(2025, 12, 1), dt.date(2026, 2, 28), "week")
    html = response.content.decode()
    assert "in_range" in html and "too_early" not in html
    assert "Leads captured per week by source" in html
    daily = signed_in(user).get("/dashboard/", {"start": "2025-12-01", "end": "2026-02-28", "by": "day"})
    assert daily.context["period"].unit == "day"


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"start": "2026-03-10", "end": "2026-03-01"}, "start", "The start date must be on or before the end date."),
    ({"start": "2020-01-01", "end": "2026-03-01"}, "start", "Pick at most 366 days."),
    ({"start": "not-a-date"}, "start", "Enter a valid date."),
    ({"by": "hour"}, "by", "Select a valid choice. hour is not one of the available choices."),
])
def test_a_bad_range_is_refused_beside_the_field_and_the_default_shown(tenant, make_member, params, field, message):
    response = signed_in(make_member(tenant, role=Role.MANAGER)).get("/dashboard/", params)
    assert response.status_code == 200
    assert f'<p class="field-error" id="id_{field}-error">{message}</p>' in response.content.decode()
    period = response.context["period"]
    assert (period.end - period.start).days == 29


def test_the_page_runs_a_bounded_number_of_queries_whatever_the_data(tenant, make_member,
                                                                      django_assert_max_num_queries):
    user = make_member(tenant, role=Role.MANAGER)
    client = signed_in(user)
    client.get("/dashboard/")  # warm-up: session, content types
    for i in range(40):
        target = LeadFactory(tenant=tenant, **recent(days_ago=i % 20, source=f"src{i % 9}", stage="mql",
                                                     first_contacted_at=None))
        move(target, "raw", "mql", target.created_at + dt.timedelta(hours=1))
    # session, user, memberships (middleware), the seven dashboard queries, memberships (menu)
    with django_assert_max_num_queries(11):
        response = client.get("/dashboard/")
    assert response.status_code == 200
    assert response.context["data"].volume.total == 40


def test_another_tenants_data_never_appears_on_the_page(tenant, other_tenant, make_member):
    manager = make_member(tenant, role=Role.MANAGER)
    RejectionReason.objects.unscoped().create(tenant=other_tenant, code="globex_reason", label="Globex secret reason")
    other = LeadFactory(tenant=other_tenant, **recent(source="globex-secret-source", status="rejected",
                                                      rejection_reason="globex_reason", stage="sql"))
    move(other, "raw", "sql", other.created_at + dt.timedelta(hours=2))

    response = signed_in(manager).get("/dashboard/")

    html = response.content.decode()
    assert "globex-secret-source" not in html and "Globex secret reason" not in html
    assert response.context["data"].volume.total == 0


def test_a_member_of_two_tenants_sees_only_the_active_one(tenant, other_tenant, make_member):
    from tests.factories import MembershipFactory

    manager = make_member(tenant, role=Role.MANAGER)
    MembershipFactory(tenant=other_tenant, user=manager, role=Role.MANAGER)
    LeadFactory(tenant=tenant, **recent(source="acme-source"))
    LeadFactory(tenant=other_tenant, **recent(source="globex-source"))

    acme = signed_in(manager, tenant).get("/dashboard/").content.decode()
    globex = signed_in(manager, other_tenant).get("/dashboard/").content.decode()

    assert "acme-source" in acme and "globex-source" not in acme
    assert "globex-source" in globex and "acme-source" not in globex


def test_a_post_is_not_allowed(tenant, make_member):
    client = signed_in(make_member(tenant, role=Role.MANAGER))
    assert client.post("/dashboard/").status_code == 405
