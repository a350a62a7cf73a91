"""Every row lock on a lead, in one place (Saleor's `order/lock_objects.py`), and the one refusal of a stale action.

The lock order. A transaction takes the rows it locks in this order, so two writers can only wait for each
other, never deadlock:

1. Lead rows, through this module only: one (`lead_lock`, `lead_lock_refresh`, capture's `lead_lock_by_contact`),
   or several of one tenant at once in ascending id (`leads_lock`; `leads_lock_rows` to hold them unread).
2. Then the rows that hang off a lead or its owner: its SLA clock (`routing.services.sla_clocks`,
   `routing.services.sla_enforcement`), the round-robin slots of one pool in user-id order (`routing.locks`),
   its enrolments (`nurture.services.enrollment`).

A writer holding a row of step 2 never asks for a lead row. A sweep that must not wait (SLA enforcement) locks
with `skip_locked=True` and leaves a busy lead to its next run. The exception: set-based statements that UPDATE
many leads at once (the aging flags, `signals_process`) lock those rows in the order PostgreSQL scans them, not
by id. They hold no row a lead writer waits for (signals are taken with SKIP LOCKED), so the worst case against
`leads_lock` is a deadlock that PostgreSQL detects and ends (the sweep runs again), never a hang. Rows no lead
writer locks (memberships, invitations, scoring models, sequences) are outside this order.

A caller that passes what it saw (`expected_owner_id`, `expected_updated_at`) is refused with `StaleLead`, a
ValidationError on the field it named, carrying the one `STALE` message.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Model, QuerySet

from .models import Lead


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


# "Not given": the default of `expected_owner_id` here and in every service that passes it on (None is an owner:
# the Unassigned queue).
UNSET: Any = _Unset()

# The one refusal of an action on a lead that changed since the caller saw it; `{change}` is what changed.
STALE = "This lead was {change} meanwhile; reload it and try again."
_STALE_CHANGES = {"owner": "reassigned", "updated_at": "changed"}


class StaleLead(ValidationError):
    """The lead changed since the caller saw it: {field: [STALE]}, `field` being "owner" (the owner it saw is
    gone) or "updated_at" (the version it saw is)."""

    def __init__(self, field: str):
        self.field = field
        message = STALE.format(change=_STALE_CHANGES[field])
        super().__init__({field: [ValidationError(message, code="stale")]})

    def __reduce__(self):
        return StaleLead, (self.field,)


def _locking(tenant, *, skip_locked: bool = False, nowait: bool = False) -> QuerySet[Lead]:
    # `of=("self",)`: the lead row only, not the tenant, owner or account rows joined in for the callers.
    return (Lead.objects.for_tenant(tenant).select_for_update(of=("self",), skip_locked=skip_locked, nowait=nowait)
            .select_related("tenant", "owner", "account"))


def _owner_id(value) -> int | None:
    return int(value) if value not in (None, "") else None


def _refuse_stale(lead: Lead, *, expected_owner_id, expected_updated_at) -> None:
    if expected_owner_id is not UNSET and lead.owner_id != _owner_id(expected_owner_id):
        raise StaleLead("owner")
    if expected_updated_at is not None and lead.updated_at != expected_updated_at:
        raise StaleLead("updated_at")


def lead_lock(*, tenant, lead_id, expected_owner_id=UNSET, expected_updated_at=None, skip_locked: bool = False,
              nowait: bool = False) -> Lead | None:
    """The lead of `tenant` (an instance or an id), its row locked until the transaction ends, with its tenant,
    owner and account; raises Lead.DoesNotExist.

    `expected_owner_id` (None: unassigned) and `expected_updated_at` are what the caller saw: StaleLead when the
    lead has changed since. `skip_locked`: None instead of waiting when another transaction holds the row (or it
    is gone); `nowait`: a DatabaseError instead of waiting.
    """
    queryset = _locking(tenant, skip_locked=skip_locked, nowait=nowait).filter(pk=lead_id)
    lead = queryset.first() if skip_locked else queryset.get()
    if lead is not None:
        _refuse_stale(lead, expected_owner_id=expected_owner_id, expected_updated_at=expected_updated_at)
    return lead


def lead_lock_refresh(*, lead: Lead, expected_owner_id=UNSET, expected_updated_at=None) -> Lead:
    """`lead_lock` for a caller that shares its Lead instance with others (routing's steps, the lifecycle
    services): the row is locked and `lead` itself refreshed from it, so every holder sees the current owner."""
    queryset = _locking(lead.tenant_id)
    if lead.get_deferred_fields():  # refresh_from_db loads only the loaded fields; nothing to join then
        queryset = queryset.select_related(None)
    lead.refresh_from_db(from_queryset=queryset)
    _refuse_stale(lead, expected_owner_id=expected_owner_id, expected_updated_at=expected_updated_at)
    return lead


def leads_lock(*, tenant, lead_ids: Iterable) -> list[Lead]:
    """The leads of `tenant` with these ids (those that exist), locked in ascending id: step 1 of the lock order
    for several leads at once (bulk reassignment, re-scoring). Without their related rows: these callers
    refresh each lead they work on, or only need the rows held."""
    ids = sorted({str(i) for i in lead_ids})
    return list(_locking(tenant).select_related(None).filter(pk__in=ids).order_by("id"))


_LOCK_ROWS_SQL = (f"SELECT id FROM {Lead._meta.db_table} WHERE tenant_id = %s AND id = ANY(%s::uuid[]) "  # noqa: S608
                  "ORDER BY id FOR UPDATE")


def leads_lock_rows(*, tenant, lead_ids: Iterable) -> None:
    """`leads_lock` for a caller that only needs the rows held (the scoring statement that follows reads them
    itself): the same locks in the same order, no Lead built from each row."""
    ids = sorted({str(i) for i in lead_ids})
    if not ids:
        return
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_ROWS_SQL, [tenant_id, ids])


# Capture's match runs for every duplicate submission, and compiling the ORM query of a lead costs several times
# its round trip: `_locking`'s SQL is compiled once per process and column, and each call binds its values.
_BY_CONTACT: dict[str, tuple[str, list[str], dict]] = {}


def _by_contact_query(column: str) -> tuple[str, list[str], dict]:
    """(SQL taking the tenant and the value, the selected attnames, the ORM's converters by position)."""
    query = _BY_CONTACT.get(column)
    if query is None:
        ordering = ("created_at", "id") if column == "phone" else ()  # an email matches one lead at most
        queryset = _locking(0).select_related(None).filter(**{column: ""}).order_by(*ordering)[:1]
        compiler = queryset.query.get_compiler(using=DEFAULT_DB_ALIAS)
        sql, params = compiler.as_sql()
        columns = [expression for expression, _sql, _alias in compiler.select]
        attnames = [expression.target.attname for expression in columns]
        if params != (0, "") or attnames != [field.attname for field in Lead._meta.concrete_fields]:
            raise RuntimeError(f"unexpected SQL for the lead by {column}: {sql} {params}")
        query = _BY_CONTACT[column] = (sql, attnames, compiler.get_converters(columns))
    return query


def lead_lock_by_contact(*, tenant, email: str = "", phone: str = "") -> Lead | None:
    """Capture's match, locked: the tenant's lead with this email (one at most), or, with no email given, the
    oldest with this phone; None when there is none. With its tenant (when given an instance) but not its owner
    or account, which capture does not read."""
    column, value = ("email", email) if email else ("phone", phone)
    sql, attnames, converters = _by_contact_query(column)
    with connection.cursor() as cursor:
        cursor.execute(sql, [getattr(tenant, "pk", tenant), value])
        row = cursor.fetchone()
    if row is None:
        return None
    row = list(row)
    for index, (functions, expression) in converters.items():
        for function in functions:
            row[index] = function(row[index], expression, connection)
    lead = Lead.from_db(DEFAULT_DB_ALIAS, attnames, row)
    if isinstance(tenant, Model):
        lead.tenant = tenant
    return lead
