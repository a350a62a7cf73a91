"""Business-hours arithmetic in the tenant's timezone: adding business minutes, counting them between two times.

A tenant's `BusinessHours` rows give each weekday's opening hours as wall-clock times in
`tenant.timezone`; a weekday without a row is closed, and a tenant with no rows at all is open
around the clock. Windows are turned into real (UTC) instants day by day, so a daylight-saving
change shifts the instants but never the wall-clock hours, and durations are real elapsed time.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .models import BusinessHours

# weekday (0 = Monday) -> (opens_at, closes_at); empty: open 24/7.
Hours = Mapping[int, tuple[dt.time, dt.time]]

_MAX_DAYS = 3700  # ten years of days: far beyond any SLA, a guard against a bad loop


def tenant_hours(*, tenant) -> dict[int, tuple[dt.time, dt.time]]:
    """The tenant's opening hours by weekday (one query); empty means open around the clock."""
    rows = BusinessHours.objects.for_tenant(tenant.pk).values_list("weekday", "opens_at", "closes_at")
    return {weekday: (opens, closes) for weekday, opens, closes in rows}


def tenant_zone(tenant) -> ZoneInfo:
    try:
        return ZoneInfo(tenant.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _windows(*, zone: ZoneInfo, hours: Hours, start: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Opening windows as UTC instants, in order, from the local day containing `start`."""
    day = start.astimezone(zone).date()
    for _ in range(_MAX_DAYS):
        span = hours.get(day.weekday())
        if span is not None:
            opens = dt.datetime.combine(day, span[0], tzinfo=zone).astimezone(dt.UTC)
            closes = dt.datetime.combine(day, span[1], tzinfo=zone).astimezone(dt.UTC)
            if closes > opens:
                yield opens, closes
        day += dt.timedelta(days=1)
    raise ValueError("No business hours found within ten years.")


def add_business_minutes(*, tenant, start: dt.datetime, minutes: float, hours: Hours | None = None) -> dt.datetime:
    """The instant `minutes` of business time after `start` (an aware datetime), in UTC.

    Time before opening or after closing does not count; a start outside business hours begins
    counting at the next opening. Pass `hours` (from `tenant_hours`) to avoid the query.
    """
    hours = tenant_hours(tenant=tenant) if hours is None else hours
    start = start.astimezone(dt.UTC)
    remaining = dt.timedelta(minutes=minutes)
    if not hours:
        return start + remaining
    if remaining <= dt.timedelta(0):
        return start
    for opens, closes in _windows(zone=tenant_zone(tenant), hours=hours, start=start):
        if closes <= start:
            continue
        begin = max(opens, start)
        available = closes - begin
        if remaining <= available:
            return begin + remaining
        remaining -= available
    raise AssertionError("unreachable")  # _windows raises first


def business_minutes_between(*, tenant, start: dt.datetime, end: dt.datetime, hours: Hours | None = None) -> float:
    """Business minutes elapsed from `start` to `end` (0 when `end` is not after `start`)."""
    hours = tenant_hours(tenant=tenant) if hours is None else hours
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    if end <= start:
        return 0.0
    if not hours:
        return (end - start).total_seconds() / 60
    total = dt.timedelta(0)
    for opens, closes in _windows(zone=tenant_zone(tenant), hours=hours, start=start):
        if opens >= end:
            break
        overlap = min(closes, end) - max(opens, start)
        if overlap > dt.timedelta(0):
            total += overlap
    return total.total_seconds() / 60
