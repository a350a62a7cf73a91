"""Signal writes: recording a batch from an integration, attaching pending signals, processing them.

`signals_record` is set-based whatever the batch size (a fixed number of queries for 1 or 1000
signals). `signals_process` is the hook where a worker turns signals into lead changes; scoring
plugs in there. Both are safe to run twice.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Case, DateTimeField, Exists, F, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from leadmgmt.audit.actors import SIGNAL_AGENT, Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.audit.services import audit_bulk
from leads.erasure import ERASED_SIGNAL_MESSAGE, erased_emails
from leads.events import signals_processed
from leads.models import Lead, Signal
from leads.signal_catalog import signal_type_names

# Largest batch one task processes; bigger id lists are split into several tasks.
PROCESS_CHUNK = 1000


class SignalStatus(models.TextChoices):
    """What happened to one signal of a batch."""

    ACCEPTED = "accepted", "Stored for its lead"
    PENDING = "pending", "Stored for an email that is not a lead yet; attached when the lead arrives"
    DUPLICATE = "duplicate", "Its external_id was received before; nothing written"
    ERROR = "error", "Not stored; see errors"


@dataclass
class SignalInput:
    """One signal, already validated for shape (see `leads.serializers.SignalInSerializer`)."""

    index: int
    type: str
    occurred_at: dt.datetime
    email: str = ""
    lead_id: uuid.UUID | None = None
    external_id: str = ""
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class SignalItemResult:
    index: int
    status: str
    id: int | None = None
    errors: dict[str, list[str]] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": str(self.status)}
        if self.id is not None:
            out["id"] = self.id
        if self.errors:
            out["errors"] = self.errors
        return out


@dataclass
class SignalBatchResult:
    results: list[SignalItemResult]

    def _count(self, *statuses: str) -> int:
        return sum(1 for r in self.results if r.status in statuses)

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.results, key=lambda r: r.index)
        return {
            "results": [r.as_dict() for r in ordered],
            # Pending signals are stored too, so they count as accepted.
            "accepted": self._count(SignalStatus.ACCEPTED, SignalStatus.PENDING),
            "pending": self._count(SignalStatus.PENDING),
            "duplicates": self._count(SignalStatus.DUPLICATE),
            "errors": self._count(SignalStatus.ERROR),
        }


@dataclass
class SignalProcessingResult:
    """What one `signals_process` run did; `lead_ids` are the leads whose signals were processed."""

    signal_ids: list[int]
    lead_ids: list[uuid.UUID]


def _error(index: int, field_name: str, message: str) -> SignalItemResult:
    return SignalItemResult(index=index, status=SignalStatus.ERROR, errors={field_name: [message]})


@transaction.atomic
def signals_record(*, tenant, items: Sequence[SignalInput], api_key=None, actor: Actor) -> SignalBatchResult:
    """Store a batch of signals; per item: accepted, pending (no lead yet), duplicate or error.

    Unknown types and lead ids that are not the tenant's are per-item errors. A re-sent
    `external_id` (earlier or in the same batch) writes nothing and answers `duplicate` with the
    stored signal's id. After commit, the stored signals of known leads are processed by a task.
    """
    known_types = signal_type_names(tenant=tenant)
    lead_ids = {item.lead_id for item in items if item.lead_id is not None}
    emails = {item.email for item in items if item.email}
    leads_by_id = set(Lead.objects.for_tenant(tenant).filter(id__in=lead_ids).values_list("id", flat=True)) if lead_ids else set()
    leads_by_email = dict(
        Lead.objects.for_tenant(tenant).filter(email__in=emails).values_list("email", "id")
    ) if emails else {}
    # A person erased at their request, with no lead since: their tracking is not kept (nothing waits for them).
    erased = erased_emails(tenant=tenant, emails=emails - set(leads_by_email)) if emails else set()

    results: list[SignalItemResult] = []
    to_store: list[tuple[SignalInput, Signal]] = []
    first_of_external_id: dict[str, int] = {}
    repeated_in_batch: list[tuple[int, str]] = []
    now = timezone.now()
    for item in items:
        if item.type not in known_types:
            results.append(_error(item.index, "type", f"Unknown signal type '{item.type}'."))
            continue
        if item.lead_id is not None and item.lead_id not in leads_by_id:
            results.append(_error(item.index, "lead_id", "No lead with this id."))
            continue
        if item.lead_id is None and item.email in erased:
            results.append(_error(item.index, "email", ERASED_SIGNAL_MESSAGE))
            continue
        if item.external_id:
            if item.external_id in first_of_external_id:
                repeated_in_batch.append((item.index, item.external_id))
                continue
            first_of_external_id[item.external_id] = item.index
        lead_id = item.lead_id or leads_by_email.get(item.email)
        to_store.append((item, Signal(
            tenant=tenant, lead_id=lead_id, email=item.email, type=item.type, occurred_at=item.occurred_at,
            external_id=item.external_id, properties=item.properties, api_key=api_key, received_at=now,
        )))

    unkeyed = [signal for item, signal in to_store if not item.external_id]
    Signal.objects.bulk_create(unkeyed)
    inserted_ids = _insert_ignoring_duplicates([signal for item, signal in to_store if item.external_id])

    stored: list[Signal] = []
    duplicate_keys: list[tuple[int, str]] = list(repeated_in_batch)
    for item, signal in to_store:
        if item.external_id:
            if item.external_id not in inserted_ids:
                duplicate_keys.append((item.index, item.external_id))
                continue
            signal.pk = inserted_ids[item.external_id]
        stored.append(signal)
        status = SignalStatus.ACCEPTED if signal.lead_id else SignalStatus.PENDING
        results.append(SignalItemResult(index=item.index, status=status, id=signal.pk))

    if duplicate_keys:
        existing = dict(
            Signal.objects.for_tenant(tenant)
            .filter(external_id__in={key for _i, key in duplicate_keys})
            .values_list("external_id", "id")
        )
        results.extend(
            SignalItemResult(index=index, status=SignalStatus.DUPLICATE, id=existing.get(key))
            for index, key in duplicate_keys
        )

    audit_bulk(events=[_received_event(tenant=tenant, actor=actor, signal=signal) for signal in stored])
    signals_enqueue_processing(tenant_id=tenant.pk, signal_ids=[s.pk for s in stored if s.lead_id])
    return SignalBatchResult(results=results)


def _insert_ignoring_duplicates(signals: list[Signal]) -> dict[str, int]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING: `{external_id: id}` of the rows actually written.

    Django's `bulk_create(ignore_conflicts=True)` cannot tell which rows were written, and a
    check-then-insert would race with a concurrent retry of the same batch.
    """
    if not signals:
        return {}
    meta = Signal._meta
    names = ["tenant", "lead", "email", "type", "occurred_at", "external_id", "properties", "api_key", "received_at"]
    fields = [meta.get_field(name) for name in names]
    qn = connection.ops.quote_name
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params: list[Any] = []
    for signal in signals:
        params.extend(f.get_db_prep_save(getattr(signal, f.attname), connection) for f in fields)
    external_id = qn(meta.get_field("external_id").column)
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
        f"VALUES {', '.join([row] * len(signals))} "
        # Targets the partial unique index `signal_unique_external_id_per_tenant`.
        f"ON CONFLICT ({qn(meta.get_field('tenant').column)}, {external_id}) WHERE NOT ({external_id} = '') "
        f"DO NOTHING RETURNING {qn(meta.pk.column)}, {external_id}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {key: pk for pk, key in cursor.fetchall()}


def _received_event(*, tenant, actor: Actor, signal: Signal) -> AuditEvent:
    return AuditEvent(
        tenant=tenant, actor_kind=actor.kind, actor_name=actor.name[:200], actor_user=actor.user,
        actor_api_key=actor.api_key, action="signal.received", object_type="leads.signal",
        object_id=str(signal.pk),
        metadata={
            "type": signal.type, "lead_id": str(signal.lead_id) if signal.lead_id else None,
            "email": signal.email, "external_id": signal.external_id,
            "occurred_at": signal.occurred_at.isoformat(),
        },
    )


def signals_enqueue_processing(*, tenant_id: int, signal_ids: Iterable[int]) -> None:
    """After the current transaction commits, process these signals in a worker (chunked)."""
    ids = sorted(set(signal_ids))
    if not ids:
        return
    from leads.tasks import signals_process_task  # tasks import services, not the other way round

    for start in range(0, len(ids), PROCESS_CHUNK):
        chunk = ids[start:start + PROCESS_CHUNK]
        transaction.on_commit(
            lambda chunk=chunk: signals_process_task.delay(tenant_id=tenant_id, signal_ids=chunk)
        )


@transaction.atomic
def signals_attach_pending(*, tenant, emails: Iterable[str] | None = None, actor: Actor = SIGNAL_AGENT) -> list[int]:
    """Attach pending signals (no lead yet) to the tenant's leads with the same email; then process them.

    Capture calls this for the email of a new lead; the sweep calls it for every email, which
    catches a signal stored while its lead was being created. Returns the attached signal ids.
    """
    pending = Signal.objects.for_tenant(tenant).filter(lead__isnull=True).exclude(email="")
    if emails is not None:
        pending = pending.filter(email__in=[e.strip().lower() for e in emails if e])
    matching_lead = Lead.objects.for_tenant(tenant).filter(email=OuterRef("email"))
    pending = pending.filter(Exists(matching_lead))
    rows = list(pending.select_for_update(skip_locked=True).order_by("id").values_list("id", "email"))
    if not rows:
        return []
    ids = [pk for pk, _email in rows]
    Signal.objects.for_tenant(tenant).filter(id__in=ids, lead__isnull=True).update(
        lead_id=Subquery(matching_lead.values("id")[:1])
    )
    attached = defaultdict(list)
    for pk, lead_id in Signal.objects.for_tenant(tenant).filter(id__in=ids).values_list("id", "lead_id"):
        attached[lead_id].append(pk)
    audit_bulk(events=[
        AuditEvent(
            tenant=tenant, actor_kind=actor.kind, actor_name=actor.name[:200], actor_user=actor.user,
            actor_api_key=actor.api_key, action="lead.signals_attached", object_type="leads.lead",
            object_id=str(lead_id), metadata={"signal_ids": signal_ids},
        )
        for lead_id, signal_ids in attached.items()
    ])
    signals_enqueue_processing(tenant_id=tenant.pk, signal_ids=ids)
    return ids


def signals_process(*, tenant, signal_ids: Iterable[int], actor: Actor = SIGNAL_AGENT) -> SignalProcessingResult:
    """Process stored signals of known leads: mark them processed, move `last_activity_at`, audit.

    This is the extension point for everything a signal triggers: it sends `signals_processed`, on
    which scoring re-scores the leads (a band change then re-runs routing and nurture exit).

    Re-runnable: only unprocessed rows are taken, locked with SKIP LOCKED so two workers never
    process one signal twice, and `last_activity_at` only ever moves forward.
    """
    with transaction.atomic():
        rows = list(
            Signal.objects.for_tenant(tenant)
            .select_for_update(skip_locked=True)
            .filter(id__in=list(signal_ids), processed_at__isnull=True, lead__isnull=False)
            .order_by("id")
            .values_list("id", "lead_id", "occurred_at", "type")
        )
        if not rows:
            return SignalProcessingResult(signal_ids=[], lead_ids=[])
        now = timezone.now()
        by_lead: dict[uuid.UUID, list[tuple[int, dt.datetime, str]]] = defaultdict(list)
        for pk, lead_id, occurred_at, type_ in rows:
            by_lead[lead_id].append((pk, occurred_at, type_))
        # A signal may be stamped a little in the future (clock skew); activity never is.
        latest = {lead_id: min(max(o for _pk, o, _t in signals), now) for lead_id, signals in by_lead.items()}
        before = dict(Lead.objects.for_tenant(tenant).filter(id__in=latest).values_list("id", "last_activity_at"))
        changed = {lead_id: ts for lead_id, ts in latest.items() if lead_id in before and (before[lead_id] is None or before[lead_id] < ts)}
        if changed:
            new_value = Case(*[When(id=lead_id, then=Value(ts)) for lead_id, ts in changed.items()],
                             output_field=DateTimeField())
            Lead.objects.for_tenant(tenant).filter(id__in=changed).update(
                last_activity_at=Greatest(Coalesce(F("last_activity_at"), new_value), new_value), updated_at=now,
            )
        processed_ids = [pk for pk, *_rest in rows]
        Signal.objects.for_tenant(tenant).filter(id__in=processed_ids, processed_at__isnull=True).update(processed_at=now)
        audit_bulk(events=[
            AuditEvent(
                tenant=tenant, actor_kind=actor.kind, actor_name=actor.name[:200], actor_user=actor.user,
                actor_api_key=actor.api_key, action="lead.signals_processed", object_type="leads.lead",
                object_id=str(lead_id),
                changes=({"last_activity_at": [_iso(before.get(lead_id)), _iso(changed[lead_id])]}
                         if lead_id in changed else {}),
                metadata={"signal_ids": [pk for pk, _o, _t in signals],
                          "types": sorted({t for _pk, _o, t in signals})},
            )
            for lead_id, signals in by_lead.items() if lead_id in before
        ])
        # Subscribers act in the same transaction: the Scoring Agent re-scores here, so a signal is never
        # marked processed without its lead's score reflecting it (a crash rolls both back; the sweep retries).
        signals_processed.send(sender=Signal, tenant=tenant, lead_ids=list(by_lead))
        return SignalProcessingResult(signal_ids=processed_ids, lead_ids=list(by_lead))


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
