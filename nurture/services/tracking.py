"""What recipients and the email provider tell us about sent nurture emails: opens, clicks, unsubscribes,
bounces, and the suppression list they feed.

Every write here is idempotent, because each of them can arrive twice: mail clients load the open pixel
again, security scanners and people click a link twice, mail providers retry the one-click unsubscribe
POST and the bounce callback. The behavioural signals (`email_open`, `email_click`, `unsubscribe`) carry
an `external_id` derived from the message (and the URL for clicks), so `signals_record` stores each once
and the lead is re-scored once, after commit, by the signal-processing task.

A click also counts as an open: an email whose images were blocked was still read when its link was
clicked. The click records the message's `email_open` signal too (same `external_id` as the pixel's, so
never twice), which scores a lead the same whether or not the mail client loaded the pixel.
"""
from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.audit.services import audit_bulk, audit_record
from leadmgmt.tenancy.context import get_current_tenant, tenant_scope
from leads.locks import lead_lock
from leads.models import Lead
from leads.services.email_bounce import leads_email_bounced_flag
from leads.services.signals import SignalInput, SignalStatus, signals_record

from ..models import ExitReason, Message, MessageStatus, Suppression, SuppressionReason
from ..selectors import message_for_link
from .enrollment import enrollments_exit

RECIPIENT = Actor(kind="system", name="Email recipient")
EMAIL_PROVIDER = Actor(kind="system", name="Email provider (bounce callback)")
UNSUBSCRIBE_CONSENT_SOURCE = "unsubscribe link"

UNSUBSCRIBED = "unsubscribed"
ALREADY_UNSUBSCRIBED = "already unsubscribed"

_EXIT_REASON = {
    SuppressionReason.UNSUBSCRIBED: ExitReason.UNSUBSCRIBED,
    SuppressionReason.COMPLAINT: ExitReason.UNSUBSCRIBED,
    SuppressionReason.HARD_BOUNCE: ExitReason.BOUNCED,
    SuppressionReason.MANUAL: ExitReason.MANUAL,
}


class BounceKind(models.TextChoices):
    HARD = "hard", "Hard bounce: the address does not exist or refuses mail"
    SOFT = "soft", "Soft bounce: a temporary failure (mailbox full, server down)"
    COMPLAINT = "complaint", "Spam complaint: the recipient marked the email as spam"


class BounceOutcome(models.TextChoices):
    SUPPRESSED = "suppressed", "The address is now on the suppression list; its sequences ended"
    RECORDED = "recorded", "Recorded on the message it was sent for"
    DUPLICATE = "duplicate", "Received before; nothing changed"
    IGNORED = "ignored", "A soft bounce for an address this tenant never sent nurture email to; nothing written"


@dataclass(frozen=True)
class BounceResult:
    status: str
    message_id: uuid.UUID | None = None


def _email_clean(email: str) -> str:
    value = (email or "").strip().lower()
    if not value or "@" not in value:
        raise ValidationError({"email": ["Enter a valid email address."]})
    return value


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _in_message_tenant(service):
    """Tracking services take the id of a message from a public link: they run in that message's tenant,
    found first through the `public_link` path (selectors.message_for_link), so every read and write below
    is held to it. An unknown message runs in no tenant and finds nothing."""

    @functools.wraps(service)
    def run(*, message_id, **kwargs):
        message = message_for_link(message_id=message_id)
        with tenant_scope(message.tenant if message is not None else None):
            return service(message_id=message_id, **kwargs)

    return run


def _message_locked(message_id) -> Message | None:
    """The message with its tenant, its row locked (tracking writes of one message queue behind each other)."""
    if get_current_tenant() is None:
        return None
    return (Message.objects.select_for_update(of=("self",)).select_related("tenant", "sequence")
            .filter(pk=message_id).first())


def _signal(*, message: Message, type_: str, external_id: str, now: datetime, properties: dict) -> None:
    signals_record(tenant=message.tenant, actor=RECIPIENT, items=[SignalInput(
        index=0, type=type_, occurred_at=now, lead_id=message.lead_id, external_id=external_id,
        properties={"message_id": str(message.pk), "sequence": message.sequence.name, **properties})])


# --- suppression list ---------------------------------------------------------------------------------


@transaction.atomic
def suppression_add(*, tenant, email: str, reason: str, note: str = "", actor: Actor,
                    now: datetime | None = None) -> tuple[Suppression, bool]:
    """Put an address on the tenant's suppression list (lower-cased) and end the live enrolments of the
    tenant's leads with that address. Returns (suppression, created); adding it again changes nothing."""
    now = now or timezone.now()
    email = _email_clean(email)
    if reason not in SuppressionReason.values:
        raise ValidationError({"reason": [f"Choose one of: {', '.join(SuppressionReason.values)}."]})
    reason = SuppressionReason(reason)
    suppression, created = Suppression.objects.for_tenant(tenant).get_or_create(tenant=tenant, email=email, defaults={"reason": reason, "note": note[:300], "created_at": now})
    if created:
        audit_record(tenant=tenant, actor=actor, action="nurture.suppressed", obj=suppression,
                     metadata={"email": email, "reason": reason.value, "label": reason.label, "note": note[:300]})
        if reason == SuppressionReason.HARD_BOUNCE:  # the address is dead: its leads need a person to look
            leads_email_bounced_flag(tenant=tenant, email=email, note=note or reason.label, actor=actor, at=now)
    lead_ids = list(Lead.objects.for_tenant(tenant).filter(email=email).values_list("pk", flat=True))
    if lead_ids:
        enrollments_exit(tenant_id=tenant.pk, lead_ids=lead_ids, reason=_EXIT_REASON[reason], actor=actor,
                         note=note or reason.label, now=now)
    return suppression, created


# --- what the recipient does ----------------------------------------------------------------------------


@_in_message_tenant
@transaction.atomic
def message_unsubscribe(*, message_id, one_click: bool, now: datetime | None = None) -> str:
    """The recipient of a message unsubscribed (its signed link, or their mail client's RFC 8058 one-click
    POST): the address is suppressed, the lead's marketing consent withdrawn, its live enrolments ended and
    an `unsubscribe` signal recorded for scoring. Returns UNSUBSCRIBED, or ALREADY_UNSUBSCRIBED when there
    was nothing left to change (then nothing is written). Raises Message.DoesNotExist."""
    now = now or timezone.now()
    # The lead's row lock (below) serialises unsubscribes; the message itself is only read.
    message = (Message.objects.select_related("tenant", "sequence").filter(pk=message_id).first()
               if get_current_tenant() is not None else None)
    if message is None:
        raise Message.DoesNotExist(f"No nurture message {message_id}.")
    tenant = message.tenant
    how = "one-click unsubscribe" if one_click else "unsubscribe link"
    note = f"{how.capitalize()} of “{message.subject}”"[:300]
    try:
        lead = lead_lock(tenant=tenant, lead_id=message.lead_id)
    except Lead.DoesNotExist:
        lead = None
    _suppression, created = suppression_add(tenant=tenant, email=message.to_email, reason=SuppressionReason.UNSUBSCRIBED,
                                            note=note, actor=RECIPIENT, now=now)
    changes: dict[str, list] = {}
    exited = []
    if lead is not None:
        if lead.marketing_consent:
            changes = {"marketing_consent": [True, False],
                       "consent_at": [lead.consent_at, now],
                       "consent_source": [lead.consent_source, UNSUBSCRIBE_CONSENT_SOURCE]}
            Lead.objects.for_tenant(tenant).filter(pk=lead.pk).update(
                marketing_consent=False, consent_at=now, consent_source=UNSUBSCRIBE_CONSENT_SOURCE, updated_at=now)
        # The lead's address may have changed since the email went out; its enrolments end all the same.
        exited = enrollments_exit(tenant_id=tenant.pk, lead_ids=[lead.pk], reason=ExitReason.UNSUBSCRIBED,
                                  actor=RECIPIENT, note=note, now=now)
    if not (created or changes or exited):
        return ALREADY_UNSUBSCRIBED
    if lead is not None:
        audit_record(tenant=tenant, actor=RECIPIENT, action="nurture.unsubscribed", obj=lead, changes=changes,
                     metadata={"email": message.to_email, "message_id": message.pk, "sequence": message.sequence.name,
                               "subject": message.subject[:300], "one_click": one_click})
        _signal(message=message, type_="unsubscribe", external_id=f"nurture:{message.pk}:unsubscribe", now=now,
                properties={"one_click": one_click})
    return UNSUBSCRIBED


@_in_message_tenant
@transaction.atomic
def message_opened(*, message_id, now: datetime | None = None) -> bool:
    """The open pixel of a message loaded: every load counts, the first one sets `opened_at` and records an
    `email_open` signal (the lead is re-scored after commit). Returns True for the first open; False also for
    an unknown message (nothing written)."""
    now = now or timezone.now()
    message = _message_locked(message_id)
    if message is None:
        return False
    first = message.opened_at is None
    Message.objects.for_tenant(message.tenant_id).filter(pk=message.pk).update(open_count=F("open_count") + 1,
                                                            opened_at=Coalesce(F("opened_at"), now))
    if first:
        _signal(message=message, type_="email_open", external_id=f"nurture:{message.pk}:open", now=now,
                properties={"subject": message.subject[:300]})
    return first


@_in_message_tenant
@transaction.atomic
def message_clicked(*, message_id, url: str, now: datetime | None = None) -> bool:
    """A tracked link of a message was followed: every click counts, the first one sets `clicked_at`; an
    `email_click` signal is recorded once per message and URL. A click also opens the message (see the
    module docstring). Returns True when this URL's click was new; False also for an unknown message."""
    now = now or timezone.now()
    message = _message_locked(message_id)
    if message is None:
        return False
    Message.objects.for_tenant(message.tenant_id).filter(pk=message.pk).update(
        click_count=F("click_count") + 1, clicked_at=Coalesce(F("clicked_at"), now),
        opened_at=Coalesce(F("opened_at"), now), open_count=Greatest(F("open_count"), 1))
    if message.opened_at is None:
        _signal(message=message, type_="email_open", external_id=f"nurture:{message.pk}:open", now=now,
                properties={"subject": message.subject[:300], "implied_by_click": True})
    external_id = f"nurture:{message.pk}:click:{_short_hash(url)}"
    result = signals_record(tenant=message.tenant, actor=RECIPIENT, items=[SignalInput(
        index=0, type="email_click", occurred_at=now, lead_id=message.lead_id, external_id=external_id,
        properties={"url": url[:2000], "subject": message.subject[:300], "message_id": str(message.pk),
                    "sequence": message.sequence.name})])
    return result.results[0].status != SignalStatus.DUPLICATE


# --- what the email provider reports ---------------------------------------------------------------------


def _bounce_message(*, tenant, email: str, message_id: str | None, lead_ids) -> Message | None:
    """The tenant's message the bounce is about: by our id (the X-Leadmgmt-Message-Id header) or the SMTP
    Message-ID, and only if it went to this address; without an id, the latest message to the address."""
    queryset = Message.objects.for_tenant(tenant).select_related("sequence")
    if message_id:
        try:
            queryset = queryset.filter(pk=uuid.UUID(message_id.strip()))
        except ValueError:
            bare = message_id.strip().strip("<>")
            queryset = queryset.filter(lead_id__in=lead_ids, smtp_message_id__in=[bare, f"<{bare}>"])
    else:
        queryset = queryset.filter(lead_id__in=lead_ids)
    message = queryset.order_by("-claimed_at").first()
    return message if message is not None and message.to_email.lower() == email else None


def _bounce_audit(*, tenant, actor: Actor, lead_ids, kind: str, email: str, reason: str,
                  message: Message | None) -> None:
    metadata = {"kind": kind, "label": BounceKind(kind).label, "email": email, "reason": reason[:300],
                "message_id": str(message.pk) if message else None,
                "subject": message.subject[:300] if message else None}
    audit_bulk(events=[
        AuditEvent(tenant=tenant, actor_kind=actor.kind, actor_name=actor.name[:200], action="nurture.bounced",
                   object_type="leads.lead", object_id=str(lead_id), metadata=metadata)
        for lead_id in sorted(lead_ids, key=str)
    ])


@transaction.atomic
def bounce_record(*, tenant, email: str, kind: str, message_id: str | None = None, reason: str = "",
                  occurred_at: datetime | None = None, actor: Actor = EMAIL_PROVIDER,
                  now: datetime | None = None) -> BounceResult:
    """A bounce or complaint the email provider reported. Hard bounces and complaints suppress the address
    (its leads' sequences end) and mark the message bounced; a soft bounce is written on the message as its
    error and audited, nothing is suppressed. A retried report changes nothing (status "duplicate")."""
    now = now or timezone.now()
    email = _email_clean(email)
    if kind not in BounceKind.values:
        raise ValidationError({"type": [f"Choose one of: {', '.join(BounceKind.values)}."]})
    kind = BounceKind(kind)
    when = min(occurred_at or now, now)
    lead_ids = set(Lead.objects.for_tenant(tenant).filter(email=email).values_list("pk", flat=True))
    message = _bounce_message(tenant=tenant, email=email, message_id=message_id, lead_ids=lead_ids)
    if message is not None:
        lead_ids.add(message.lead_id)
    label = {BounceKind.HARD: "Hard bounce", BounceKind.SOFT: "Soft bounce", BounceKind.COMPLAINT: "Spam complaint"}[kind]
    error = f"{label}: {reason}"[:500] if reason else label

    if kind == BounceKind.SOFT:
        if message is None:
            return BounceResult(status=BounceOutcome.IGNORED)
        # Guarded update: a retry (or a concurrent copy) of the same report finds the error already written.
        if not Message.objects.for_tenant(message.tenant_id).filter(pk=message.pk).exclude(error=error).update(error=error):
            return BounceResult(status=BounceOutcome.DUPLICATE, message_id=message.pk)
        _bounce_audit(tenant=tenant, actor=actor, lead_ids=lead_ids, kind=kind, email=email, reason=reason,
                      message=message)
        return BounceResult(status=BounceOutcome.RECORDED, message_id=message.pk)

    suppression_reason = SuppressionReason.HARD_BOUNCE if kind == BounceKind.HARD else SuppressionReason.COMPLAINT
    _suppression, created = suppression_add(tenant=tenant, email=email, reason=suppression_reason,
                                            note=error[:300], actor=actor, now=now)
    message_changed = message is not None and bool(
        Message.objects.for_tenant(message.tenant_id).filter(pk=message.pk).exclude(status=MessageStatus.BOUNCED)
        .update(status=MessageStatus.BOUNCED, bounced_at=when, error=error))
    if kind == BounceKind.HARD and message_changed and not created:  # suppressed before (e.g. unsubscribed)
        leads_email_bounced_flag(tenant=tenant, email=email, note=error[:300], actor=actor, at=when)
    if created or message_changed:
        _bounce_audit(tenant=tenant, actor=actor, lead_ids=lead_ids, kind=kind, email=email, reason=reason,
                      message=message)
    status = (BounceOutcome.SUPPRESSED if created else
              BounceOutcome.RECORDED if message_changed else BounceOutcome.DUPLICATE)
    return BounceResult(status=status, message_id=message.pk if message else None)
