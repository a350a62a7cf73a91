"""The Nurture Agent's minute: enrol, exit, pause/resume, then send the due steps, at most once each.

Per tenant whose agent is on, `nurture_tenant_run`:
  1. the set-based sweeps of `enrollment.py` (auto-enrol, exits incl. readiness → routing, pause while a
     rep works the lead, resume);
  2. `messages_claim` (claiming.py), one transaction under a per-tenant advisory lock: the tenant's budget for this
     minute (`max_per_minute` minus what was claimed in the last 60 s), the due active enrolments picked
     with `FOR UPDATE SKIP LOCKED` in due order, each step's condition evaluated (skip, go to a later
     step, or end), the message rendered and inserted as "sending", and the enrolment advanced — all in
     the same commit. The unique (enrolment, step position) row is the at-most-once guarantee: a
     second run, a duplicate task or an overlapping beat finds the enrolment already advanced (or the
     row locked) and cannot write a second message for the step;
  3. `messages_send`, outside the transaction: one SMTP connection, each message sent and marked "sent"
     (in chunks) or "failed" with the error. Nothing is ever re-sent blindly: if the server cannot be
     reached at all the claimed messages were never transmitted, so they are released (deleted, their
     enrolments put back to retry next minute); a message whose send was cut off midway is marked
     failed, and one left "sending" by a killed worker is marked failed after `STALE_AFTER` — the lead
     may miss that email but never gets it twice.
Quiet hours are in the lead's time zone (its `timezone` attribute, else the zone of its phone number,
else the tenant's): a step due inside them is deferred to their end.
"""
from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.mail import get_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from leadmgmt.audit.services import audit_bulk
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.cross_tenant import cross_tenant
from leadmgmt.tenancy.models import Agent, AgentSetting, Tenant

from ..emails import email_build
from ..models import (
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    NurtureSettings,
)
from .claiming import Claim, messages_claim, nurture_event, update_rows  # noqa: F401 (Claim: callers' type)
from .enrollment import (
    enrollments_auto_enroll,
    enrollments_exit_sweep,
    enrollments_pause_sweep,
)

logger = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=15)
SEND_CHUNK = 200


@dataclass
class TenantRun:
    tenant_id: int
    enrolled: int = 0
    exited: dict[str, int] = field(default_factory=dict)
    paused: int = 0
    resumed: int = 0
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    released: int = 0
    deferred: int = 0
    completed: int = 0
    stale: int = 0
    skipped: str = ""


# --- the agent ---------------------------------------------------------------------------------------


def nurture_agent_run(*, now: datetime | None = None, tenant_ids=None) -> list[TenantRun]:
    """One pass over every active tenant whose Nurture Agent is on."""
    with cross_tenant("sweep"):  # which tenants switched their Nurture Agent off
        off = list(AgentSetting.objects.unscoped().filter(agent=Agent.NURTURE, enabled=False)
                   .values_list("tenant_id", flat=True))
    tenants = Tenant.objects.filter(is_active=True).exclude(pk__in=off).order_by("pk")
    if tenant_ids is not None:
        tenants = tenants.filter(pk__in=list(tenant_ids))
    runs = []
    for tenant in tenants:
        with tenant_scope(tenant):
            try:
                runs.append(nurture_tenant_run(tenant=tenant, now=now))
            except Exception:  # one tenant's failure must not stop the others; the next minute retries
                logger.exception("Nurture run failed for tenant %s", tenant.pk)
    return runs


def nurture_tenant_run(*, tenant: Tenant, now: datetime | None = None, send: bool = True) -> TenantRun:
    now = now or timezone.now()
    run = TenantRun(tenant_id=tenant.pk)
    run.enrolled = enrollments_auto_enroll(tenant=tenant, now=now)
    run.exited = enrollments_exit_sweep(tenant=tenant, now=now)
    run.paused, run.resumed = enrollments_pause_sweep(tenant=tenant, now=now)
    run.stale = messages_fail_stale(tenant=tenant, now=now)
    nurture = NurtureSettings.objects.for_tenant(tenant).first()
    if nurture is None or not nurture.postal_address.strip():
        run.skipped = "No postal address in the nurture settings: nothing is sent until one is set."
        return run
    claim = messages_claim(tenant=tenant, nurture=nurture, now=now)
    run.claimed, run.deferred, run.completed = len(claim.message_ids), claim.deferred, claim.completed
    if send and claim.message_ids:
        outcome = messages_send(tenant=tenant, nurture=nurture, message_ids=claim.message_ids)
        run.sent, run.failed, run.released = outcome
    return run


def messages_send(*, tenant: Tenant, nurture: NurtureSettings, message_ids) -> tuple[int, int, int]:
    """Send claimed messages over one SMTP connection; returns (sent, failed, released)."""
    messages = list(Message.objects.for_tenant(tenant).filter(pk__in=list(message_ids),
                                                      status=MessageStatus.SENDING)
                    .select_related("sequence").order_by("claimed_at", "enrollment_id"))
    if not messages:
        return 0, 0, 0
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
    except (OSError, smtplib.SMTPException) as exc:
        logger.warning("SMTP server unreachable for tenant %s: %s", tenant.pk, exc)
        return 0, 0, messages_release(tenant=tenant, messages=messages)
    sent: list[tuple[Message, str, datetime]] = []
    failed: list[tuple[Message, str]] = []
    untried: list[Message] = []
    try:
        for index, message in enumerate(messages):
            email = email_build(message=message, nurture=nurture, tenant_name=tenant.name, connection=connection)
            try:
                email.send(fail_silently=False)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                # Cut off mid-message: it may have gone out, so it is not retried; the rest never left.
                failed.append((message, f"Connection lost while sending: {exc}"))
                untried = messages[index + 1:]
                break
            except smtplib.SMTPException as exc:
                failed.append((message, f"Refused by the mail server: {exc}"))
            else:
                sent.append((message, email.extra_headers["Message-ID"], timezone.now()))
            if len(sent) >= SEND_CHUNK:
                _sent_record(tenant=tenant, sent=sent)
                sent = []
    finally:
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - closing a broken connection must not hide the results
            pass
        _sent_record(tenant=tenant, sent=sent)
        _failed_record(tenant=tenant, failed=failed)
    released = messages_release(tenant=tenant, messages=untried) if untried else 0
    return len(messages) - len(failed) - len(untried), len(failed), released


@transaction.atomic
def _sent_record(*, tenant: Tenant, sent: list[tuple[Message, str, datetime]]) -> None:
    if not sent:
        return
    update_rows("nurture_message", [str(m.pk) for m, _, _ in sent], {
        "status": ([MessageStatus.SENT.value for _ in sent], "varchar"),
        "smtp_message_id": ([smtp_id[:300] for _, smtp_id, _ in sent], "varchar"),
        "sent_at": ([at for _, _, at in sent], "timestamptz")}, id_type="uuid")
    last = max(at for _, _, at in sent)
    enrollment_ids = [m.enrollment_id for m, _, _ in sent]
    Enrollment.objects.for_tenant(tenant).filter(pk__in=enrollment_ids).update(last_sent_at=last)
    _complete_finished(tenant=tenant, enrollment_ids=enrollment_ids, now=last)
    audit_bulk(events=[
        nurture_event(tenant.pk, "nurture.email_sent", m.lead_id,
               {"sequence": m.sequence.name, "step": m.step_position, "subject": m.subject, "to": m.to_email,
                "message_id": str(m.pk), "enrollment_id": m.enrollment_id})
        for m, _, _ in sent])


@transaction.atomic
def _failed_record(*, tenant: Tenant, failed: list[tuple[Message, str]]) -> None:
    if not failed:
        return
    for message, error in failed:
        message.status, message.error = MessageStatus.FAILED, error[:500]
    Message.objects.for_tenant(tenant).bulk_update([m for m, _ in failed], ["status", "error"])
    _complete_finished(tenant=tenant, enrollment_ids=[m.enrollment_id for m, _ in failed], now=timezone.now())
    audit_bulk(events=[
        nurture_event(tenant.pk, "nurture.email_failed", m.lead_id,
               {"sequence": m.sequence.name, "step": m.step_position, "error": error[:300], "message_id": str(m.pk)})
        for m, error in failed])


def _complete_finished(*, tenant: Tenant, enrollment_ids, now: datetime) -> None:
    """Enrolments whose last step has gone (no next step) are completed."""
    finished = list(Enrollment.objects.for_tenant(tenant).filter(pk__in=list(enrollment_ids), status=EnrollmentStatus.ACTIVE, next_position__isnull=True)
        .select_related("sequence"))
    if not finished:
        return
    Enrollment.objects.for_tenant(tenant).filter(pk__in=[e.pk for e in finished]).update(
        status=EnrollmentStatus.COMPLETED, ended_at=now, next_due_at=None, updated_at=now)
    audit_bulk(events=[nurture_event(tenant.pk, "nurture.completed", e.lead_id,
                              {"sequence": e.sequence.name, "enrollment_id": e.pk}) for e in finished])


@transaction.atomic
def messages_release(*, tenant: Tenant, messages: list[Message]) -> int:
    """Messages that never left (the server could not be reached): delete them and put their enrolments back
    on their step, due as when they were claimed, so the next minute tries again."""
    if not messages:
        return 0
    now = timezone.now()
    ids = [m.pk for m in messages]
    deleted, _ = Message.objects.for_tenant(tenant).filter(pk__in=ids, status=MessageStatus.SENDING).delete()
    for message in messages:
        Enrollment.objects.for_tenant(tenant).filter(pk=message.enrollment_id).update(
            next_position=message.step_position, next_due_at=message.claimed_at, messages_sent=F("messages_sent") - 1,
            updated_at=now)
    return deleted


def messages_fail_stale(*, tenant: Tenant, now: datetime | None = None) -> int:
    """Messages left "sending" by a worker that died are marked failed (never re-sent: at most once)."""
    now = now or timezone.now()
    with transaction.atomic():
        stale = list(Message.objects.for_tenant(tenant).select_for_update(skip_locked=True)
                     .filter(status=MessageStatus.SENDING, claimed_at__lt=now - STALE_AFTER)
                     .select_related("sequence"))
        if not stale:
            return 0
        _failed_record(tenant=tenant, failed=[
            (m, "The worker stopped while sending; not retried, so the lead never gets it twice.") for m in stale])
    return len(stale)
