"""Capturing a lead: match a validated submission (email, phone, company domain) to create a Lead
or merge a duplicate Touch into the existing one, in one transaction with its audit events; then the
`lead_captured` event (scoring re-scores a merge, the workspace scores and routes a new lead).

A new lead with an email is ONE statement, prepared once per connection (leadmgmt/db/prepared.py), its own
transaction in autocommit mode (`_lead_create_at_once`): the Account upsert, the Lead INSERT … ON CONFLICT DO
NOTHING, which is the whole match for a new email, the signals that came before the lead, the Touch and the
audit events. A taken email writes only the account's part there; the merge then runs in a transaction (each
statement one round trip, the tenant setting travelling with the first, leadmgmt/db/backend): BEGIN; the
existing lead locked; its blanks filled; the Touch with the signals and the audit events (one statement);
COMMIT. Phone-only captures take that transactional path from the start. No savepoints: a unique index
already holding the row is answered by ON CONFLICT, not by an IntegrityError that would abort the transaction.
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
from leadmgmt.db.prepared import execute_prepared
from leadmgmt.tenancy.models import Tenant
from leadmgmt.webhooks.models import WebhookEventType
from leadmgmt.webhooks.services.emit import webhook_emit, webhook_subscribed
from leads.capture_input import CaptureInput, capture_input_validate
from leads.events import lead_captured
from leads.locks import lead_lock_by_contact
from leads.models import Account, Lead, LeadForm, Signal, Touch, TouchKind
from leads.webhooks import lead_webhook_data


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


def _insert_sql(
    obj: models.Model, *, returning: Sequence[models.Field], unless_taken: bool = False,
    computed: dict[str, tuple[str, Sequence]] | None = None, where: str | None = None,
) -> tuple[str, list]:
    """The INSERT that `obj.save()` would run (Django's defaults, `auto_now` and value adapters), returning
    `returning`; `unless_taken`: ON CONFLICT DO NOTHING, so a row a unique index already holds inserts nothing
    and returns no row instead of raising. `computed` ({attname: (sql, params)}): columns whose value the
    statement computes (another CTE's id, a subquery); `where`: the row is inserted only when this holds
    (INSERT … SELECT … WHERE). A value that is a query expression is compiled by Django each time."""
    conn = connections[DEFAULT_DB_ALIAS]
    meta = obj._meta
    computed = computed or {}
    pk_given = obj.pk is not None
    fields = [f for f in meta.local_concrete_fields if not f.generated and (pk_given or f is not meta.auto_field)]
    values = [None if field.attname in computed else field.pre_save(obj, True) for field in fields]
    defaults = tuple(isinstance(value, DatabaseDefault) for value in values)
    if any(isinstance(value, _EXPRESSIONS) for value, default in zip(values, defaults, strict=True) if not default):
        if computed or where:
            raise ValueError("A query expression value cannot be combined with computed columns or a condition.")
        query = InsertQuery(type(obj), on_conflict=OnConflict.IGNORE if unless_taken else None)
        query.insert_values(fields, [obj])
        compiler = query.get_compiler(using=DEFAULT_DB_ALIAS)
        compiler.returning_fields = list(returning)
        [(sql, params)] = compiler.as_sql()
        return sql, list(params)
    shape = (type(obj), pk_given, defaults, tuple(returning), unless_taken,
             tuple((name, sql) for name, (sql, _params) in sorted(computed.items())), where)
    sql = _INSERTS.get(shape)
    if sql is None:
        qn = conn.ops.quote_name
        # INSERT … SELECT has no DEFAULT keyword: a column that takes its database default is left out instead.
        columns = [(f, d) for f, d in zip(fields, defaults, strict=True) if not (d and where)]
        placeholders = ", ".join(computed[f.attname][0] if f.attname in computed else "DEFAULT" if d else "%s"
                                 for f, d in columns)
        rows = f"SELECT {placeholders} WHERE {where}" if where else f"VALUES ({placeholders})"
        sql = (f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f, _d in columns)}) {rows}"
               + (" ON CONFLICT DO NOTHING" if unless_taken else "")
               + (f" {conn.ops.return_insert_columns(returning)[0]}" if returning else ""))
        _INSERTS[shape] = sql
    params: list = []
    for field, value, default in zip(fields, values, defaults, strict=True):
        if field.attname in computed:
            params += computed[field.attname][1]
        elif not default:
            params.append(field.get_db_prep_save(value, connection=conn))
    return sql, params


def _saved(obj: models.Model, fields: Sequence[models.Field], row: Sequence[Any]) -> None:
    """Mark `obj` as a stored row, with the values the INSERT returned (ids, database defaults)."""
    for field, value in zip(fields, row, strict=True):
        setattr(obj, field.attname, value)
    obj._state.adding = False
    obj._state.db = DEFAULT_DB_ALIAS


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


@dataclass
class _AtOnce:
    """What the one-statement capture wrote: `lead` None when the email is taken (or the account could not be
    read: see `_lead_create_at_once`); `account` None when there is no company domain or it could not be read."""
    lead: Lead | None
    account: Account | None
    touch: Touch | None = None
    attached: tuple[int, ...] = ()


# Read off the connection once (Django's cast_db_type costs more than the rest of the statement): the audit
# INSERT's head, and each field with its column's type.
_AUDIT_SQL: dict[str, tuple[str, tuple[tuple[models.Field, str], ...]]] = {}


def _audit_cte(rows: Sequence[tuple[AuditEvent, dict[str, tuple[str, Sequence]], str]]) -> tuple[str, list]:
    """One CTE writing audit events in their order, each only when its condition holds: rows of (event,
    {attname: (sql, params)} computed by the statement, condition). One INSERT … SELECT … UNION ALL …: its
    rows, and so their ids, come in the order given (each value cast to its column's type, which a UNION needs)."""
    conn = connections[DEFAULT_DB_ALIAS]
    known = _AUDIT_SQL.get(conn.vendor)
    if known is None:
        qn = conn.ops.quote_name
        known = _AUDIT_SQL[conn.vendor] = (
            f"INSERT INTO {qn(AuditEvent._meta.db_table)} ({', '.join(qn(f.column) for f in _AUDIT_FIELDS)})",  # noqa: S608
            tuple((field, field.cast_db_type(conn)) for field in _AUDIT_FIELDS))
    insert, casts = known
    selects, params = [], []
    for event, computed, where in rows:
        values = []
        for field, cast in casts:
            if field.attname in computed:
                sql, sql_params = computed[field.attname]
                values.append(f"({sql})::{cast}")
                params += sql_params
            else:
                values.append(f"%s::{cast}")
                params.append(field.get_db_prep_save(field.pre_save(event, True), connection=conn))
        selects.append(f"SELECT {', '.join(values)} WHERE {where}")
    return f"audit AS ({insert} {' UNION ALL '.join(selects)})", params


def _jsonb_param(field_name: str, value: dict):
    return AuditEvent._meta.get_field(field_name).get_db_prep_save(value, connection=connections[DEFAULT_DB_ALIAS])


def _lead_create_at_once(*, tenant: Tenant, capture: CaptureInput, form: LeadForm | None, actor: Actor, now,
                         ip_address: str | None, user_agent: str, metadata: dict[str, Any]) -> _AtOnce:
    """A new lead with an email in ONE statement (one round trip, its own transaction in autocommit mode): the
    Account upsert (and its audit event, or the name it lacked), the Lead INSERT … ON CONFLICT DO NOTHING with
    the account's id and the oldest other lead with its phone computed in place, the signals that came before
    it, its Touch and its `lead.created` event. Each write after the account's is conditional on the lead row,
    so a taken email writes the account's part only and returns `lead` None (the caller merges). So does a
    concurrent first capture of the same domain, whose account this statement's snapshot cannot see: the
    account is then None too, and the caller takes the transactional path, which reads it."""
    conn = connections[DEFAULT_DB_ALIAS]
    qn = conn.ops.quote_name
    domain, name = capture.company_domain, capture.values.get("company", "")[:200]
    ctes: list[str] = []
    params: list = []
    account = None
    lead_where = None
    lead_computed: dict[str, tuple[str, Sequence]] = {}
    audit_rows: list[tuple[AuditEvent, dict[str, tuple[str, Sequence]], str]] = []  # written last, in this order
    lead_changes_sql = "%s::jsonb"
    if domain:
        account = Account(tenant=tenant, domain=domain, name=name)
        account_fields = Account._meta.concrete_fields
        columns = ", ".join(qn(f.column) for f in account_fields)
        table = qn(Account._meta.db_table)
        insert, insert_params = _insert_sql(account, returning=account_fields, unless_taken=True)
        ctes += [f"acct_new AS ({insert})",
                 f"acct_old AS (SELECT {columns} FROM {table} WHERE tenant_id = %s AND domain = %s "  # noqa: S608
                 "AND NOT EXISTS (SELECT FROM acct_new))"]
        params += [*insert_params, tenant.pk, domain]
        if name:
            ctes.append(f"acct_named AS (UPDATE {table} SET name = %s, updated_at = %s "  # noqa: S608
                        "WHERE id = (SELECT id FROM acct_old WHERE name = '') RETURNING id)")
            params += [name, now]
        ctes.append(f"acct AS (SELECT true AS created, {columns} FROM acct_new "
                    f"UNION ALL SELECT false, {columns} FROM acct_old)")
        created = audit_event_build(tenant=tenant, actor=actor, action="account.created", object_type="leads.account",
                                    changes={"domain": [None, domain], "name": [None, name]})
        audit_rows.append((created, {"object_id": ("SELECT id::text FROM acct_new", [])}, "EXISTS (SELECT FROM acct_new)"))
        if name:
            named = audit_event_build(tenant=tenant, actor=actor, action="account.updated",
                                      object_type="leads.account", changes={"name": ["", name]})
            audit_rows.append((named, {"object_id": ("SELECT id::text FROM acct_named", [])},
                               "EXISTS (SELECT FROM acct_named)"))
        lead_where = "EXISTS (SELECT FROM acct)"
        lead_computed["account_id"] = ("(SELECT id FROM acct)", [])
        lead_changes_sql = ("(%s::jsonb || jsonb_build_object('account', "
                            "jsonb_build_array(NULL, (SELECT id::text FROM acct))))")
    phone = capture.values.get("phone", "")
    if phone:
        lead_computed["possible_duplicate_of_id"] = (
            f"(SELECT id FROM {qn(Lead._meta.db_table)} WHERE tenant_id = %s AND phone = %s AND email <> %s "  # noqa: S608
            "ORDER BY created_at LIMIT 1)", [tenant.pk, phone, capture.email])
    lead = Lead(
        tenant=tenant, email=capture.email, form=form, is_personal_email=capture.is_personal_email,
        attributes=capture.attributes, last_activity_at=now, created_at=now, pipeline_pending_since=now,
        **capture.values,
    )
    meta = Lead._meta
    lead_returning = [meta.pk, meta.get_field("possible_duplicate_of"), *meta.db_returning_fields]
    insert, insert_params = _insert_sql(lead, returning=lead_returning, unless_taken=True, computed=lead_computed,
                                        where=lead_where)
    ctes.append(f"lead AS ({insert})")
    params += insert_params
    ctes.append(f"attached AS (UPDATE {qn(Signal._meta.db_table)} SET lead_id = %s "  # noqa: S608
                "WHERE tenant_id = %s AND lead_id IS NULL AND email = %s AND EXISTS (SELECT FROM lead) RETURNING id)")
    params += [lead.pk, tenant.pk, capture.email]
    touch = Touch(
        tenant=tenant, lead=lead, kind=TouchKind.CREATED, form=form, source=capture.values["source"],
        payload=capture.payload, filled_fields=sorted(capture.values), ip_address=ip_address,
        user_agent=(user_agent or "")[:500], received_at=now,
    )
    insert, insert_params = _insert_sql(touch, returning=[Touch._meta.pk], where="EXISTS (SELECT FROM lead)")
    ctes.append(f"touch AS ({insert})")
    params += insert_params
    initial = {"email": capture.email, **capture.values, "is_personal_email": capture.is_personal_email,
               "attributes": capture.attributes or None}  # and the account, added by the statement
    event = audit_event_build(tenant=tenant, actor=actor, action="lead.created", obj=lead,
                              changes={k: [None, v] for k, v in initial.items() if not _blank(v)}, metadata=metadata)
    touch_metadata = _TOUCH_METADATA.replace(
        "%s::jsonb", "%s::jsonb || jsonb_build_object('possible_duplicate_of', "
        "(SELECT possible_duplicate_of_id::text FROM lead))", 1)
    audit_rows.append((event, {
        "changes": (lead_changes_sql, [_jsonb_param("changes", event.changes)]),
        "metadata": (touch_metadata, [_jsonb_param("metadata", event.metadata)]),
    }, "EXISTS (SELECT FROM lead)"))
    cte, cte_params = _audit_cte(audit_rows)
    ctes.append(cte)
    params += cte_params
    account_columns = ", ".join(f"acct.{qn(f.column)}" for f in Account._meta.concrete_fields)
    lead_columns = ", ".join(f"lead.{qn(f.column)}" for f in lead_returning)
    select = [*(["acct.created", account_columns, "EXISTS (SELECT FROM acct_named)" if name else "false"]
                if domain else []), lead_columns, "(SELECT id FROM touch)", "ARRAY(SELECT id FROM attached ORDER BY id)"]
    joins = " LEFT JOIN acct ON true" if domain else ""
    sql = f"WITH {', '.join(ctes)} SELECT {', '.join(select)} FROM (SELECT 1) AS one{joins} LEFT JOIN lead ON true"
    with conn.cursor() as cursor:
        execute_prepared(cursor, sql, params)
        row = list(cursor.fetchone())
    if domain:
        account_created, account_row, account_named = row[0], row[1:len(Account._meta.concrete_fields) + 1], row[
            len(Account._meta.concrete_fields) + 1]
        row = row[len(Account._meta.concrete_fields) + 2:]
        if account_created is None:  # a concurrent capture's account, newer than this statement's snapshot
            return _AtOnce(lead=None, account=None)
        _saved(account, Account._meta.concrete_fields, account_row)
        if account_named:
            account.name = name
        lead.account = account
    lead_row, touch_id, attached = row[:len(lead_returning)], row[len(lead_returning)], row[len(lead_returning) + 1]
    if touch_id is None:  # the email is taken
        return _AtOnce(lead=None, account=account)
    _saved(lead, lead_returning, lead_row)
    _saved(touch, [Touch._meta.pk], [touch_id])
    return _AtOnce(lead=lead, account=account, touch=touch, attached=tuple(attached))


def _signals_enqueue(*, tenant: Tenant, signal_ids: list[int]) -> None:
    # leads.tasks imports the services, so this import cannot sit at the top of the module.
    from leads.tasks import signals_process_task

    transaction.on_commit(lambda: signals_process_task.delay(tenant_id=tenant.pk, signal_ids=signal_ids))


def lead_merge_fill(*, lead: Lead, capture: CaptureInput, account: Account | None, now) -> dict[str, list]:
    """The merge of a duplicate capture into `lead`, in memory: fill blanks only, never overwrite a non-blank value
    or a field a person edited; {field or "attributes.<key>": [before, after]}. The caller saves the lead (one
    capture: `_lead_merge`; a CSV import: the chunk's merged leads in one UPDATE)."""
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
    return changes


def _lead_merge(*, lead: Lead, capture: CaptureInput, account: Account | None, now) -> dict[str, list]:
    """Fill blanks only (`lead_merge_fill`) and save what changed."""
    changes = lead_merge_fill(lead=lead, capture=capture, account=account, now=now)
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


def _possible_duplicate_read(*, tenant: Tenant, lead: Lead) -> Lead | None:
    """The other lead a new one's INSERT named as its possible duplicate (rare: the one case that reads it)."""
    if lead.possible_duplicate_of_id is None:
        return None
    lead.possible_duplicate_of = Lead.objects.for_tenant(tenant).get(pk=lead.possible_duplicate_of_id)
    return lead.possible_duplicate_of


def _lead_match_or_create(
    *, tenant: Tenant, capture: CaptureInput, account: Account | None, form: LeadForm | None, now,
    email_taken: bool = False,
) -> tuple[Lead, bool, str, Lead | None]:
    """(lead, created, matched_on, possible_duplicate_of): a new lead, inserted unless its email is taken;
    else the lead with this email (or, with no email, this phone), locked. Two concurrent inserts of one
    email meet at the unique index: the second waits for the first to commit, inserts nothing, and merges
    into the winner's lead. `email_taken`: the one-statement capture found it taken; lock its lead first."""
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
    for attempt in range(2):
        if not (email_taken and attempt == 0) and _lead_insert(lead):
            duplicate_of = _possible_duplicate_read(tenant=tenant, lead=lead)
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
    metadata = {"form": form.name if form else None, "source": capture.values["source"]}
    account, email_taken = None, False
    if capture.email:
        at_once = _lead_create_at_once(tenant=tenant, capture=capture, form=form, actor=actor, now=now,
                                       ip_address=ip_address, user_agent=user_agent,
                                       metadata={**metadata, "possible_duplicate_of": None})
        if at_once.lead is not None:
            return _captured_new(tenant=tenant, at_once=at_once)
        account, email_taken = at_once.account, at_once.account is not None or not capture.company_domain
    with transaction.atomic(savepoint=False):
        events: list[AuditEvent] = []  # written together with the touch, in one statement, at the end
        if capture.company_domain and account is None:
            account = _account_get_or_create(
                tenant=tenant, domain=capture.company_domain, name=capture.values.get("company", ""), actor=actor,
                events=events,
            )
        lead, created, matched_on, possible_duplicate = _lead_match_or_create(
            tenant=tenant, capture=capture, account=account, form=form, now=now, email_taken=email_taken,
        )
        changes = {} if created else _lead_merge(lead=lead, capture=capture, account=account, now=now)

        touch = Touch(
            tenant=tenant, lead=lead, kind=TouchKind.CREATED if created else TouchKind.DUPLICATE,
            form=form, source=capture.values["source"], payload=capture.payload,
            filled_fields=sorted(capture.values) if created else sorted(changes),
            ip_address=ip_address, user_agent=(user_agent or "")[:500], received_at=now,
        )
        # touch_id and attached_signal_ids are added by the statement that writes the touch (_touch_create)
        if created:
            initial = {"email": capture.email, **capture.values, "account": account,
                       "is_personal_email": capture.is_personal_email, "attributes": capture.attributes or None}
            events.append(audit_event_build(tenant=tenant, actor=actor, action="lead.created", obj=lead,
                                            changes={k: [None, v] for k, v in initial.items() if not _blank(v)},
                                            metadata={**metadata, "possible_duplicate_of": possible_duplicate}))
        else:
            events.append(audit_event_build(tenant=tenant, actor=actor, action="lead.merged", obj=lead,
                                            changes=changes, metadata={**metadata, "matched_on": matched_on}))
            if webhook_subscribed(tenant=tenant, event_type=WebhookEventType.LEAD_MERGED):
                webhook_emit(tenant=tenant, event_type=WebhookEventType.LEAD_MERGED, lead_id=lead.pk, now=now,
                             data={"lead": lead_webhook_data(lead), "matched_on": matched_on,
                                   "changed_fields": sorted({name.split(".")[0] for name in changes})})
        attached = _touch_create(touch=touch, attach_email=lead.email, events=events)
        if attached:
            _signals_enqueue(tenant=tenant, signal_ids=attached)
        lead_captured.send(sender=Lead, tenant=tenant, lead=lead, created=created,
                           changed_fields=frozenset(name.split(".")[0] for name in changes))
    return CaptureResult(lead=lead, result="created" if created else "merged", touch=touch,
                         possible_duplicate_of=possible_duplicate)


def _captured_new(*, tenant: Tenant, at_once: _AtOnce) -> CaptureResult:
    """The events of a lead the one-statement capture created (after its commit, or the caller's)."""
    lead = at_once.lead
    possible_duplicate = _possible_duplicate_read(tenant=tenant, lead=lead)
    if at_once.attached:
        _signals_enqueue(tenant=tenant, signal_ids=list(at_once.attached))
    lead_captured.send(sender=Lead, tenant=tenant, lead=lead, created=True, changed_fields=frozenset())
    return CaptureResult(lead=lead, result="created", touch=at_once.touch, possible_duplicate_of=possible_duplicate)
