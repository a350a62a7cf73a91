"""Capturing a lead: match a validated submission (email, phone, company domain) to create a Lead
or merge a duplicate Touch into the existing one, in one transaction with its audit events; then the
`lead_captured` event (scoring re-scores a merge, the workspace scores and routes a new lead).

A capture is a handful of statements, each one round trip (the tenant setting travels with the first,
leadmgmt/db/backend): BEGIN; the Account (one upsert); the Lead INSERT … ON CONFLICT DO NOTHING, which is
the whole match for a new email — a taken email then locks the existing lead and fills its blanks (two
more); the Touch, attaching the signals that came before the lead and writing the audit events (one
statement); COMMIT. No savepoints: a unique index already holding the row is answered by
ON CONFLICT, not by an IntegrityError that would abort the transaction.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.db.models import Q, Subquery
from django.db.models.constants import OnConflict
from django.db.models.expressions import BaseExpression, Combinable, DatabaseDefault
from django.db.models.sql import InsertQuery
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.audit.services import audit_event_build
from leadmgmt.tenancy.models import Tenant
from leads.capture_input import CaptureInput, capture_input_validate
from leads.events import lead_captured
from leads.locks import lead_lock_by_contact
from leads.models import Account, Lead, LeadForm, Signal, Touch, TouchKind


@dataclass(frozen=True)
class CaptureResult:
    lead: Lead
    result: str  # "created" | "merged"
    touch: Touch
    possible_duplicate_of: Lead | None = None


# --- Matching and writing --------------------------------------------------------------------

def _blank(value) -> bool:
    return value in (None, "", False, {}, [])


# INSERT statements by shape (model, primary key given, which fields take their database default, RETURNING,
# ON CONFLICT): built once per process, so each insert only prepares its values (Django's compiler costs several
# times that for a lead's sixty columns).
_INSERTS: dict[tuple, str] = {}
_EXPRESSIONS = (BaseExpression, Combinable, Q)  # values the database computes (what has `resolve_expression`)


def _insert_sql(obj: models.Model, *, returning: Sequence[models.Field], unless_taken: bool = False) -> tuple[str, tuple]:
    """The INSERT that `obj.save()` would run (Django's defaults, `auto_now` and value adapters), returning
    `returning`; `unless_taken`: ON CONFLICT DO NOTHING, so a row a unique index already holds inserts nothing
    and returns no row instead of raising. A value that is a query (a subquery) is compiled by Django each time."""
    conn = connections[DEFAULT_DB_ALIAS]
    meta = obj._meta
    pk_given = obj.pk is not None
    fields = [f for f in meta.local_concrete_fields if not f.generated and (pk_given or f is not meta.auto_field)]
    values = [field.pre_save(obj, True) for field in fields]
    defaults = tuple(isinstance(value, DatabaseDefault) for value in values)
    if any(isinstance(value, _EXPRESSIONS) for value, default in zip(values, defaults, strict=True) if not default):
        query = InsertQuery(type(obj), on_conflict=OnConflict.IGNORE if unless_taken else None)
        query.insert_values(fields, [obj])
        compiler = query.get_compiler(using=DEFAULT_DB_ALIAS)
        compiler.returning_fields = list(returning)
        [(sql, params)] = compiler.as_sql()
        return sql, params
    shape = (type(obj), pk_given, defaults, tuple(returning), unless_taken)
    sql = _INSERTS.get(shape)
    if sql is None:
        qn = conn.ops.quote_name
        placeholders = ", ".join("DEFAULT" if default else "%s" for default in defaults)
        sql = (f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) VALUES ({placeholders})"
               + (" ON CONFLICT DO NOTHING" if unless_taken else "")
               + (f" {conn.ops.return_insert_columns(returning)[0]}" if returning else ""))
        _INSERTS[shape] = sql
    params = tuple(field.get_db_prep_save(value, connection=conn)
                   for field, value, default in zip(fields, values, defaults, strict=True) if not default)
    return sql, params


def _saved(obj: models.Model, fields: Sequence[models.Field], row: Sequence[Any]) -> None:
    """Mark `obj` as a stored row, with the values the INSERT returned (ids, database defaults)."""
    for field, value in zip(fields, row, strict=True):
        setattr(obj, field.attname, value)
    obj._state.adding = False
    obj._state.db = connection.alias


def _account_get_or_create(*, tenant: Tenant, domain: str, name: str, actor: Actor,
                           events: list[AuditEvent]) -> Account:
    """The tenant's Account for a domain, created with its first lead: one statement that inserts it unless
    the domain is taken and otherwise reads the existing row. Race-safe without a savepoint: a concurrent
    first capture of the domain makes the INSERT wait and then do nothing. (An existing domain still draws
    an id from the sequence; the gaps are harmless.)"""
    account = Account(tenant=tenant, domain=domain, name=name[:200])
    fields = Account._meta.concrete_fields
    insert, params = _insert_sql(account, returning=fields, unless_taken=True)
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    sql = (f"WITH inserted AS ({insert}) SELECT true, {columns} FROM inserted UNION ALL "  # noqa: S608 - names from model meta
           f"SELECT false, {columns} FROM {qn(Account._meta.db_table)} "
           "WHERE tenant_id = %s AND domain = %s AND NOT EXISTS (SELECT FROM inserted)")
    with connection.cursor() as cursor:
        cursor.execute(sql, (*params, tenant.pk, domain))
        row = cursor.fetchone()
    if row is None:
        # The concurrent capture committed while the INSERT waited: its row is newer than this
        # statement's snapshot, and visible to the next one.
        return Account.objects.for_tenant(tenant).get(domain=domain)
    created = row[0]
    _saved(account, fields, row[1:])
    if created:
        events.append(audit_event_build(tenant=tenant, actor=actor, action="account.created", obj=account,
                                        changes={"domain": [None, domain], "name": [None, account.name]}))
    elif not account.name and name:
        account.name = name[:200]
        account.save(update_fields=["name", "updated_at"])
        events.append(audit_event_build(tenant=tenant, actor=actor, action="account.updated", obj=account,
                                        changes={"name": ["", account.name]}))
    return account


def _phone_lock(*, tenant: Tenant, phone: str) -> None:
    """Serialise phone-only captures of one number (there is no unique index on phone)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, %s))", [phone, tenant.pk])


def _lead_insert(lead: Lead) -> bool:
    """INSERT the new lead unless its email is taken (False then, and nothing was written)."""
    meta = Lead._meta
    returning = [meta.pk, meta.get_field("possible_duplicate_of"), *meta.db_returning_fields]
    sql, params = _insert_sql(lead, returning=returning, unless_taken=True)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    _saved(lead, returning, row)
    return True


_AUDIT_FIELDS = [f for f in AuditEvent._meta.local_concrete_fields
                 if f is not AuditEvent._meta.auto_field and not f.generated]
_AUDIT_METADATA = next(i for i, f in enumerate(_AUDIT_FIELDS) if f.name == "metadata")
# The capture's own audit event learns the Touch's id and the attached signals in the statement that writes them.
_TOUCH_METADATA = ("(%s::jsonb || jsonb_build_object('touch_id', (SELECT id FROM touch)) || (SELECT CASE WHEN "
                   "count(*) > 0 THEN jsonb_build_object('attached_signal_ids', jsonb_agg(id ORDER BY id)) "
                   "ELSE '{}'::jsonb END FROM attached))")


def _audit_rows(events: Sequence[AuditEvent], *, last_of_touch: bool) -> tuple[str, list]:
    """VALUES rows of these audit events; the last one's metadata gets the touch's id and attached signals."""
    rows, params = [], []
    for n, event in enumerate(events):
        values = [field.get_db_prep_save(field.pre_save(event, True), connection=connection) for field in _AUDIT_FIELDS]
        placeholders = ["%s"] * len(values)
        if last_of_touch and n == len(events) - 1:
            placeholders[_AUDIT_METADATA] = _TOUCH_METADATA
        rows.append(f"({', '.join(placeholders)})")
        params += values
    return ", ".join(rows), params


def _touch_create(*, touch: Touch, attach_email: str, events: Sequence[AuditEvent]) -> list[int]:
    """Insert the Touch, attach (for a lead with an email) the signals that arrived for that email before the
    lead existed, and write the capture's audit events, the last of which records the Touch and the attached
    signals: one statement. Returns the attached signals' ids (their processing is for after commit;
    `last_activity_at` is already the capture time, later than any of them)."""
    pk = Touch._meta.pk
    qn = connection.ops.quote_name
    insert, touch_params = _insert_sql(touch, returning=[pk])
    attach, attach_params = "SELECT NULL::bigint AS id WHERE false", []
    if attach_email:
        attach = (f"UPDATE {qn(Signal._meta.db_table)} SET lead_id = %s "  # noqa: S608 - table name from model meta
                  "WHERE tenant_id = %s AND lead_id IS NULL AND email = %s RETURNING id")
        attach_params = [touch.lead_id, touch.tenant_id, attach_email]
    rows, audit_params = _audit_rows(events, last_of_touch=True)
    columns = ", ".join(qn(f.column) for f in _AUDIT_FIELDS)
    sql = (f"WITH attached AS ({attach}), touch AS ({insert}), "
           f"audit AS (INSERT INTO {qn(AuditEvent._meta.db_table)} ({columns}) VALUES {rows}) "  # noqa: S608
           "SELECT touch.id, ARRAY(SELECT id FROM attached ORDER BY id) FROM touch")
    with connection.cursor() as cursor:
        cursor.execute(sql, (*attach_params, *touch_params, *audit_params))
        row = cursor.fetchone()
    _saved(touch, [pk], row[:1])
    attached = list(row[1])
    metadata = events[-1].metadata
    metadata["touch_id"] = touch.pk
    if attached:
        metadata["attached_signal_ids"] = attached
    return attached


def _signals_enqueue(*, tenant: Tenant, signal_ids: list[int]) -> None:
    # leads.tasks imports the services, so this import cannot sit at the top of the module.
    from leads.tasks import signals_process_task

    transaction.on_commit(lambda: signals_process_task.delay(tenant_id=tenant.pk, signal_ids=signal_ids))


def _lead_merge(*, lead: Lead, capture: CaptureInput, account: Account | None, now) -> dict[str, list]:
    """Fill blanks only: never overwrite a non-blank value or a field a person edited."""
    edited = set(lead.edited_fields or [])
    changes: dict[str, list] = {}
    for name, value in capture.values.items():
        if name in edited or name in ("consent_at", "consent_source") or not _blank(getattr(lead, name)):
            continue
        changes[name] = [getattr(lead, name), value]
        setattr(lead, name, value)
    if "marketing_consent" in changes:
        for name in ("consent_at", "consent_source"):
            if name not in edited:
                changes[name] = [getattr(lead, name), capture.values[name]]
                setattr(lead, name, capture.values[name])
    if account is not None and lead.account_id is None and "account" not in edited:
        changes["account"] = [None, account.pk]
        lead.account = account
    new_attributes = {k: v for k, v in capture.attributes.items() if k not in (lead.attributes or {})}
    if new_attributes:
        merged = {**(lead.attributes or {}), **new_attributes}
        if len(json.dumps(merged, ensure_ascii=False).encode()) <= settings.INTAKE_MAX_ATTRIBUTES_BYTES:
            changes.update({f"attributes.{k}": [None, v] for k, v in new_attributes.items()})
            lead.attributes = merged
    lead.last_activity_at = max(filter(None, [lead.last_activity_at, now]))
    update_fields = {name.split(".")[0] for name in changes} | {"last_activity_at", "updated_at"}
    lead.save(update_fields=sorted(update_fields))
    return changes


def _lead_values(capture: CaptureInput, *, form: LeadForm | None, source: str | None, now) -> dict[str, Any]:
    values = dict(capture.values)
    values["source"] = source or values.get("source") or (form.default_source if form else "") or "web_form"
    if values.get("marketing_consent"):
        where = f"Form {form.name}" if form else values["source"]
        values["consent_at"] = now
        values["consent_source"] = (f"{where} ({capture.page_url})" if capture.page_url else where)[:200]
    return values


def _with_account(lead: Lead, account: Account | None) -> Lead:
    """A matched lead (locked without its related rows) holding the capture's Account when it is its own."""
    if account is not None and lead.account_id == account.pk:
        lead.account = account
    return lead


def _lead_match_or_create(
    *, tenant: Tenant, capture: CaptureInput, account: Account | None, form: LeadForm | None, now
) -> tuple[Lead, bool, str, Lead | None]:
    """(lead, created, matched_on, possible_duplicate_of): a new lead, inserted unless its email is taken;
    else the lead with this email (or, with no email, this phone), locked. Two concurrent inserts of one
    email meet at the unique index: the second waits for the first to commit, inserts nothing, and merges
    into the winner's lead."""
    phone = capture.values.get("phone", "")
    if not capture.email:
        _phone_lock(tenant=tenant, phone=phone)
        lead = lead_lock_by_contact(tenant=tenant, phone=phone)
        if lead is not None:
            return _with_account(lead, account), False, "phone", None
    # The oldest other lead with this phone, looked up by the INSERT itself (a subquery): no statement of its own.
    possible_duplicate = None
    if phone and capture.email:
        others = Lead.objects.for_tenant(tenant).filter(phone=phone).exclude(email=capture.email)
        possible_duplicate = Subquery(others.order_by("created_at").values("pk")[:1])
    lead = Lead(
        tenant=tenant, email=capture.email, account=account, form=form,
        is_personal_email=capture.is_personal_email, attributes=capture.attributes,
        possible_duplicate_of_id=possible_duplicate, last_activity_at=now, created_at=now,
        pipeline_pending_since=now, **capture.values,
    )
    for _attempt in range(2):
        if _lead_insert(lead):
            duplicate_of = None
            if lead.possible_duplicate_of_id is not None:  # rare: the one case that reads the other lead
                duplicate_of = Lead.objects.for_tenant(tenant).get(pk=lead.possible_duplicate_of_id)
                lead.possible_duplicate_of = duplicate_of
            return lead, True, "email" if capture.email else "phone", duplicate_of
        if not capture.email:
            break
        winner = lead_lock_by_contact(tenant=tenant, email=capture.email)
        if winner is not None:
            return _with_account(winner, account), False, "email", None
        # The lead that held the email was deleted between the two statements: insert again.
    raise IntegrityError(f"The new lead ({capture.email or phone}) could neither be inserted nor matched.")


def lead_capture(
    *,
    tenant: Tenant,
    data: dict,
    actor: Actor,
    form: LeadForm | None = None,
    source: str | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> CaptureResult:
    """Create a lead from a submission, or merge it into the lead with the same email (or, when
    no email was given, the same phone), logging a Touch with the raw payload either way.

    Inside a caller's transaction it opens no savepoint of its own: a caller that must survive a failed
    capture (a batch) wraps each call in its own `transaction.atomic()`."""
    capture = capture_input_validate(data=data)
    now = timezone.now()
    capture.values = _lead_values(capture, form=form, source=source, now=now)
    with transaction.atomic(savepoint=False):
        events: list[AuditEvent] = []  # written together with the touch, in one statement, at the end
        account = None
        if capture.company_domain:
            account = _account_get_or_create(
                tenant=tenant, domain=capture.company_domain, name=capture.values.get("company", ""), actor=actor,
                events=events,
            )
        lead, created, matched_on, possible_duplicate = _lead_match_or_create(
            tenant=tenant, capture=capture, account=account, form=form, now=now
        )
        changes = {} if created else _lead_merge(lead=lead, capture=capture, account=account, now=now)

        touch = Touch(
            tenant=tenant, lead=lead, kind=TouchKind.CREATED if created else TouchKind.DUPLICATE,
            form=form, source=capture.values["source"], payload=capture.payload,
            filled_fields=sorted(capture.values) if created else sorted(changes),
            ip_address=ip_address, user_agent=(user_agent or "")[:500], received_at=now,
        )
        # touch_id and attached_signal_ids are added by the statement that writes the touch (_touch_create)
        metadata = {"form": form.name if form else None, "source": touch.source}
        if created:
            initial = {"email": capture.email, **capture.values, "account": account,
                       "is_personal_email": capture.is_personal_email, "attributes": capture.attributes or None}
            events.append(audit_event_build(tenant=tenant, actor=actor, action="lead.created", obj=lead,
                                            changes={k: [None, v] for k, v in initial.items() if not _blank(v)},
                                            metadata={**metadata, "possible_duplicate_of": possible_duplicate}))
        else:
            events.append(audit_event_build(tenant=tenant, actor=actor, action="lead.merged", obj=lead,
                                            changes=changes, metadata={**metadata, "matched_on": matched_on}))
        attached = _touch_create(touch=touch, attach_email=lead.email, events=events)
        if attached:
            _signals_enqueue(tenant=tenant, signal_ids=attached)
        lead_captured.send(sender=Lead, tenant=tenant, lead=lead, created=created,
                           changed_fields=frozenset(name.split(".")[0] for name in changes))
    return CaptureResult(lead=lead, result="created" if created else "merged", touch=touch,
                         possible_duplicate_of=possible_duplicate)
