"""Dashboard selectors on controlled data: exact figures, and another tenant's rows never counted."""
from __future__ import annotations

import datetime as dt

import pytest

from leads.models import Lead, StageTransition
from routing.models import RejectionReason, SlaClock
from tests.support.factories import LeadFactory
from workspace.dashboards import (
    DateRange,
    lead_aging,
    lead_volume_by_source,
    rejection_reasons,
    response_time,
    sla_compliance,
    stage_funnel,
    stage_velocity,
)

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
PERIOD = DateRange(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 20))


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """These tests create many users and never sign in with a password: skip PBKDF2's deliberate slowness."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
def test_reps_are_sent_to_their_own_numbers(tenant, make_member, role):
    response = signed_in(make_member(tenant, role=role)).get("/dashboard/")
    assert response.status_code == 302 and response["Location"] == "/dashboard/me/"


def test_anonymous_visitors_are_sent_to_sign_in(db):
    response = Client().get("/dashboard/")
    assert response.status_code == 302 and "login" in response["Location"]


def test_a_user_without_a_membership_gets_403(db):
    from tests.support.factories import UserFactory

    assert signed_in(UserFactory()).get("/dashboard/").status_code == 403


def test_date_range_from_get_filters_and_switches_to_weeks(tenant, make_member):
    user = make_member(tenant, role=Role.MANAGER)
    LeadFactory(tenant=tenant, created_at=dt.datetime(2026, 1, 15, 12, tzinfo=UTC), source="in_range")
    LeadFactory(tenant=tenant, created_at=dt.datetime(2025, 6, 1, 12, tzinfo=UTC), source="too_early")

    response = signed_in(user).get("/dashboard/", {"start": "2025-12-01", "end": "2026-02-28"})

    period = response.context["period"]
    assert (period.start, period.end, period.unit) == (dt.date(2025, 12, 1), dt.date(2026, 2, 28), "week")
    html = response.content.decode()
    assert response.context["data"].volume.sources == ["in_range"]  # too_early is only offered as a filter
    assert "Leads captured per week by source" in html and "in_range" in html
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
    assert response.status_code == 400
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
    # session, user, memberships (middleware); the viewer's reach and the tenant's sources (the rep and
    # source filters' choices); the seven figures; the three breakdowns (per rep, per source, rejections
    # per rep); the Source ROI (one statement); memberships (menu); the bell's unread count (top bar). 12 before
    # the filters and breakdowns: each adds one set-based query (17 measured with the ROI, within the bound).
    with django_assert_max_num_queries(17):
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
    from tests.support.factories import MembershipFactory

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


# --- breakdowns per rep and per source, filters, data tables and CSV exports --------------------------------

import csv  # noqa: E402
import io  # noqa: E402

from tests.support.factories import MembershipFactory, TeamFactory, UserFactory  # noqa: E402
from workspace.dashboard_breakdowns import (  # noqa: E402
    dashboard_reach,
    lead_sources,
    rejections_by_rep,
    rep_breakdown,
    source_breakdown,
)
from workspace.dashboard_tables import SECTIONS, csv_safe  # noqa: E402
from workspace.dashboards import Filters  # noqa: E402


def person(tenant, first: str, last: str, role=Role.SDR, team=None):
    user = UserFactory(username=f"{first.lower()}@{tenant.slug}.test", first_name=first, last_name=last)
    MembershipFactory(tenant=tenant, user=user, role=role, team=team)
    return user


def first_contact_clock(target: Lead, owner, *, started, minutes_to_due=30, stopped_after=None, reason="first_contact"):
    due = started + dt.timedelta(minutes=minutes_to_due)
    stopped = None if stopped_after is None else started + dt.timedelta(minutes=stopped_after)
    return SlaClock.objects.unscoped().create(tenant_id=target.tenant_id, lead=target, owner=owner,
                                              kind="first_contact", started_at=started, due_at=due,
                                              stopped_at=stopped, stop_reason=reason if stopped else "")


@pytest.fixture
def sales(tenant, other_tenant):
    """Team East (manager Mia, reps Ann and Bob) and team West (manager Will, rep Cat), an admin and a
    marketing-ops user; in March 2026 (PERIOD): Ann's four web-form leads, Bob's event lead, Cat's two
    partner leads, one unassigned lead without a source; SLA clocks; another tenant's lookalike data."""
    east, west = TeamFactory(tenant=tenant, name="East"), TeamFactory(tenant=tenant, name="West")
    people = {
        "mia": person(tenant, "Mia", "Manager", Role.MANAGER),
        "will": person(tenant, "Will", "West", Role.MANAGER, team=west),
        "ann": person(tenant, "Ann", "Adams", team=east),
        "bob": person(tenant, "Bob", "Brown", Role.AE, team=east),
        "cat": person(tenant, "Cat", "Carter", team=west),
        "admin": person(tenant, "Ada", "Admin", Role.ADMIN),
        "ops": person(tenant, "Olly", "Ops", Role.MARKETING_OPS),
    }
    east.manager = people["mia"]
    east.save(update_fields=["manager"])
    west.manager = people["will"]
    west.save(update_fields=["manager"])
    RejectionReason.objects.unscoped().create(tenant=tenant, code="bad_fit", label="Bad fit")
    RejectionReason.objects.unscoped().create(tenant=tenant, code="no_budget", label="No budget")
    ann, bob, cat = people["ann"], people["bob"], people["cat"]
    minutes = dt.timedelta(minutes=1)
    a1 = lead(tenant, at(5), owner=ann, source="web_form", stage="sql", status="qualified",
              first_contacted_at=at(5) + 1 * minutes)
    a2 = lead(tenant, at(6), owner=ann, source="web_form", stage="opportunity", status="converted",
              first_contacted_at=at(6) + 2 * minutes)
    a3 = lead(tenant, at(7), owner=ann, source="web_form", status="rejected", rejection_reason="bad_fit",
              first_contacted_at=at(7) + 10 * minutes)
    lead(tenant, at(8), owner=ann, source="web_form", status="unqualified", rejection_reason="no_budget")
    b1 = lead(tenant, at(9), owner=bob, source="event", stage="mql", first_contacted_at=at(9) + 5 * minutes)
    move(b1, "raw", "mql", at(9, 11))
    c1 = lead(tenant, at(10), owner=cat, source="partner", first_contacted_at=at(10, 10, 0) + dt.timedelta(seconds=30))
    c2 = lead(tenant, at(11), owner=cat, source="partner", status="rejected", rejection_reason="bad_fit",
              first_contacted_at=at(11) + dt.timedelta(seconds=30))
    lead(tenant, at(12), source="")  # unassigned, no source
    lead(tenant, dt.datetime(2026, 2, 20, tzinfo=UTC), owner=ann, source="web_form",
         first_contacted_at=dt.datetime(2026, 2, 21, tzinfo=UTC))  # before the period
    first_contact_clock(a1, ann, started=at(5), stopped_after=1)  # met
    first_contact_clock(a2, ann, started=at(6), stopped_after=2)  # met
    first_contact_clock(a3, ann, started=at(7), minutes_to_due=5, stopped_after=10)  # breached
    first_contact_clock(b1, bob, started=at(9), minutes_to_due=60 * 24 * 365 * 20)  # running (the pages use the real now)
    first_contact_clock(c1, cat, started=at(10), minutes_to_due=5)  # never stopped: breached
    first_contact_clock(c2, cat, started=at(11), stopped_after=1)  # met
    # Another tenant: same sources and reason codes, a rep with the same name.
    globex_rep = person(other_tenant, "Ann", "Adams")
    globex_lead = lead(other_tenant, at(5), owner=globex_rep, source="web_form", status="rejected",
                       rejection_reason="bad_fit", first_contacted_at=at(5) + 99 * minutes)
    first_contact_clock(globex_lead, globex_rep, started=at(5), stopped_after=1)
    return people


def test_rep_breakdown_gives_each_owner_response_time_sla_and_outcomes(tenant, sales):
    rows = rep_breakdown(tenant=tenant, period=PERIOD, now=NOW)

    assert [(r.label, r.leads, r.contacted, r.median_seconds, r.sla_met, r.sla_breached, r.sla_running)
            for r in rows] == [
        ("Ann Adams", 4, 3, 120.0, 2, 1, 0),
        ("Bob Brown", 1, 1, 300.0, 0, 0, 1),
        ("Cat Carter", 2, 2, 30.0, 1, 1, 0),
    ]
    ann = rows[0]
    # percentile_cont(0.9) of 60, 120, 600: 120 + 0.8 × 480
    assert ann.p90_seconds == pytest.approx(504.0)
    assert ann.sla_rate == pytest.approx(2 / 3)
    assert (ann.reached, ann.converted, ann.rejected, ann.disqualified) == ([4, 2, 2, 2, 1], 1, 1, 1)
    assert ann.sql_rate == pytest.approx(0.5)
    assert rows[1].sla_rate is None and rows[1].reached == [1, 1, 0, 0, 0]
    assert rows[0].key == str(sales["ann"].pk)


def test_rep_breakdown_only_returns_the_owners_in_reach(tenant, sales):
    east = frozenset({sales["mia"].pk, sales["ann"].pk, sales["bob"].pk})
    rows = rep_breakdown(tenant=tenant, period=PERIOD, owner_ids=east, now=NOW)
    assert [r.label for r in rows] == ["Ann Adams", "Bob Brown"]
    assert rep_breakdown(tenant=tenant, period=PERIOD, owner_ids=frozenset(), now=NOW) == []


def test_source_breakdown_gives_each_source_response_time_sla_and_funnel(tenant, sales):
    rows = source_breakdown(tenant=tenant, period=PERIOD, now=NOW)

    assert [(r.label, r.leads, r.contacted, r.median_seconds, r.sla_met, r.sla_breached, r.sla_running,
             r.reached, r.sql_rate) for r in rows] == [
        ("web_form", 4, 3, 120.0, 2, 1, 0, [4, 2, 2, 2, 1], 0.5),
        ("partner", 2, 2, 30.0, 1, 1, 0, [2, 0, 0, 0, 0], 0.0),
        ("(no source)", 1, 0, None, 0, 0, 0, [1, 0, 0, 0, 0], 0.0),
        ("event", 1, 1, 300.0, 0, 0, 1, [1, 1, 0, 0, 0], 0.0),
    ]


def test_breakdowns_follow_the_rep_and_source_filters(tenant, sales):
    ann, cat = sales["ann"], sales["cat"]
    only_ann = Filters(owner_id=ann.pk)
    assert [r.label for r in source_breakdown(tenant=tenant, period=PERIOD, filters=only_ann, now=NOW)] == ["web_form"]
    assert [r.label for r in rep_breakdown(tenant=tenant, period=PERIOD, filters=Filters(source="partner"),
                                           now=NOW)] == ["Cat Carter"]
    assert [r.label for r in rep_breakdown(tenant=tenant, period=PERIOD, filters=Filters(source=""), now=NOW)] == []
    # The page's figures narrow the same way: the lead's owner, and the clock's owner for SLAs.
    assert lead_volume_by_source(tenant=tenant, period=PERIOD, filters=only_ann).total == 4
    assert response_time(tenant=tenant, period=PERIOD, filters=only_ann).median_seconds == 120.0
    cat_sla = sla_compliance(tenant=tenant, period=PERIOD, now=NOW, filters=Filters(owner_id=cat.pk))
    assert (cat_sla["first_contact"].met, cat_sla["first_contact"].breached) == (1, 1)
    assert [s.count for s in stage_funnel(tenant=tenant, period=PERIOD, filters=Filters(source="web_form"))] == \
        [4, 2, 2, 2, 1]
    assert [(r.code, r.total) for r in rejection_reasons(tenant=tenant, period=PERIOD,
                                                          filters=Filters(owner_id=cat.pk))] == [("bad_fit", 1)]
    assert lead_volume_by_source(tenant=tenant, period=PERIOD, filters=Filters(source="")).total == 1
    assert [(v.label, v.moves) for v in stage_velocity(tenant=tenant, period=PERIOD,
                                                       filters=Filters(source="event"))] == [("Raw lead → MQL", 1)]
    assert stage_velocity(tenant=tenant, period=PERIOD, filters=only_ann) == []


def test_rejections_by_rep_counts_each_owners_reasons(tenant, sales):
    rows = rejections_by_rep(tenant=tenant, period=PERIOD)
    assert [(r.rep, r.code, r.label, r.rejected, r.disqualified, r.total) for r in rows] == [
        ("Ann Adams", "bad_fit", "Bad fit", 1, 0, 1),
        ("Ann Adams", "no_budget", "No budget", 0, 1, 1),
        ("Cat Carter", "bad_fit", "Bad fit", 1, 0, 1),
    ]
    east = frozenset({sales["ann"].pk, sales["bob"].pk, sales["mia"].pk})
    assert {r.rep for r in rejections_by_rep(tenant=tenant, period=PERIOD, owner_ids=east)} == {"Ann Adams"}


def test_breakdowns_never_count_another_tenants_rows(tenant, other_tenant, sales):
    globex = rep_breakdown(tenant=other_tenant, period=PERIOD, now=NOW)
    assert [(r.label, r.leads, r.median_seconds, r.sla_met) for r in globex] == [("Ann Adams", 1, 5940.0, 1)]
    assert [r.leads for r in source_breakdown(tenant=other_tenant, period=PERIOD, now=NOW)] == [1]
    assert len(rejections_by_rep(tenant=other_tenant, period=PERIOD)) == 1
    # and this tenant's figures above exclude it: Ann Adams of Acme still has 4 leads, web_form 4.
    assert rep_breakdown(tenant=tenant, period=PERIOD, now=NOW)[0].leads == 4
    assert "web_form" in lead_sources(tenant=other_tenant) and "partner" not in lead_sources(tenant=other_tenant)


def test_reach_is_the_managers_teams_or_the_whole_tenant(tenant, sales):
    from leadmgmt.tenancy.models import Membership

    def membership(user):
        return Membership.objects.unscoped().get(tenant=tenant, user=user)

    mia = dashboard_reach(tenant=tenant, membership=membership(sales["mia"]))
    assert [name for _id, name in mia.people] == ["Ann Adams", "Bob Brown", "Mia Manager"]
    assert mia.owner_ids == {sales["ann"].pk, sales["bob"].pk, sales["mia"].pk}
    will = dashboard_reach(tenant=tenant, membership=membership(sales["will"]))  # belongs to West as well
    assert [name for _id, name in will.people] == ["Cat Carter", "Will West"]
    admin = dashboard_reach(tenant=tenant, membership=membership(sales["admin"]))
    assert admin.owner_ids is None
    assert [name for _id, name in admin.people] == [
        "Ada Admin", "Ann Adams", "Bob Brown", "Cat Carter", "Mia Manager", "Will West"]  # not marketing ops
    assert dashboard_reach(tenant=tenant, membership=membership(sales["ops"])).owner_ids is None


def march(**params) -> dict:
    return {"start": "2026-03-01", "end": "2026-03-20", **params}


def test_a_manager_sees_only_their_teams_reps_on_the_page(tenant, sales):
    response = signed_in(sales["mia"]).get("/dashboard/", march())

    assert response.status_code == 200
    html = response.content.decode()
    assert [r.label for r in response.context["more"].reps] == ["Ann Adams", "Bob Brown"]
    assert "Cat Carter" not in html  # not in the table, the charts or the rep filter
    assert "Your teams&#x27; reps" in html
    # Tenant-wide figures stay tenant-wide (the other team's leads count in volume and funnel).
    assert response.context["data"].volume.total == 8


def test_an_admin_sees_every_rep_and_the_rep_table_reads_without_the_chart(tenant, sales):
    response = signed_in(sales["admin"]).get("/dashboard/", march())

    html = response.content.decode()
    assert [r.label for r in response.context["more"].reps] == ["Ann Adams", "Bob Brown", "Cat Carter"]
    table = response.context["tables"]["reps"]
    assert table.cells()[0] == [
        ("Ann Adams", False), ("4", True), ("3", True), ("2 min", True), ("8 min", True), ("2", True), ("1", True),
        ("0", True), ("67%", True), ("2", True), ("1", True), ("1", True), ("1", True)]
    assert '<table class="table dash-table" data-testid="table-reps">' in html
    assert '<th scope="row">Ann Adams</th><td class="num">4</td><td class="num">3</td><td class="num">2 min</td>' in html


def test_every_chart_has_a_show_data_table_and_a_csv_link(tenant, sales):
    response = signed_in(sales["admin"]).get("/dashboard/", march(source="web_form"))

    html = response.content.decode()
    for section in ("volume", "funnel", "aging", "rejections", "response", "funnel-by-source",
                    "rejections-by-rep"):
        assert f'<details class="data-table" data-testid="data-{section}"><summary>Show data' in html, section
    for section in SECTIONS:
        assert (f'href="/dashboard/export/{section}.csv?start=2026-03-01&amp;end=2026-03-20&amp;by=day'
                f'&amp;source=web_form" download') in html, section
    # The SLA table and the reps table are tables already; velocity has no move from web forms.
    assert 'data-testid="table-sla"' in html and 'data-testid="data-velocity"' not in html
    volume = response.context["tables"]["volume"]
    assert [c.label for c in volume.columns] == ["Day", "web_form", "Total"]
    assert volume.display_total() == ["Total", "4", "4"]
    assert html.count("<summary>Show data") == 7


def test_the_rep_and_source_filters_narrow_every_figure(tenant, sales):
    response = signed_in(sales["mia"]).get("/dashboard/", march(rep=sales["ann"].pk))

    assert response.status_code == 200
    data = response.context["data"]
    assert data.filters == Filters(owner_id=sales["ann"].pk)
    assert (data.volume.total, data.response.contacted) == (4, 3)
    assert [r.label for r in response.context["more"].sources] == ["web_form"]
    assert "rep: Ann Adams" in response.content.decode()

    no_source = signed_in(sales["admin"]).get("/dashboard/", march(source="(no source)"))
    assert no_source.context["data"].volume.total == 1
    assert no_source.context["data"].filters == Filters(source="")


@pytest.mark.parametrize(("who", "params", "field", "message"), [
    ("mia", {"rep": "cat"}, "rep", "is not one of the reps you can see."),  # another team's rep
    ("mia", {"rep": "999999"}, "rep", "Pick a rep from the list: 999999 is not one of the reps you can see."),
    ("mia", {"rep": "not-a-number"}, "rep", "not-a-number is not one of the reps you can see."),
    ("admin", {"rep": "ops"}, "rep", "is not one of the reps you can see."),  # marketing ops own no leads
    ("admin", {"source": "carrier-pigeon"}, "source",
     "Pick a source from the list: no lead of this workspace has the source carrier-pigeon."),
    ("admin", {"source": "x" * 5000}, "source", "no lead of this workspace has the source"),
])
def test_an_unknown_rep_or_source_is_a_400_with_the_message_beside_the_field(tenant, sales, who, params, field,
                                                                            message):
    params = {k: (str(sales[v].pk) if k == "rep" and v in sales else v) for k, v in params.items()}
    response = signed_in(sales[who]).get("/dashboard/", march(**params))

    assert response.status_code == 400
    html = response.content.decode()
    assert f'<p class="field-error" id="id_{field}-error">' in html and message in html
    assert "The filters below are not valid" in html
    data = response.context["data"]
    assert data.filters == Filters()  # the default figures, never the refused rep's
    assert "Cat Carter" not in html or who == "admin"
    export = signed_in(sales[who]).get("/dashboard/export/reps.csv", march(**params))
    assert export.status_code == 400 and message in export.content.decode()


def test_the_page_with_breakdowns_runs_the_same_queries_whatever_the_data(tenant, sales,
                                                                          django_assert_max_num_queries):
    client = signed_in(sales["mia"])
    client.get("/dashboard/")  # warm-up: session, content types
    for i in range(30):
        owner = [sales["ann"], sales["bob"], sales["mia"]][i % 3]
        target = LeadFactory(tenant=tenant, **recent(days_ago=i % 10, source=f"src{i % 4}", owner=owner,
                                                     status="rejected", rejection_reason="bad_fit"))
        first_contact_clock(target, owner, started=target.created_at, stopped_after=i % 50)
    with django_assert_max_num_queries(17):  # see test_the_page_runs_a_bounded_number_of_queries_whatever_the_data
        response = client.get("/dashboard/", {"rep": sales["ann"].pk, "source": "src1"})
    assert response.status_code == 200


# --- CSV exports ------------------------------------------------------------------------------------------


def rows_of(response) -> list[list[str]]:
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads the file as UTF-8 (→, –, accented names)
    return list(csv.reader(io.StringIO(text[1:])))


def test_the_reps_export_is_the_reps_table_as_csv(tenant, sales):
    response = signed_in(sales["admin"]).get("/dashboard/export/reps.csv", march())

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{tenant.slug}-reps-2026-03-01-to-2026-03-20.csv"'
    assert response.content.decode("utf-8").split("\r\n")[0] == (
        "\ufeffRep,Leads,Contacted,Median response (seconds),p90 response (seconds),SLA met,"
        "SLA breached,SLA running,SLA compliance (%),Reached SQL,Converted,Rejected,Disqualified")
    assert rows_of(response)[1:] == [
        ["Ann Adams", "4", "3", "120", "504", "2", "1", "0", "66.7", "2", "1", "1", "1"],
        ["Bob Brown", "1", "1", "300", "300", "0", "0", "1", "", "0", "0", "0", "0"],
        ["Cat Carter", "2", "2", "30", "30", "1", "1", "0", "50.0", "0", "0", "1", "0"],
    ]


def test_section_exports_have_exact_figures(tenant, sales):
    client = signed_in(sales["admin"])

    def get(section, **params):
        response = client.get(f"/dashboard/export/{section}.csv", march(**params))
        assert response.status_code == 200, response.content
        return rows_of(response)

    assert get("response") == [
        ["Source", "Leads", "Contacted", "Median response (seconds)", "p90 response (seconds)",
         "SLA met", "SLA breached", "SLA running", "SLA compliance (%)"],
        ["web_form", "4", "3", "120", "504", "2", "1", "0", "66.7"],
        ["partner", "2", "2", "30", "30", "1", "1", "0", "50.0"],
        ["(no source)", "1", "0", "", "", "0", "0", "0", ""],
        ["event", "1", "1", "300", "300", "0", "0", "1", ""],
        ["All sources", "8", "6", "90", "450", "3", "2", "1", "60.0"],  # p90 of 30,30,60,120,300,600
    ]
    assert get("funnel-by-source")[0] == ["Source", "Captured", "MQL", "SAL", "SQL", "Opportunity",
                                          "Captured → SQL (%)"]
    assert get("funnel-by-source")[-1] == ["All sources", "8", "3", "2", "2", "1", "25.0"]
    assert get("funnel") == [["Stage", "Leads", "Of the stage before (%)", "Of captured (%)"],
                             ["Captured", "8", "", "100.0"], ["MQL", "3", "37.5", "37.5"],
                             ["SAL", "2", "66.7", "25.0"], ["SQL", "2", "100.0", "25.0"],
                             ["Opportunity", "1", "50.0", "12.5"]]
    assert get("rejections") == [["Reason", "Code", "Rejected", "Disqualified", "Total"],
                                 ["Bad fit", "bad_fit", "2", "0", "2"], ["No budget", "no_budget", "0", "1", "1"],
                                 ["Total", "", "2", "1", "3"]]
    assert get("rejections-by-rep", rep=sales["cat"].pk) == [
        ["Rep", "Reason", "Code", "Rejected", "Disqualified", "Total"], ["Cat Carter", "Bad fit", "bad_fit", "1", "0", "1"]]
    assert get("sla") == [["SLA", "Met", "Breached", "Running", "Compliance (%)"], ["First contact", "3", "2", "1", "60.0"]]
    assert get("velocity") == [["Stage move", "Moves", "Median time (seconds)"], ["Raw lead → MQL", "1", "3600"]]
    volume = get("volume", end="2026-03-05", source="web_form")
    assert volume == [["Day", "web_form", "Total"], ["2026-03-01", "0", "0"], ["2026-03-02", "0", "0"],
                      ["2026-03-03", "0", "0"], ["2026-03-04", "0", "0"], ["2026-03-05", "1", "1"],
                      ["Total", "1", "1"]]
    weekly = get("volume", by="week")
    assert weekly[0][0] == "Week starting" and weekly[1][0] == "2026-02-23"
    aging = get("aging")
    assert aging[0] == ["Untouched for", "Open leads", "Unassigned"] and [r[0] for r in aging[1:]] == [
        "0–2 days", "2–3 days", "3–7 days", "7+ days"]


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped_and_quoted(tenant, make_member):
    admin = make_member(tenant, role=Role.ADMIN)
    evil_rep = UserFactory(username="evil@acme.test", first_name="=cmd|' /C calc'!A0", last_name="")
    MembershipFactory(tenant=tenant, user=evil_rep, role=Role.SDR)
    RejectionReason.objects.unscoped().create(tenant=tenant, code="at_reason", label="@SUM(1+1)")
    LeadFactory(tenant=tenant, **recent(source='=HYPERLINK("http://x.test","click")', owner=evil_rep))
    LeadFactory(tenant=tenant, **recent(source="+1 555", status="rejected", rejection_reason="at_reason"))
    LeadFactory(tenant=tenant, **recent(source="-2+3"))
    LeadFactory(tenant=tenant, **recent(source='plain, "quoted"'))
    client = signed_in(admin)

    response = client.get("/dashboard/export/response.csv")
    text = response.content.decode("utf-8")
    assert '"\'=HYPERLINK(""http://x.test"",""click"")"' in text  # apostrophe first, quotes doubled
    assert "\r\n'+1 555," in text and "\r\n'-2+3," in text
    assert '\r\n"plain, ""quoted""",' in text
    labels = [row[0] for row in rows_of(response)[1:]]
    assert set(labels) == {"'=HYPERLINK(\"http://x.test\",\"click\")", "'+1 555", "'-2+3", 'plain, "quoted"',
                           "All sources"}
    assert rows_of(client.get("/dashboard/export/reps.csv"))[1][0] == "'=cmd|' /C calc'!A0"
    assert rows_of(client.get("/dashboard/export/rejections.csv"))[1][0] == "'@SUM(1+1)"
    assert [csv_safe(t) for t in ("=1", "+1", "-1", "@1", "\t=1", "\r=1", "a=1", "")] == [
        "'=1", "'+1", "'-1", "'@1", "'\t=1", "'\r=1", "a=1", ""]


def test_exports_count_only_the_active_tenants_leads(tenant, other_tenant, make_member):
    from tests.support.factories import MembershipFactory as Member

    manager = make_member(tenant, role=Role.ADMIN)
    Member(tenant=other_tenant, user=manager, role=Role.ADMIN)
    LeadFactory(tenant=tenant, **recent(source="acme-source"))
    LeadFactory(tenant=other_tenant, **recent(source="globex-source", status="rejected", rejection_reason="x"))

    acme = signed_in(manager, tenant)
    for section in SECTIONS:
        assert "globex-source" not in acme.get(f"/dashboard/export/{section}.csv").content.decode()
    assert rows_of(acme.get("/dashboard/export/volume.csv"))[0][1:] == ["acme-source", "Total"]
    assert rows_of(signed_in(manager, other_tenant).get("/dashboard/export/volume.csv"))[0][1:] == [
        "globex-source", "Total"]
    # A source only the other tenant has is not a valid filter here.
    assert acme.get("/dashboard/export/volume.csv", {"source": "globex-source"}).status_code == 400


def test_a_managers_exports_hold_only_their_teams_reps(tenant, sales):
    client = signed_in(sales["mia"])
    assert [row[0] for row in rows_of(client.get("/dashboard/export/reps.csv", march()))[1:]] == [
        "Ann Adams", "Bob Brown"]
    assert {row[0] for row in rows_of(client.get("/dashboard/export/rejections-by-rep.csv", march()))[1:]} == {
        "Ann Adams"}
    refused = client.get("/dashboard/export/reps.csv", march(rep=sales["cat"].pk))
    assert refused.status_code == 400 and "Cat Carter" not in refused.content.decode()


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_section_exports_for_an_empty_tenant(tenant, make_member, section):
    response = signed_in(make_member(tenant, role=Role.MARKETING_OPS)).get(f"/dashboard/export/{section}.csv")
    assert response.status_code == 200
    rows = rows_of(response)
    assert rows and rows[0] and all(cell for cell in rows[0])  # a header row, no figures invented
    assert len(rows) == 1


@pytest.mark.parametrize(("params", "message"), [
    ({"start": "2026-03-10", "end": "2026-03-01"}, "From: The start date must be on or before the end date."),
    ({"start": "yesterday"}, "From: Enter a valid date."),
    ({"end": "2026-02-30"}, "To: Enter a valid date."),
    ({"start": "2020-01-01", "end": "2026-03-01"}, "From: Pick at most 366 days."),
    ({"by": "fortnight"}, "Group by: Select a valid choice."),
])
def test_bad_dates_in_an_export_are_a_400_with_the_message(tenant, make_member, params, message):
    response = signed_in(make_member(tenant, role=Role.MANAGER)).get("/dashboard/export/volume.csv", params)
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "Content-Disposition" not in response
    assert message in response.content.decode()


def test_an_unknown_section_is_a_404(tenant, make_member):
    client = signed_in(make_member(tenant, role=Role.MANAGER))
    assert client.get("/dashboard/export/passwords.csv").status_code == 404
    assert client.get("/dashboard/export/volume.xlsx").status_code == 404


@pytest.mark.parametrize("role", [Role.SDR, Role.AE])
def test_reps_cannot_export(tenant, make_member, role):
    LeadFactory(tenant=tenant, **recent(source="secret-source"))
    response = signed_in(make_member(tenant, role=role)).get("/dashboard/export/volume.csv")
    assert response.status_code == 403 and "secret-source" not in response.content.decode()


def test_exports_need_sign_in_and_refuse_posts(tenant, make_member):
    response = Client().get("/dashboard/export/volume.csv")
    assert response.status_code == 302 and "login" in response["Location"]
    assert signed_in(make_member(tenant, role=Role.ADMIN)).post("/dashboard/export/volume.csv").status_code == 405
