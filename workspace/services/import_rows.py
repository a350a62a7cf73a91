"""One chunk of an import's rows, set-based: each row validated and normalised by the intake's own rules
(`capture_inputs_validate`), matched like a capture (email, then phone; the file's earlier rows too), and the
chunk written in a handful of multi-row statements whatever its size: accounts, new leads, the merged leads'
filled blanks, touches, audit events, the import's record of what it did, named owners' assignments.

The caller holds the transaction: the run commits each chunk with its progress; the dry run rolls every chunk
back, so its answer comes from exactly the code that writes."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models.functions import Lower
from django.utils import dateparse, timezone

from leadmgmt.api import printable_key
from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_events_copy
from leadmgmt.db.bulk import instance_builder, rows_copy, rows_insert, values_copy
from leadmgmt.tenancy.models import Membership, Tenant
from leads.capture_input import CaptureInput, capture_inputs_validate
from leads.erasure import ERASED_MESSAGE, erased_emails
from leads.locks import leads_lock
from leads.models import Account, Lead, LeadStage, LeadStatus, Signal, Touch, TouchKind
from leads.normalize import email_normalize, text_clean
from leads.services.capture import lead_merge_fill
from routing.services.assign import leads_assign_named
from scoring.engine import SCORING_FIELDS
from scoring.models import ScoreCause
from scoring.services import lead_score_enqueue

from ..models import ImportLead
from .import_files import ATTRIBUTE_PREFIX, IMPORT_ALIASES

IMPORT_SOURCE = "import"  # a lead's source when the file names none
FUTURE_SKEW = dt.timedelta(minutes=5)


@dataclass
class RowOutcome:
    """What became of one row: created, merged (into an existing lead or an earlier row's), created and flagged
    as a possible duplicate (another lead has its phone), or refused (field messages, keyed by column)."""

    line: int
    result: str  # "created" | "merged" | "possible_duplicate" | "refused"
    raw: list[str]
    errors: dict[str, list[str]] | None = None
    lead_id: UUID | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "result": self.result}
        if self.lead_id is not None:
            out["lead_id"] = str(self.lead_id)
        if self.detail:
            out["detail"] = self.detail
        if self.errors is not None:
            out["errors"] = self.errors
        return out


@dataclass
class ImportContext:
    """What every chunk of one import shares."""

    tenant: Tenant
    job_id: int
    file_name: str
    headers: list[str]
    mapping: list[str]
    actor: Actor
    now: dt.datetime
    dry_run: bool = False


@dataclass
class _Row:
    line: int
    raw: list[str]
    capture: CaptureInput
    extras: dict[str, Any]
    columns: dict[str, str]  # target (or attribute key) → the column it came from
    payload: dict[str, str] = field(default_factory=dict)


# --- One row -------------------------------------------------------------------------------------------


def _refused(line: int, raw: list[str], errors: dict[str, list[str]]) -> RowOutcome:
    return RowOutcome(line=line, result="refused", raw=raw,
                      errors={printable_key(k): [str(m) for m in v] for k, v in errors.items()})


def _when(value: str, now: dt.datetime) -> dt.datetime:
    try:
        parsed = dateparse.parse_datetime(value)
        day = None if parsed is not None else dateparse.parse_date(value)
    except ValueError:
        parsed = day = None
    if day is not None:
        parsed = dt.datetime(day.year, day.month, day.day, tzinfo=timezone.get_current_timezone())
    if parsed is None:
        raise ValidationError("Enter a date like 2024-05-31 or 2024-05-31T14:30:00Z.")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    if parsed > now + FUTURE_SKEW:
        raise ValidationError("This date is in the future.")
    return parsed


def _choice(value: str, choices) -> str:
    wanted = value.strip().lower()
    for choice_value, label in choices.choices:
        if wanted in (choice_value, str(label).lower()):
            return choice_value
    raise ValidationError(f"Unknown value '{value}'; one of: {', '.join(choices.values)}.")


def _extra_clean(target: str, value: str, now: dt.datetime):
    if target == "owner_email":
        return email_normalize(value)
    if target in ("consent_at", "created_at"):
        return _when(value, now)
    if target == "status":
        return _choice(value, LeadStatus)
    if target == "stage":
        return _choice(value, LeadStage)
    clean = text_clean(value)  # external_id
    if len(clean) > Lead._meta.get_field("external_id").max_length:
        raise ValidationError(f"Ensure this field has no more than {Lead._meta.get_field('external_id').max_length} "
                              "characters.")
    return clean


@dataclass
class _Submission:
    """A row's mapped columns, before validation: the submission the intake would get, and the import's own
    columns (owner, dates, status, stage, external id)."""

    line: int
    cells: list[str]
    data: dict[str, Any]
    extras: dict[str, str]
    columns: dict[str, str]
    payload: dict[str, str]


def _submission(*, ctx: ImportContext, line: int, cells: list[str]) -> _Submission | RowOutcome:
    headers, mapping = ctx.headers, ctx.mapping
    if len(cells) > len(headers) and any(cell.strip() for cell in cells[len(headers):]):
        return _refused(line, cells, {"row": [f"This row has {len(cells)} values; the file has {len(headers)} "
                                              "columns."]})
    data: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    extras: dict[str, str] = {}
    columns: dict[str, str] = {}
    payload: dict[str, str] = {}
    for index, target in enumerate(mapping):
        value = cells[index].strip() if index < len(cells) else ""
        if not target or not value:
            continue
        payload[headers[index]] = value
        if target.startswith(ATTRIBUTE_PREFIX):
            key = target[len(ATTRIBUTE_PREFIX):]
            attributes[key], columns[key] = value, headers[index]
        elif target in IMPORT_ALIASES:
            extras[target], columns[target] = value, headers[index]
        else:
            data[target], columns[target] = value, headers[index]
    if attributes:
        data["attributes"] = attributes
    return _Submission(line=line, cells=cells, data=data, extras=extras, columns=columns, payload=payload)


def _row(*, ctx: ImportContext, submission: _Submission, validated: CaptureInput | ValidationError) -> _Row | RowOutcome:
    """The validated submission with the import's own columns, or the row's refusal (every field's message)."""
    line, cells, columns = submission.line, submission.cells, submission.columns
    errors: dict[str, list[str]] = {}
    capture = None
    if isinstance(validated, ValidationError):
        errors.update(validated.message_dict if hasattr(validated, "error_dict") else {"row": validated.messages})
    else:
        capture = validated
    clean_extras: dict[str, Any] = {}
    for target, value in submission.extras.items():
        try:
            clean_extras[target] = _extra_clean(target, value, ctx.now)
        except ValidationError as exc:
            errors[target] = exc.messages
    if errors:
        return _refused(line, cells, {columns.get(key, key): messages for key, messages in errors.items()})
    values = dict(capture.values)
    values["source"] = values.get("source") or IMPORT_SOURCE
    if values.get("marketing_consent"):
        values["consent_at"] = clean_extras.get("consent_at") or ctx.now
        values["consent_source"] = f"Import {ctx.file_name}"[:200]
    capture.values = values
    capture.payload = submission.payload
    return _Row(line=line, raw=cells, capture=capture, extras=clean_extras, columns=columns,
                payload=submission.payload)


def rows_parse(*, ctx: ImportContext, rows: Sequence[tuple[int, list[str]]]) -> list[_Row | RowOutcome]:
    """Each row as the intake would take it (the mapped columns as a submission), or its refusal, in order; the
    submissions validated together by `capture_inputs_validate` (a value repeated down a column is normalised
    once)."""
    split = [_submission(ctx=ctx, line=line, cells=cells) for line, cells in rows]
    submissions = [item for item in split if isinstance(item, _Submission)]
    validated = iter(capture_inputs_validate(items=[item.data for item in submissions]))
    return [item if isinstance(item, RowOutcome) else _row(ctx=ctx, submission=item, validated=next(validated))
            for item in split]


# --- One chunk -----------------------------------------------------------------------------------------


def _owners_read(*, tenant: Tenant, emails: set[str]) -> dict[str, Any]:
    """{lower-cased email: user} of the tenant's active members with these emails (one query)."""
    if not emails:
        return {}
    memberships = (Membership.objects.for_tenant(tenant).filter(is_active=True, user__is_active=True)
                   .annotate(email_lower=Lower("user__email")).filter(email_lower__in=emails).select_related("user"))
    return {m.email_lower: m.user for m in memberships}


def _accounts(*, ctx: ImportContext, rows: Sequence[_Row], events: list) -> dict[str, Account]:
    """The Account of each company domain in the chunk: the existing ones read at once, the missing ones
    inserted at once (a concurrent capture of one of them fails the chunk, which the run retries)."""
    names: dict[str, str] = {}
    for row in rows:
        if row.capture.company_domain:
            names.setdefault(row.capture.company_domain, row.capture.values.get("company", ""))
    if not names:
        return {}
    tenant = ctx.tenant
    found = {a.domain: a for a in Account.objects.for_tenant(tenant).filter(domain__in=list(names))}
    new = [Account(tenant=tenant, domain=domain, name=name[:200], created_at=ctx.now)
           for domain, name in names.items() if domain not in found]
    if new:
        rows_insert(new)
        for account in new:
            found[account.domain] = account
            events.append(("account.created", _ACCOUNT, account.pk,
                           {"domain": [None, account.domain], "name": [None, account.name]},
                           {"import_id": ctx.job_id}))
    return found


def _jsonable(value):
    return value.isoformat() if isinstance(value, dt.datetime) else value


_ACCOUNT, _LEAD = Account._meta.label_lower, Lead._meta.label_lower
_TOUCH_COLUMNS = ("tenant_id", "lead_id", "kind", "form_id", "source", "payload", "filled_fields", "ip_address",
                  "user_agent", "received_at")


@dataclass
class _Plan:
    """The chunk's writes, gathered row by row and written once: touches and audit events as plain tuples (their
    COPY rows), not model instances, which cost more to build and prepare than PostgreSQL takes to write them."""

    new: list[Lead] = field(default_factory=list)
    merged: dict[UUID, Lead] = field(default_factory=dict)  # existing leads the chunk filled blanks of
    merged_fields: set[str] = field(default_factory=set)
    rescore: set[UUID] = field(default_factory=set)
    before: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    touches: list[tuple] = field(default_factory=list)  # (lead id, kind, source, payload, filled fields)
    events: list[tuple] = field(default_factory=list)  # (action, object type, object id, changes, metadata)
    named: list[tuple[Lead, Any]] = field(default_factory=list)
    lead_new: Any = field(default_factory=lambda: instance_builder(Lead))  # Lead(**values), cheaper by the thousand


def chunk_apply(*, ctx: ImportContext, rows: Sequence[tuple[int, list[str]]]) -> list[RowOutcome]:
    """Import these rows (in the caller's transaction); an outcome per row, in file order."""
    tenant = ctx.tenant
    outcomes: list[RowOutcome] = []
    parsed: list[_Row] = []
    for row in rows_parse(ctx=ctx, rows=rows):
        (outcomes if isinstance(row, RowOutcome) else parsed).append(row)
    owners = _owners_read(tenant=tenant, emails={r.extras["owner_email"] for r in parsed if "owner_email" in r.extras})
    erased = erased_emails(tenant=tenant, emails={r.capture.email for r in parsed if r.capture.email})
    kept = []
    for row in parsed:
        owner_email = row.extras.get("owner_email")
        if row.capture.email in erased:
            # Erased at the person's request: refused, and the refused row keeps none of their data either.
            outcomes.append(_refused(row.line, [""] * len(row.raw), {row.columns.get("email", "email"): [ERASED_MESSAGE]}))
        elif owner_email and owner_email not in owners:
            outcomes.append(_refused(row.line, row.raw, {row.columns["owner_email"]: [
                f"No active member of this workspace has the email {owner_email}."]}))
        else:
            kept.append(row)
    plan = _Plan()
    if kept:
        outcomes += _rows_plan(ctx=ctx, rows=kept, owners=owners, plan=plan)
        _plan_write(ctx=ctx, plan=plan)
    return sorted(outcomes, key=lambda outcome: outcome.line)


# The chunk's emails and phones as one array each (`= ANY(%s)`): an IN list of a thousand values costs Django more
# to compile, value by value, than PostgreSQL takes to answer.
_BY_EMAIL_SQL = f"SELECT email, id FROM {Lead._meta.db_table} WHERE tenant_id = %s AND email = ANY(%s)"  # noqa: S608
_BY_PHONE_SQL = (f"SELECT id, phone, email FROM {Lead._meta.db_table} "  # noqa: S608
                 "WHERE tenant_id = %s AND phone = ANY(%s) ORDER BY created_at, id")


def _leads_read(sql: str, *, tenant: Tenant, values: list[str]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, [tenant.pk, values])
        return cursor.fetchall()


def _rows_plan(*, ctx: ImportContext, rows: list[_Row], owners: dict[str, Any], plan: _Plan) -> list[RowOutcome]:
    """Match each row (the tenant's leads read and locked at once) and decide its lead, in file order."""
    tenant = ctx.tenant
    emails = sorted({r.capture.email for r in rows if r.capture.email})
    phones = sorted({r.capture.values["phone"] for r in rows if r.capture.values.get("phone")})
    by_email = dict(_leads_read(_BY_EMAIL_SQL, tenant=tenant, values=emails)) if emails else {}
    by_phone: dict[str, list[tuple[UUID, str]]] = {}
    if phones:
        for lead_id, phone, email in _leads_read(_BY_PHONE_SQL, tenant=tenant, values=phones):
            by_phone.setdefault(phone, []).append((lead_id, email))
    phone_only = {by_phone[p][0][0] for r in rows if not r.capture.email
                  for p in [r.capture.values.get("phone", "")] if p in by_phone}
    to_lock = [*by_email.values(), *phone_only]
    locked = {lead.pk: lead for lead in leads_lock(tenant=tenant, lead_ids=to_lock)} if to_lock else {}
    external_ids = sorted({r.extras["external_id"] for r in rows if r.extras.get("external_id")})
    taken_external = dict(Lead.objects.for_tenant(tenant).filter(external_id__in=external_ids)
                          .values_list("external_id", "id")) if external_ids else {}
    accounts = _accounts(ctx=ctx, rows=rows, events=plan.events)

    planned_email: dict[str, tuple[Lead, int]] = {}
    planned_phone: dict[str, tuple[Lead, int]] = {}
    outcomes = []
    for row in rows:
        capture, extras = row.capture, row.extras
        phone = capture.values.get("phone", "")
        target, target_line, existing, matched_on = None, None, False, "email" if capture.email else "phone"
        if capture.email:
            if capture.email in planned_email:
                target, target_line = planned_email[capture.email]
            elif capture.email in by_email:
                target, existing = locked[by_email[capture.email]], True
        elif phone in by_phone:
            target, existing = locked[by_phone[phone][0][0]], True
        elif phone in planned_phone:
            target, target_line = planned_phone[phone]
        external_id = extras.get("external_id", "")
        if external_id:
            holder = taken_external.get(external_id)
            if holder is not None and (target is None or holder != target.pk):
                outcomes.append(_refused(row.line, row.raw, {row.columns["external_id"]: [
                    f"Another lead already has the external id '{external_id}'."]}))
                continue
        account = accounts.get(capture.company_domain)
        if target is not None:
            outcomes.append(_merge(ctx=ctx, plan=plan, row=row, lead=target, existing=existing, account=account,
                                   target_line=target_line, matched_on=matched_on))
        else:
            target, outcome = _create(ctx=ctx, plan=plan, row=row, account=account, owners=owners,
                                      by_phone=by_phone, planned_phone=planned_phone)
            outcomes.append(outcome)
            target_line = row.line
        if external_id:
            taken_external[external_id] = target.pk
        if capture.email:
            planned_email.setdefault(capture.email, (target, target_line))
        if phone and target.phone == phone:  # a merge that kept another number does not make this one theirs
            planned_phone.setdefault(phone, (target, target_line))
    return outcomes


def _merge(*, ctx: ImportContext, plan: _Plan, row: _Row, lead: Lead, existing: bool, account: Account | None,
           target_line: int | None, matched_on: str) -> RowOutcome:
    attributes_before = dict(lead.attributes or {})
    changes = lead_merge_fill(lead=lead, capture=row.capture, account=account, now=ctx.now)
    external_id = row.extras.get("external_id", "")
    if external_id and not lead.external_id:
        changes["external_id"] = ["", external_id]
        lead.external_id = external_id
    if existing:
        plan.merged[lead.pk] = lead
        before = plan.before.setdefault(lead.pk, {})
        for name, (old, _new) in changes.items():
            if name.startswith("attributes."):
                before.setdefault("attributes", attributes_before)
            else:
                before.setdefault(name, _jsonable(old))
        filled = {name.split(".")[0] for name in changes}
        plan.merged_fields |= filled
        if SCORING_FIELDS & filled:
            plan.rescore.add(lead.pk)
    plan.touches.append((lead.pk, TouchKind.DUPLICATE.value, row.capture.values["source"], row.payload,
                         sorted(changes)))
    plan.events.append(("lead.merged", _LEAD, lead.pk, changes, {"source": row.capture.values["source"],
                                                                 "matched_on": matched_on,
                                                                 "import_id": ctx.job_id, "line": row.line}))
    if target_line is not None:
        detail = f"Same {matched_on} as line {target_line}: merged into its lead."
    else:
        detail = f"Merged into the existing lead with this {matched_on} (blank fields filled: {len(changes)})."
    return RowOutcome(line=row.line, result="merged", raw=row.raw, lead_id=lead.pk, detail=detail)


def _create(*, ctx: ImportContext, plan: _Plan, row: _Row, account: Account | None, owners: dict[str, Any],
            by_phone: dict[str, list[tuple[UUID, str]]], planned_phone: dict[str, tuple[Lead, int]],
            ) -> tuple[Lead, RowOutcome]:
    capture, extras = row.capture, row.extras
    phone = capture.values.get("phone", "")
    lead = plan.lead_new(
        tenant=ctx.tenant, email=capture.email, account=account, is_personal_email=capture.is_personal_email,
        attributes=capture.attributes, last_activity_at=ctx.now, created_at=extras.get("created_at") or ctx.now,
        pipeline_pending_since=ctx.now, status=extras.get("status") or LeadStatus.NEW,
        stage=extras.get("stage") or LeadStage.RAW, external_id=extras.get("external_id", ""), **capture.values,
    )
    detail = ""
    if phone and capture.email:  # the oldest other lead with this phone, as a capture flags it
        others = [lead_id for lead_id, email in by_phone.get(phone, []) if email != capture.email]
        if others:
            lead.possible_duplicate_of_id, detail = others[0], "Another lead has this phone number."
        elif phone in planned_phone and planned_phone[phone][0].email != capture.email:
            earlier, line = planned_phone[phone]
            lead.possible_duplicate_of_id, detail = earlier.pk, f"Same phone number as line {line}."
    plan.new.append(lead)
    owner = owners.get(extras.get("owner_email", ""))
    if owner is not None:
        plan.named.append((lead, owner))
    plan.touches.append((lead.pk, TouchKind.CREATED.value, capture.values["source"], row.payload,
                         sorted(capture.values)))
    initial = {"email": capture.email, **capture.values, "account": account.pk if account else None,
               "is_personal_email": capture.is_personal_email, "attributes": capture.attributes or None,
               "status": lead.status, "stage": lead.stage, "external_id": lead.external_id}
    plan.events.append((
        "lead.created", _LEAD, lead.pk,
        {k: [None, v] for k, v in initial.items() if v not in (None, "", False, {}, [])},
        {"source": capture.values["source"], "possible_duplicate_of": lead.possible_duplicate_of_id,
         "import_id": ctx.job_id, "line": row.line}))
    result = "possible_duplicate" if lead.possible_duplicate_of_id else "created"
    return lead, RowOutcome(line=row.line, result=result, raw=row.raw, lead_id=lead.pk, detail=detail)


_MERGE_COLUMNS = {"account": "account", "attributes": "attributes"}


def _leads_update(*, tenant: Tenant, leads: Sequence[Lead], names: set[str]) -> None:
    """The merged leads' filled fields in one UPDATE … FROM (VALUES …) (Django's bulk_update builds a CASE per
    field and row, several times slower to compile)."""
    conn = connections[DEFAULT_DB_ALIAS]
    fields = [Lead._meta.get_field(name) for name in sorted(names)]
    types = [f.db_type(conn) if not f.is_relation else f.target_field.rel_db_type(conn) for f in fields]
    qn = conn.ops.quote_name
    row = f"(%s::uuid, {', '.join(f'%s::{db_type}' for db_type in types)})"
    params: list = []
    for lead in leads:
        params.append(str(lead.pk))
        params += [f.get_db_prep_save(getattr(lead, f.attname), connection=conn) for f in fields]
    columns = ", ".join(qn(f.column) for f in fields)
    assignments = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}" for f in fields)
    with conn.cursor() as cursor:
        cursor.execute(f"UPDATE {qn(Lead._meta.db_table)} l SET {assignments} "  # noqa: S608
                       f"FROM (VALUES {', '.join([row] * len(leads))}) AS v(id, {columns}) "
                       "WHERE l.tenant_id = %s AND l.id = v.id", [*params, tenant.pk])


def _plan_write(*, ctx: ImportContext, plan: _Plan) -> None:
    """The chunk's writes, each one statement for the whole chunk."""
    tenant, now = ctx.tenant, ctx.now
    rows_copy(plan.new)
    if plan.merged:
        for lead in plan.merged.values():
            lead.updated_at = now
        _leads_update(tenant=tenant, leads=list(plan.merged.values()),
                      names=plan.merged_fields | {"last_activity_at", "updated_at"})
    values_copy(Touch, _TOUCH_COLUMNS, [(tenant.pk, lead_id, kind, None, source, payload, filled, None, "", now)
                                        for lead_id, kind, source, payload, filled in plan.touches])
    audit_events_copy(tenant_id=tenant.pk, actor=ctx.actor, events=plan.events)
    records = [(tenant.pk, ctx.job_id, lead.pk, True, {}) for lead in plan.new]
    records += [(tenant.pk, ctx.job_id, pk, False, before) for pk, before in plan.before.items()]
    # A lead an earlier chunk created keeps its "created" record.
    values_copy(ImportLead, ("tenant_id", "job_id", "lead_id", "created", "before"), records, ignore_conflicts=True)
    if ctx.dry_run:
        return  # what follows changes nothing the dry run counts
    if plan.named:
        leads_assign_named(tenant=tenant, owners=plan.named, actor=ctx.actor,
                           reason=f"Owner named in import {ctx.job_id}", now=now)
    _signals_attach(tenant=tenant, leads=plan.new)
    if plan.rescore:
        lead_score_enqueue(tenant=tenant, lead_ids=plan.rescore, cause=ScoreCause.CAPTURE)
    if plan.new:
        _pipeline_enqueue(tenant_id=tenant.pk)


def _signals_attach(*, tenant: Tenant, leads: list[Lead]) -> None:
    """Signals that arrived for these emails before their leads existed now belong to them (one UPDATE), and are
    processed after commit, as a capture does."""
    ids = [str(lead.pk) for lead in leads if lead.email]
    if not ids:
        return
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(Signal._meta.db_table)} s SET lead_id = l.id FROM {qn(Lead._meta.db_table)} l "  # noqa: S608
            "WHERE l.tenant_id = %s AND l.id = ANY(%s::uuid[]) AND s.tenant_id = %s AND s.lead_id IS NULL "
            "AND s.email = l.email RETURNING s.id", [tenant.pk, ids, tenant.pk])
        attached = sorted(row[0] for row in cursor.fetchall())
    if attached:
        from leads.tasks import signals_process_task

        transaction.on_commit(lambda: signals_process_task.delay(tenant_id=tenant.pk, signal_ids=attached))


def _pipeline_enqueue(*, tenant_id: int) -> None:
    """After commit, the capture pipeline scores the chunk's new leads and routes those without an owner (robust:
    a broker that is down leaves them pending for the sweep)."""
    from ..tasks import lead_captured_enqueue

    transaction.on_commit(lambda: lead_captured_enqueue(tenant_id=tenant_id), robust=True)


