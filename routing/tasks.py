"""Celery tasks of the Routing Agent and the SLA Agent: thin, re-runnable wrappers around routing services.

Beat's tasks scan database columns (`next_action_at`, aging flags, `email_due`, leads without an
assignment) with status guards, so a duplicate or concurrent run does nothing twice. Their `now`
(an ISO datetime, or a datetime for the sweep) is for tests and replays; beat sends none.
"""
from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Tenant
from leads.models import Lead

from .notifications import notification_emails_send
from .services.aging import leads_aging_check
from .services.assign import lead_route_auto, leads_lost_route
from .services.sla_clocks import sla_clock_tighten
from .services.sla_enforcement import sla_enforce

log = logging.getLogger(__name__)

def _when(now: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(now) if now else None


# --- the Routing Agent --------------------------------------------------------------------------------


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def lead_route_task(self, *, tenant_id: int, lead_id: str, trigger: str) -> int | None:
    """Route one lead as the Routing Agent (capture, band change). Safe to run twice: a lead routed
    on capture is not routed again, and the decision is taken with the lead row locked."""
    try:
        with tenant_scope(tenant_id) as tenant:
            assignment = lead_route_auto(tenant=tenant, lead_id=lead_id, trigger=trigger)
            return assignment.pk if assignment is not None else None
    except Tenant.DoesNotExist:
        return None


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def sla_clock_tighten_task(self, *, tenant_id: int, lead_id: str, now: str | None = None) -> int | None:
    """After a band change: move the lead's running first-contact clock to a tighter policy that matches
    now (`sla_clock_tighten`); returns the clock's id when it changed. Safe to run twice."""
    try:
        with tenant_scope(tenant_id) as tenant:
            lead = Lead.objects.for_tenant(tenant).filter(pk=lead_id).first()
            clock = sla_clock_tighten(lead=lead, now=_when(now)) if lead is not None else None
            return clock.pk if clock is not None else None
    except Tenant.DoesNotExist:
        return None


@shared_task(acks_late=True)
def routing_sweep_task(*, now=None) -> int:
    """Beat, every minute: route the leads of every active tenant whose routing task was lost."""
    now = now or timezone.now()
    routed = 0
    for tenant in Tenant.objects.filter(is_active=True).order_by("pk"):
        with tenant_scope(tenant):
            routed += leads_lost_route(tenant=tenant, now=now)
    if routed:
        log.info("routing sweep: routed %s leads whose task was lost", routed)
    return routed


# --- the SLA Agent ------------------------------------------------------------------------------------
# These keep the names they were registered under in the former routing/sla_tasks.py: beat's schedule
# (leadmgmt/celery.py, copied into django_celery_beat's PeriodicTask rows) and any message already
# queued refer to a task by its name.


@shared_task(name="routing.sla_tasks.sla_enforce_task", acks_late=True, autoretry_for=(OperationalError,),
             retry_backoff=True, max_retries=3)
def sla_enforce_task(now: str | None = None) -> dict:
    """Beat, every minute: breach due SLA clocks and take each due escalation step once."""
    return sla_enforce(now=_when(now))


@shared_task(name="routing.sla_tasks.aging_check_task", acks_late=True, autoretry_for=(OperationalError,),
             retry_backoff=True, max_retries=3)
def aging_check_task(now: str | None = None) -> dict:
    """Beat, every 15 minutes: flag leads untouched 48 h, alert managers at 72 h."""
    return leads_aging_check(now=_when(now))


@shared_task(name="routing.sla_tasks.notification_emails_task", acks_late=True)
def notification_emails_task(now: str | None = None) -> int:
    """Beat, every minute: the safety net that emails any due notification whose immediate task was lost."""
    return notification_emails_send(now=_when(now))


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def notification_emails_now_task(*, notification_ids: list[int] | None = None) -> int:
    """Enqueued when the transaction that created them commits: email these notifications now (None:
    every due one). Already-sent ones are skipped, so a duplicate run or the beat sweep sends nothing twice."""
    return notification_emails_send(ids=notification_ids)
