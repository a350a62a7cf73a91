"""Writing the audit trail: called inside every service's transaction."""
from __future__ import annotations

import datetime as dt
import decimal
import functools
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import models
from django.utils import timezone

from leadmgmt.db.bulk import instance_builder, rows_insert, values_copy

from .actors import Actor
from .models import AuditEvent

_JSON_PLAIN = frozenset({str, int, bool, float, type(None)})


def _jsonable(value: Any) -> Any:
    if type(value) in _JSON_PLAIN:
        return value
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    return value


def snapshot(obj: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """Field values of `obj` (FKs as ids) in a JSON-safe form, for before/after diffs."""
    out = {}
    for name in fields:
        field = obj._meta.get_field(name)
        attname = getattr(field, "attname", name)
        out[name] = _jsonable(getattr(obj, attname))
    return out


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """`{field: [before, after]}` for the fields whose value changed."""
    return {k: [before.get(k), after[k]] for k in after if before.get(k) != after[k]}


def audit_record(
    *,
    tenant,
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    changes: dict[str, list[Any]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record one audit event. Call it inside the transaction of the write it describes."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = obj.pk
    return AuditEvent.objects.create(
        tenant=tenant,
        actor_kind=actor.kind,
        actor_name=actor.name[:200],
        actor_user=actor.user,
        actor_api_key=actor.api_key,
        action=action,
        object_type=object_type or "",
        object_id=str(object_id) if object_id is not None else "",
        changes={k: [_jsonable(v) for v in pair] for k, pair in (changes or {}).items()},
        metadata={k: _jsonable(v) for k, v in (metadata or {}).items()},
    )


def audit_bulk(*, events: list[AuditEvent]) -> None:
    """Insert many prepared events in one statement (batch writes)."""
    rows_insert(events)


@functools.cache
def _event_new() -> Callable[..., AuditEvent]:
    """`AuditEvent(**values)` for the batches that build thousands (the capture pipeline's assignments)."""
    return instance_builder(AuditEvent)


def audit_event_build(
    *,
    tenant,
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    changes: dict[str, list[Any]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> AuditEvent:
    """The event `audit_record` writes, unsaved: a write that records several events (a capture: the
    account and the lead) builds them with this and inserts them together with `audit_bulk`."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = obj.pk
    return _event_new()(
        tenant=tenant,
        actor_kind=actor.kind,
        actor_name=actor.name[:200],
        actor_user=actor.user,
        actor_api_key=actor.api_key,
        action=action,
        object_type=object_type or "",
        object_id=str(object_id) if object_id is not None else "",
        changes={k: [_jsonable(v) for v in pair] for k, pair in (changes or {}).items()},
        metadata={k: _jsonable(v) for k, v in (metadata or {}).items()},
    )


_COPY_COLUMNS = ("tenant_id", "at", "actor_kind", "actor_name", "actor_user_id", "actor_api_key_id", "action",
                 "object_type", "object_id", "changes", "metadata")


def audit_events_copy(*, tenant_id: int, actor: Actor,
                      events: Sequence[tuple[str, str, Any, dict[str, list[Any]], dict[str, Any]]],
                      at: dt.datetime | None = None) -> None:
    """Many events of one actor through COPY, with no instance per event (an import's tens of thousands): each
    (action, object_type, object_id, changes, metadata) stored as `audit_event_build` would store it."""
    at = at or timezone.now()
    name = actor.name[:200]
    user_id = actor.user.pk if actor.user is not None else None
    api_key_id = actor.api_key.pk if actor.api_key is not None else None
    values_copy(AuditEvent, _COPY_COLUMNS, [
        (tenant_id, at, actor.kind, name, user_id, api_key_id, action, object_type,
         str(object_id) if object_id is not None else "",
         {k: [v if type(v) in _JSON_PLAIN else _jsonable(v) for v in pair] for k, pair in changes.items()},
         {k: v if type(v) in _JSON_PLAIN else _jsonable(v) for k, v in metadata.items()})
        for action, object_type, object_id, changes, metadata in events])
