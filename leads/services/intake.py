"""One intake submission: the honeypot, the Idempotency-Key replay window and `lead_capture()`,
answered as a status code and a JSON body that the intake endpoint renders."""
from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.cross_tenant import cross_tenant
from leads.models import IdempotencyRecord, LeadForm
from leads.services.capture import lead_capture

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = IdempotencyRecord._meta.get_field("key").max_length  # 200


@dataclass(frozen=True)
class IntakeResult:
    """The answer to a submission; `replayed` when it is the stored first answer to its key."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False


class IdempotencyKeyInvalid(ValueError):
    """The Idempotency-Key is blank, too long or not printable ASCII."""


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key already answered a request with a different body."""


def intake_submit(
    *,
    form: LeadForm,
    data: dict[str, Any],
    idempotency_key: str | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> IntakeResult:
    """Capture a form's submission: a filled honeypot is answered as created and dropped; with an
    Idempotency-Key (as sent), the first answer within the replay window is replayed instead of
    capturing again. Raises `IdempotencyKeyInvalid`, `IdempotencyKeyReused` (the key came with
    another body) or lead_capture's ValidationError."""
    honeypot = settings.INTAKE_HONEYPOT_FIELD
    if str(data.get(honeypot) or "").strip():
        log.info("intake honeypot filled: form=%s ip=%s", form.pk, ip_address)
        return IntakeResult(201, {"id": str(uuid.uuid4()), "result": "created"})
    payload = {k: v for k, v in data.items() if k not in ("form_key", honeypot)}
    key = idempotency_key_clean(key=idempotency_key)
    if key is None:
        return _capture(form=form, payload=payload, ip_address=ip_address, user_agent=user_agent)
    return _capture_once(form=form, key=key, payload=payload, ip_address=ip_address, user_agent=user_agent)


def _capture(*, form: LeadForm, payload: dict, ip_address: str | None, user_agent: str) -> IntakeResult:
    result = lead_capture(
        tenant=form.tenant, data=payload, actor=Actor.for_form(form), form=form,
        ip_address=ip_address, user_agent=user_agent,
    )
    return IntakeResult(201 if result.result == "created" else 200, {"id": str(result.lead.pk), "result": result.result})


def _capture_once(
    *, form: LeadForm, key: str, payload: dict, ip_address: str | None, user_agent: str
) -> IntakeResult:
    """Idempotent capture: the record is written in the lead's transaction, so of two concurrent
    requests with one key only one writes; the other replays its answer."""
    request_hash = intake_request_hash(payload=payload)
    cutoff = idempotency_window_start()
    record = _idempotency_record(form=form, key=key)
    if record is not None and record.created_at >= cutoff:
        return idempotency_replay(record=record, request_hash=request_hash)
    try:
        with transaction.atomic():
            if record is not None:  # expired: this request starts a new replay window
                idempotency_expired_delete(form=form, key=key, cutoff=cutoff)
            result = _capture(form=form, payload=payload, ip_address=ip_address, user_agent=user_agent)
            idempotency_store(form=form, key=key, request_hash=request_hash, result=result)
    except IntegrityError:
        # A concurrent request with this key committed first: answer as it did.
        record = _idempotency_record(form=form, key=key)
        if record is None:
            raise
        return idempotency_replay(record=record, request_hash=request_hash)
    return result


# --- Idempotency-Key records -----------------------------------------------------------------

def idempotency_key_clean(*, key: str | None) -> str | None:
    """The key without surrounding blanks (None when none was sent); `IdempotencyKeyInvalid` unless
    it is 1 to 200 printable ASCII characters."""
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise IdempotencyKeyInvalid(f"Use 1 to {MAX_KEY_LENGTH} printable ASCII characters.")
    return key


def intake_request_hash(*, payload: dict[str, Any]) -> str:
    """A submission's fingerprint: SHA-256 of its canonical JSON (key order does not matter)."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def idempotency_window_start(*, now: datetime | None = None) -> datetime:
    """Records created before this are expired: their key may start a new submission."""
    return (now or timezone.now()) - timedelta(hours=settings.INTAKE_IDEMPOTENCY_TTL_HOURS)


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Delete Idempotency-Key records older than the replay window, across tenants, set-based.

    Not audited per row: these are transport bookkeeping, not tenant data anyone edited.
    """
    with cross_tenant("sweep"):
        deleted, _ = (IdempotencyRecord.objects.unscoped()
                      .filter(created_at__lt=idempotency_window_start(now=now)).delete())
    return deleted


def _idempotency_records(*, form: LeadForm, key: str):
    return IdempotencyRecord.objects.for_tenant(form.tenant).filter(form=form, key=key)


def _idempotency_record(*, form: LeadForm, key: str) -> IdempotencyRecord | None:
    return _idempotency_records(form=form, key=key).first()


def idempotency_replay(*, record: IdempotencyRecord, request_hash: str) -> IntakeResult:
    """The stored first answer to a key, or `IdempotencyKeyReused` when this body is another one."""
    if record.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "This key was already used with a different request body; use a new key for a new submission."
        )
    return IntakeResult(record.status_code, record.response_body, replayed=True)


def idempotency_store(*, form: LeadForm, key: str, request_hash: str, result: IntakeResult) -> IdempotencyRecord:
    """Keep the first answer to a key; a concurrent first answer makes this raise IntegrityError."""
    return IdempotencyRecord.objects.create(
        tenant=form.tenant, form=form, key=key, request_hash=request_hash,
        status_code=result.status_code, response_body=result.body,
    )


def idempotency_expired_delete(*, form: LeadForm, key: str, cutoff: datetime) -> None:
    """Forget a key's answer from before `cutoff` (a fresh one a concurrent request wrote stays)."""
    _idempotency_records(form=form, key=key).filter(created_at__lt=cutoff).delete()
