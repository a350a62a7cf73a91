"""Round-robin fairness: concurrent routers, a bulk import in one transaction, a rep joining mid-rotation,
tie-breaking that never favours the oldest member, and reps coming back from out of office."""
from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.context import tenant_scope
from leads.models import Lead
from routing.models import Assignment, RoundRobinSlot
from routing.services.assign import lead_route
from routing.strategies import routing_run
from tests.support.factories import LeadFactory
from tests.support.routing import NOW, lead, owners, rep, rule, team


def route_all(leads, now=NOW):
    return [lead_route(lead=x, actor=SYSTEM, trigger="capture", now=now).owner_id for x in leads]


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_routers_give_each_of_four_reps_exactly_200_of_800_leads(tenant):
    sdrs = team(tenant)
    reps = [rep(tenant, sdrs) for _ in range(4)]
    rule(tenant, 10, team=sdrs)
    batches = [[LeadFactory(tenant=tenant) for _ in range(100)] for _ in range(8)]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(batch):
        try:
            start.wait()
            with tenant_scope(tenant):  # as the routing task runs it (a new thread has no tenant)
                for x in batch:  # each lead in its own transaction, on this thread's own connection
                    lead_route(lead=x, actor=SYSTEM, trigger="capture")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(batch,)) for batch in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    counts = Counter(Lead.objects.unscoped().filter(tenant=tenant).values_list("owner_id", flat=True))
    assert counts == Counter({r.pk: 200 for r in reps})
    assert Assignment.objects.unscoped().filter(tenant=tenant).count() == 800
    assert sorted(RoundRobinSlot.objects.unscoped().values_list("served", flat=True)) == [200] * 4


@pytest.mark.django_db
def test_a_bulk_import_routed_in_one_transaction_spreads_evenly(tenant):
    sdrs = team(tenant)
    reps = [rep(tenant, sdrs) for _ in range(4)]
    rule(tenant, 10, team=sdrs)
    with transaction.atomic(), routing_run():
        leads = [LeadFactory(tenant=tenant) for _ in range(1000)]
        route_all(leads)  # one `now` for all: ties on last_assigned_at are broken by the pick order
    assert owners(leads) == {r.pk: 250 for r in reps}


@pytest.mark.django_db
def test_a_rep_joining_mid_rotation_starts_level_and_neither_starves_nor_floods(tenant):
    sdrs = team(tenant)
    first = [rep(tenant, sdrs) for _ in range(3)]
    rule(tenant, 10, team=sdrs)
    assert Counter(route_all([lead(tenant) for _ in range(31)])) == Counter(
        {first[0].pk: 11, first[1].pk: 10, first[2].pk: 10})
    joiner = rep(tenant, sdrs)
    later = route_all([lead(tenant) for _ in range(40)], now=NOW + timedelta(hours=1))
    assert later[:4].count(joiner.pk) == 1  # no flood: one lead per round like everybody else
    counts = Counter(later)
    assert counts[joiner.pk] == 10 and max(counts.values()) - min(counts.values()) <= 1


@pytest.mark.django_db
def test_ties_go_to_the_longest_wait_then_the_pick_order_never_to_the_oldest_member(tenant):
    sdrs = team(tenant)
    oldest, newer = rep(tenant, sdrs), rep(tenant, sdrs)
    rr = rule(tenant, 10, team=sdrs)
    pool = f"rule:{rr.pk}"
    RoundRobinSlot.objects.unscoped().create(tenant=tenant, pool=pool, user=oldest, served=4,
                                             last_assigned_at=NOW - timedelta(minutes=1), seq=8)
    RoundRobinSlot.objects.unscoped().create(tenant=tenant, pool=pool, user=newer, served=4,
                                             last_assigned_at=NOW - timedelta(minutes=5), seq=7)
    assert route_all([lead(tenant)]) == [newer.pk]  # waited longer
    # Both now last picked at the same instant (a bulk run): the earlier pick (lower seq) goes first.
    RoundRobinSlot.objects.unscoped().filter(pool=pool).update(served=9, last_assigned_at=NOW)
    RoundRobinSlot.objects.unscoped().filter(pool=pool, user=oldest).update(seq=12)
    RoundRobinSlot.objects.unscoped().filter(pool=pool, user=newer).update(seq=11)
    assert route_all([lead(tenant) for _ in range(4)]) == [newer.pk, oldest.pk, newer.pk, oldest.pk]


@pytest.mark.django_db
def test_a_rep_back_from_out_of_office_is_not_flooded_and_inactive_reps_are_never_picked(tenant):
    sdrs = team(tenant)
    away = rep(tenant, sdrs, unavailable_from=NOW - timedelta(days=1), unavailable_until=NOW + timedelta(days=1))
    inactive = rep(tenant, sdrs, is_available=False)
    present = [rep(tenant, sdrs) for _ in range(3)]
    rule(tenant, 10, team=sdrs)
    before = Counter(route_all([lead(tenant) for _ in range(30)]))
    assert before == Counter({r.pk: 10 for r in present})
    after = Counter(route_all([lead(tenant) for _ in range(8)], now=NOW + timedelta(days=2)))
    assert inactive.pk not in after and after[away.pk] == 2
    assert max(after.values()) - min(after.values()) <= 1
