"""Capturing a batch of leads from an integration or an ad platform (`POST /api/v1/leads/batch/`): every item goes
through `lead_capture` (the web intake's normalisation, dedup, consent and attribution), all of them in one
transaction, each in its own savepoint; with an Idempotency-Key the whole answer is stored and replayed."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from leadmgmt.api import printable_key
from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.models import ApiKey, Tenant
from leads.capture_input import CaptureInput, capture_input_validate
from leads.erasure import ERASED_MESSAGE, erased_emails
from leads.locks import leads_lock
from leads.models import IdempotencyRecord, Lead
from leads.services.capture import lead_capture
from leads.services.intake import (
    IntakeResult,
    idempotency_key_clean,
    idempotency_replay,
    idempotency_window_start,
    intake_request_hash,
)

# The source of an item that names none, in a batch that names none: the lead came in through the API.
DEFAULT_SOURCE = "api"
MULTI_STATUS = 207


@dataclass(frozen=True)
class BatchItemResult:
    """What became of one item: created (201), merged into an existing lead (200) or refused (400)."""

    index: int
    status: int
    result: str  # "created" | "merged" | "error"
    lead_id: UUID | None = None
    errors: dict[str, list[str]] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": self.status, "result": self.result}
        if self.lead_id is not None:
            out["id"] = str(self.lead_id)
        if self.errors is not None:
            out["errors"] = self.errors
        return out


def batch_body(results: Sequence[BatchItemResult]) -> dict[str, Any]:
    """The 207 answer: a result per item in request order, and the counts of each outcome."""
    counts = {"created": 0, "merged": 0, "error": 0}
    for item in results:
        counts[item.result] += 1
    return {"results": [item.as_dict() for item in sorted(results, key=lambda r: r.index)],
            "created": counts["created"], "merged": counts["merged"], "errors": counts["error"]}


def _storable(text: str) -> str:
    """Text jsonb can store (the answer is kept for Idempotency-Key replays): a field name may carry a NUL or a
    lone surrogate as sent, shown as its escape instead."""
    return printable_key(text).replace("\x00", "\\u0000")


def _field_errors(exc: ValidationError) -> dict[str, list[str]]:
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
    return {_storable(field): [_storable(message) for message in messages] for field, messages in errors.items()}


def _error(index: int, exc: ValidationError) -> BatchItemResult:
    return BatchItemResult(index=index, status=400, result="error", errors=_field_errors(exc))


def leads_capture_batch(
    *,
    tenant: Tenant,
    items: Sequence[Any],
    actor: Actor,
    source: str | None = None,
    api_key: ApiKey | None = None,
    idempotency_key: str | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> IntakeResult:
    """Capture each item as the web intake captures one submission, answered item by item (207): an item's own
    `source` wins, else the batch's `source`, else "api". A refused item is that item's error; the others go on.

    One transaction for the batch: an item is captured in a savepoint, so a refused one leaves nothing behind,
    and later items see the earlier ones (a second item with the first one's email merges into its lead). A
    database error (not a refusal) rolls the whole batch back. Everything that `lead_captured` enqueues runs
    after that one commit, so the worker gets the batch as one unit.

    With an `idempotency_key` (scoped to `api_key`, so it never meets a form's key) the first answer within the
    replay window is replayed and nothing is captured again. Raises `IdempotencyKeyInvalid` and
    `IdempotencyKeyReused` (the key came with another batch) of `leads.services.intake`."""
    default_source = source or DEFAULT_SOURCE
    key = idempotency_key_clean(key=idempotency_key)
    if key is None:
        return _batch_capture(tenant=tenant, items=items, actor=actor, default_source=default_source,
                              ip_address=ip_address, user_agent=user_agent)
    if api_key is None:
        raise ValueError("An Idempotency-Key of a batch is scoped to the API key that sent it; pass `api_key`.")
    request_hash = intake_request_hash(payload={"leads": list(items), "source": source or ""})
    cutoff = idempotency_window_start()
    record = _idempotency_record(tenant=tenant, api_key=api_key, key=key)
    if record is not None and record.created_at >= cutoff:
        return idempotency_replay(record=record, request_hash=request_hash)
    try:
        with transaction.atomic():
            if record is not None:  # expired: this request starts a new replay window
                _idempotency_records(tenant=tenant, api_key=api_key, key=key).filter(created_at__lt=cutoff).delete()
            result = _batch_capture(tenant=tenant, items=items, actor=actor, default_source=default_source,
                                    ip_address=ip_address, user_agent=user_agent)
            # In the batch's transaction: of two concurrent requests with one key only one commits.
            IdempotencyRecord.objects.create(
                tenant=tenant, api_key=api_key, key=key, request_hash=request_hash,
                status_code=result.status_code, response_body=result.body,
            )
    except IntegrityError:
        # A concurrent request with this key committed first (its captures are this batch's): answer as it did.
        record = _idempotency_record(tenant=tenant, api_key=api_key, key=key)
        if record is None:
            raise
        return idempotency_replay(record=record, request_hash=request_hash)
    return result


def _batch_capture(
    *, tenant: Tenant, items: Sequence[Any], actor: Actor, default_source: str, ip_address: str | None,
    user_agent: str,
) -> IntakeResult:
    results: list[BatchItemResult] = []
    valid: list[tuple[int, Any, CaptureInput]] = []
    # Validated up front (no database): a refused item costs no savepoint, and the emails are known before any
    # lead is locked. `lead_capture` validates the item again, to the same result.
    for index, item in enumerate(items):
        try:
            valid.append((index, item, capture_input_validate(data=item)))
        except ValidationError as exc:
            results.append(_error(index, exc))
    # A person erased at their request is never imported again (one query for the batch).
    erased = erased_emails(tenant=tenant, emails={capture.email for _i, _item, capture in valid if capture.email})
    if erased:
        for index, _item, capture in valid:
            if capture.email in erased:
                results.append(_error(index, ValidationError({"email": [ERASED_MESSAGE]})))
        valid = [entry for entry in valid if entry[2].email not in erased]
    with transaction.atomic():
        _existing_leads_lock(tenant=tenant, captures=[capture for _i, _item, capture in valid])
        for index, item, capture in valid:
            try:
                with transaction.atomic():  # a savepoint: a refused item leaves no half-written row
                    captured = lead_capture(
                        tenant=tenant, data=item, actor=actor, source=capture.values.get("source") or default_source,
                        ip_address=ip_address, user_agent=user_agent,
                    )
            except ValidationError as exc:
                results.append(_error(index, exc))
                continue
            created = captured.result == "created"
            results.append(BatchItemResult(index=index, status=201 if created else 200, result=captured.result,
                                           lead_id=captured.lead.pk))
    return IntakeResult(MULTI_STATUS, batch_body(results))


def _existing_leads_lock(*, tenant: Tenant, captures: Sequence[CaptureInput]) -> None:
    """Lock the batch's existing leads (by email) at once, in ascending id, before capturing any of them: the
    lock order of `leads.locks` for several leads, so two batches that share people wait for each other instead
    of each holding a lead the other needs. Leads matched by phone are locked by their capture as usual (after
    the phone's advisory lock, which is that capture's order)."""
    emails = sorted({capture.email for capture in captures if capture.email})
    if not emails:
        return
    lead_ids = list(Lead.objects.for_tenant(tenant).filter(email__in=emails).values_list("id", flat=True))
    if lead_ids:
        leads_lock(tenant=tenant, lead_ids=lead_ids)


def _idempotency_records(*, tenant: Tenant, api_key: ApiKey, key: str):
    return IdempotencyRecord.objects.for_tenant(tenant).filter(api_key=api_key, key=key)


def _idempotency_record(*, tenant: Tenant, api_key: ApiKey, key: str) -> IdempotencyRecord | None:
    return _idempotency_records(tenant=tenant, api_key=api_key, key=key).first()
