"""Business-hours arithmetic in the tenant's timezone: overnight, weekends, DST, closed days, 24/7."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from routing.business_hours import add_business_minutes, business_minutes_between
from routing.models import BusinessHours
from tests.support.factories import TenantFactory

pytestmark = pytest.mark.django_db

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def office(tz: str, days=range(5), opens=dt.time(9), closes=dt.time(17)):
    tenant = TenantFactory(timezone=tz)
    BusinessHours.objects.unscoped().bulk_create([
        BusinessHours(tenant=tenant, weekday=d, opens_at=opens, closes_at=closes) for d in days])
    return tenant


def local(tz, *args):
    return dt.datetime(*args, tzinfo=tz)


def test_a_tenant_without_business_hours_is_open_around_the_clock():
    tenant = TenantFactory(timezone="America/New_York")
    start = local(NY, 2025, 3, 8, 23, 30)  # a Saturday night
    assert add_business_minutes(tenant=tenant, start=start, minutes=90) == start + dt.timedelta(minutes=90)
    assert business_minutes_between(tenant=tenant, start=start, end=start + dt.timedelta(hours=2)) == 120


def test_minutes_within_one_day_and_overnight():
    tenant = office("America/New_York")
    assert add_business_minutes(tenant=tenant, start=local(NY, 2025, 2, 3, 10, 0), minutes=60) == local(NY, 2025, 2, 3, 11, 0)
    # 16:30 Monday + 60 min: 30 today, 30 tomorrow from opening.
    assert add_business_minutes(tenant=tenant, start=local(NY, 2025, 2, 3, 16, 30), minutes=60) == local(NY, 2025, 2, 4, 9, 30)
    # Exactly the rest of the day ends at closing time, not the next morning.
    assert add_business_minutes(tenant=tenant, start=local(NY, 2025, 2, 3, 16, 0), minutes=60) == local(NY, 2025, 2, 3, 17, 0)


def test_a_start_outside_business_hours_counts_from_the_next_opening():
    tenant = office("America/New_York")
    assert add_business_minutes(tenant=tenant, start=local(NY, 2025, 2, 4, 6, 0), minutes=5) == local(NY, 2025, 2, 4, 9, 5)
    assert add_business_minutes(tenant=tenant, start=local(NY, 2025, 2, 4, 20, 0), minutes=5) == local(NY, 2025, 2, 5, 9, 5)


def test_the_weekend_does_not_count():
    tenant = office("America/New_York")
    friday_4pm = local(NY, 2025, 2, 7, 16, 0)
    assert add_business_minutes(tenant=tenant, start=friday_4pm, minutes=120) == local(NY, 2025, 2, 10, 10, 0)
    saturday = local(NY, 2025, 2, 8, 12, 0)
    assert add_business_minutes(tenant=tenant, start=saturday, minutes=24 * 60) == local(NY, 2025, 2, 12, 17, 0)
    assert business_minutes_between(tenant=tenant, start=friday_4pm, end=local(NY, 2025, 2, 10, 10, 0)) == 120


def test_a_dst_change_over_the_weekend_keeps_wall_clock_hours():
    tenant = office("America/New_York")
    # US clocks spring forward on Sunday 9 March 2025: Friday is UTC-5, Monday UTC-4.
    friday_4pm = local(NY, 2025, 3, 7, 16, 0)
    due = add_business_minutes(tenant=tenant, start=friday_4pm, minutes=120)
    assert due == local(NY, 2025, 3, 10, 10, 0)
    assert due.astimezone(dt.UTC) == dt.datetime(2025, 3, 10, 14, 0, tzinfo=dt.UTC)
    # And they fall back on Sunday 2 November 2025: Monday 10:00 is UTC-5 again.
    due = add_business_minutes(tenant=tenant, start=local(NY, 2025, 10, 31, 16, 0), minutes=120)
    assert due.astimezone(dt.UTC) == dt.datetime(2025, 11, 3, 15, 0, tzinfo=dt.UTC)


def test_a_dst_change_inside_opening_hours_counts_real_time():
    # Open around the clock on Sundays (00:00–23:59): on 30 March 2025 Berlin skips 02:00–03:00,
    # so that Sunday has 22 h 59 min of real opening time.
    tenant = office("Europe/Berlin", days=[6], opens=dt.time(0), closes=dt.time(23, 59))
    sunday = local(BERLIN, 2025, 3, 30, 0, 0)
    assert business_minutes_between(tenant=tenant, start=sunday, end=local(BERLIN, 2025, 3, 31, 0, 0)) == 22 * 60 + 59
    assert add_business_minutes(tenant=tenant, start=sunday, minutes=180) == local(BERLIN, 2025, 3, 30, 4, 0)


def test_closed_days_are_skipped_and_the_result_is_utc():
    tenant = office("Europe/Berlin", days=[0, 2])  # Mondays and Wednesdays only
    due = add_business_minutes(tenant=tenant, start=local(BERLIN, 2025, 2, 3, 16, 0), minutes=120)
    assert due == local(BERLIN, 2025, 2, 5, 10, 0)
    assert due.tzinfo == dt.UTC


@pytest.mark.parametrize("start_hour,minutes_", [(8, 1), (9, 480), (12, 1000), (16, 61), (18, 2400)])
def test_between_is_the_inverse_of_add(start_hour, minutes_):
    tenant = office("America/New_York")
    start = local(NY, 2025, 3, 5, start_hour, 0)
    end = add_business_minutes(tenant=tenant, start=start, minutes=minutes_)
    assert business_minutes_between(tenant=tenant, start=start, end=end) == pytest.approx(minutes_)


def test_hours_of_another_tenant_are_not_used():
    office("America/New_York")  # another tenant's 9–17 must not close this one
    tenant = TenantFactory(timezone="America/New_York")
    start = local(NY, 2025, 2, 8, 3, 0)
    assert add_business_minutes(tenant=tenant, start=start, minutes=30) == start + dt.timedelta(minutes=30)
