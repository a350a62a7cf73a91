"""The capture pipeline in batches (issue 14): the lead is its own outbox, one task per transaction, claims
that never overlap, a crash that loses nothing, and a sweep that picks up what a lost task left."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.context import tenant_scope
from leads.models import Lead
from leads.services.capture import lead_capture
from routing.models import Assignment, Notification, SlaClock
from scoring.services import scoring_default_model_create
from tests.support.routing import fresh, rep, rule, team
from tests.support.sla import sla_policy
from workspace.services.pipeline import captured_leads_process, tenants_with_stalled_leads
from workspace.tasks import capture_pipeline_sweep_task, lead_captured_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def routed_tenant(tenant):
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    sdrs = team(tenant)
    reps = [rep(tenant, sdrs) for _ in range(3)]
    rule(tenant, 10, team=sdrs)
    return tenant, reps


def _capture(tenant, form, n, *, prefix="p"):
    return [lead_capture(tenant=tenant, data={"email": f"{prefix}{i}@prospect.example", "job_title": "VP Marketing"},
                         actor=Actor.for_form(form), form=form).lead for i in range(n)]


def test_a_new_lead_is_pending_until_the_pipeline_scores_and_routes_it(routed_tenant, lead_form,
                                                                       django_capture_on_commit_callbacks):
    tenant, reps = routed_tenant
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with transaction.atomic():
            [lead] = _capture(tenant, lead_form, 1)
    assert fresh(lead).pipeline_pending_since is not None and fresh(lead).scored_at is None
    assert len(callbacks) == 1
    callbacks[0]()
    done = fresh(lead)
    assert done.pipeline_pending_since is None and done.scored_at is not None and done.owner_id in {r.pk for r in reps}
    assert Assignment.objects.unscoped().filter(lead=lead, trigger="capture").count() == 1


def test_a_batch_in_one_transaction_is_one_task_and_round_robin_stays_strict(routed_tenant, lead_form,
                                                                             django_capture_on_commit_callbacks):
    tenant, reps = routed_tenant
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            leads = _capture(tenant, lead_form, 30)
    pipeline = [c for c in callbacks if getattr(c, "pipeline_tenant_id", None) == tenant.pk]
    assert len(pipeline) == 1  # 30 new leads, one task (the other callbacks: the scoring run's band events)
    owners = [fresh(lead).owner_id for lead in leads]
    assert all(owner is not None for owner in owners)
    assert sorted(owners.count(r.pk) for r in reps) == [10, 10, 10]
    assert not Lead.objects.unscoped().filter(pipeline_pending_since__isnull=False).exists()
    # Re-running the task (a redelivery) changes nothing.
    assert lead_captured_task.apply(kwargs={"tenant_id": tenant.pk}).get() == 0
    assert Assignment.objects.unscoped().count() == 30


def test_a_worker_killed_mid_batch_loses_nothing_and_does_nothing_twice(routed_tenant, lead_form):
    tenant, _reps = routed_tenant
    leads = _capture(tenant, lead_form, 5)  # eager: processed already; make them pending again, unprocessed
    Lead.objects.unscoped().filter(pk__in=[lead.pk for lead in leads]).update(
        pipeline_pending_since=timezone.now(), owner=None, scored_at=None)
    Assignment.objects.unscoped().all().delete()

    class Crash(Exception):
        pass

    with pytest.raises(Crash), tenant_scope(tenant), transaction.atomic():
        assert captured_leads_process(tenant=tenant).claimed == 5
        raise Crash  # the worker dies before commit
    assert Lead.objects.unscoped().filter(pipeline_pending_since__isnull=False).count() == 5
    assert not Assignment.objects.unscoped().exists()
    with tenant_scope(tenant):
        assert captured_leads_process(tenant=tenant).routed == 5
        assert captured_leads_process(tenant=tenant).claimed == 0
    assert Assignment.objects.unscoped().count() == 5


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_claim_the_same_lead(routed_tenant, lead_form, settings):
    tenant, _reps = routed_tenant
    leads = _capture(tenant, lead_form, 6)
    Lead.objects.unscoped().filter(pk__in=[lead.pk for lead in leads]).update(pipeline_pending_since=timezone.now())
    settings.CAPTURE_PIPELINE_BATCH = 4
    claimed_first = threading.Event()
    release = threading.Event()
    seen = {}

    def other_worker():
        try:
            with tenant_scope(tenant), transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT id FROM leads_lead WHERE tenant_id = %s AND pipeline_pending_since IS NOT NULL "
                               "ORDER BY pipeline_pending_since, id LIMIT 4 FOR UPDATE SKIP LOCKED", [tenant.pk])
                seen["other"] = {row[0] for row in cursor.fetchall()}
                claimed_first.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    assert claimed_first.wait(10)
    with tenant_scope(tenant):
        run = captured_leads_process(tenant=tenant)
    release.set()
    thread.join()
    assert len(seen["other"]) == 4 and run.claimed == 2  # the 2 the other worker did not hold
    assert Lead.objects.unscoped().filter(pk__in=seen["other"], pipeline_pending_since__isnull=False).count() == 4


def test_the_sweep_hands_leads_whose_task_was_lost_to_the_pipeline(routed_tenant, lead_form, other_tenant):
    tenant, _reps = routed_tenant
    [lead] = _capture(tenant, lead_form, 1)
    Lead.objects.unscoped().filter(pk=lead.pk).update(pipeline_pending_since=timezone.now(), owner=None)
    Assignment.objects.unscoped().all().delete()
    assert tenants_with_stalled_leads() == []  # just captured: its task may still be on its way
    Lead.objects.unscoped().filter(pk=lead.pk).update(pipeline_pending_since=timezone.now() - timedelta(seconds=30))
    assert tenants_with_stalled_leads() == [tenant.pk]
    assert capture_pipeline_sweep_task.apply().get() == 1
    assert fresh(lead).owner_id is not None and fresh(lead).pipeline_pending_since is None
    assert capture_pipeline_sweep_task.apply().get() == 0


def _pending(tenant, form, n, *, prefix):
    """n new leads captured and committed but not yet processed (their pipeline task not run)."""
    leads = _capture(tenant, form, n, prefix=prefix)  # eager: processed already; make them new again
    ids = [lead.pk for lead in leads]
    Assignment.objects.unscoped().filter(lead_id__in=ids).delete()
    SlaClock.objects.unscoped().filter(lead_id__in=ids).delete()
    Lead.objects.unscoped().filter(pk__in=ids).update(pipeline_pending_since=timezone.now(), owner=None,
                                                      assigned_at=None, sla_due_at=None)
    return leads


def test_a_batch_is_routed_with_multi_row_writes_whatever_its_size(routed_tenant, lead_form):
    """Assignments, SLA clocks, audit events, notifications and the leads themselves are written a batch at a
    time: 40 leads take the same statements as 5; each lead still gets its full history."""
    tenant, reps = routed_tenant
    sla_policy(tenant, minutes=30)
    statements = {}
    for n in (5, 40):
        leads = _pending(tenant, lead_form, n, prefix=f"size{n}-")
        with tenant_scope(tenant), CaptureQueriesContext(connection) as queries:
            assert captured_leads_process(tenant=tenant).routed == n
        statements[n] = len(queries)
        for lead in leads:
            done = fresh(lead)
            assert done.owner_id in {r.pk for r in reps} and done.assigned_at is not None
            [assignment] = Assignment.objects.unscoped().filter(lead=lead)
            assert assignment.owner_id == done.owner_id and assignment.trigger == "capture"
            [clock] = SlaClock.objects.unscoped().filter(lead=lead, stopped_at__isnull=True)
            assert clock.assignment_id == assignment.pk and clock.due_at == done.sla_due_at
            assert clock.due_at == assignment.at + timedelta(minutes=30)
            actions = list(AuditEvent.objects.unscoped().filter(object_id=str(lead.pk))
                           .order_by("id").values_list("action", flat=True))
            assert actions[-2:] == ["lead.assigned", "sla.started"]
            note = Notification.objects.unscoped().get(lead=lead, kind="lead_assigned")
            assert note.user_id == done.owner_id and note.dedup_key == f"assignment:{assignment.pk}"
            assert "Respond by:" in note.body
    # (the first batch also creates the pool's round-robin slots; one statement recomputes the batch's account scores)
    assert statements[40] <= statements[5] <= 36, statements


def test_within_a_batch_a_reps_capacity_counts_the_leads_given_earlier_in_it(tenant, lead_form):
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    sdrs = team(tenant)
    small, big = rep(tenant, sdrs, capacity=2), rep(tenant, sdrs)
    rule(tenant, 10, strategy="capacity", team=sdrs)
    leads = _pending(tenant, lead_form, 10, prefix="cap-")
    with tenant_scope(tenant):
        assert captured_leads_process(tenant=tenant).routed == 10
    owned = [fresh(lead).owner_id for lead in leads]
    assert owned.count(small.pk) == 2 and owned.count(big.pk) == 8


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_keep_round_robin_strict_and_fair(routed_tenant, lead_form, settings):
    """Two workers processing batches side by side: the pool's slots are held per batch, so the second batch
    continues the rotation where the first left it; the three reps end up within one lead of each other."""
    tenant, reps = routed_tenant
    leads = _pending(tenant, lead_form, 61, prefix="rr-")
    settings.CAPTURE_PIPELINE_BATCH = 7
    errors = []

    def worker():
        try:
            with tenant_scope(tenant):
                while captured_leads_process(tenant=tenant).claimed:
                    pass
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    owned = [fresh(lead).owner_id for lead in leads]
    assert sorted(owned.count(r.pk) for r in reps) == [20, 20, 21]
    assert Assignment.objects.unscoped().filter(lead_id__in=[lead.pk for lead in leads]).count() == 61


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_captures_enqueues_one_task_while_it_waits_in_the_queue(routed_tenant, lead_form, monkeypatch):
    """Captures after commit enqueue the pipeline task only when none of the tenant's is waiting: the waiting
    task claims their leads too. Once it starts, the next capture enqueues again."""
    from celery.app.task import Task
    from django.core.cache import cache

    tenant, _reps = routed_tenant
    cache.delete(f"pipeline:queued:{tenant.pk}")
    sent = []
    monkeypatch.setattr(Task, "delay", lambda self, *args, **kwargs: sent.append((self.name, kwargs)))
    leads = _capture(tenant, lead_form, 5, prefix="burst-")
    assert sent == [("leads.tasks.lead_captured_task", {"tenant_id": tenant.pk})]
    assert Lead.objects.unscoped().filter(pk__in=[lead.pk for lead in leads],
                                          pipeline_pending_since__isnull=False).count() == 5
    assert lead_captured_task.apply(kwargs={"tenant_id": tenant.pk}).get() == 5  # the one task takes all five
    _capture(tenant, lead_form, 1, prefix="after-")
    pipeline = [name for name, _kwargs in sent if name == "leads.tasks.lead_captured_task"]
    assert len(pipeline) == 2  # the task started: a new capture enqueues again


def test_the_pipeline_records_possible_duplicates_of_the_batch(routed_tenant, lead_form):
    """Two captures with one phone and different emails: two leads (email decides the merge), one pair."""
    from leads.models import DuplicatePair, DuplicateReason, DuplicateTier

    tenant, _reps = routed_tenant
    first = lead_capture(tenant=tenant, data={"email": "ada@one.example", "first_name": "Ada", "last_name": "Lovelace",
                                              "phone": "+44 20 7123 4567"},
                         actor=Actor.for_form(lead_form), form=lead_form).lead
    with tenant_scope(tenant):
        captured_leads_process(tenant=tenant)
    second = lead_capture(tenant=tenant, data={"email": "ada@two.example", "first_name": "Ada",
                                               "last_name": "Lovelace", "phone": "020 7123 4567", "country": "GB"},
                          actor=Actor.for_form(lead_form), form=lead_form).lead
    with tenant_scope(tenant):
        run = captured_leads_process(tenant=tenant)
    assert run.claimed == 1
    [pair] = DuplicatePair.objects.for_tenant(tenant)
    assert {pair.lead_id, pair.other_id} == {first.pk, second.pk}
    assert (pair.reason, pair.tier) == (DuplicateReason.PHONE, DuplicateTier.HIGH)
