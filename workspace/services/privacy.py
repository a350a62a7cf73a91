"""Privacy requests (GDPR, CCPA) for one person of a tenant, known by their email: the subject access export
(`person_export`) and the erasure (`person_erase`).

The person is every lead of the tenant with that email (normalised as intake normalises it) and the phone-only
leads with one of their phones, plus the rows that carry the email without a lead (signals waiting for it,
the nurture suppression list, intake's idempotency records).

Erasure keeps what the dashboards count and removes who it was, in one transaction:
* rows that are only personal data are deleted (waiting signals, the suppression entry, idempotency records);
* the lead rows stay (stage, status, score, source, dates) with every personal field blank and `erased_at` set;
  their touches lose the raw payload, IP and user agent, their signals the properties, their activities the
  subject and notes, their nurture messages the address, subject and body;
* then every text and JSON column of every table (audit before/after values and metadata, notifications,
  assignment reasons, opportunity names, Django's admin log …) is scrubbed, set-based (one UPDATE per table and
  scope, `_scrub_everywhere`): the emails everywhere in the tenant, the phones (however written) and full names
  everywhere but in other leads' own rows, the first and last names alone in the rows of the person's leads and
  the audit events naming them; current values and former ones (from the audit trail);
* the person is remembered by a peppered hash only (`leads.erasure`): batch intake refuses them, nurture never
  mails them. A new post of the public form is a new act of the person and is accepted (README).
The audit trail gets one `person.erased` event with the hash and the per-table counts, no personal data.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Case, CharField, Value, When
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Membership, Tenant
from leadmgmt.tenancy.roles import principal_may
from leads.erasure import email_hash, email_key, erased_contact_record, erased_emails
from leads.locks import leads_lock
from leads.models import (
    Activity,
    IdempotencyRecord,
    Lead,
    Opportunity,
    Signal,
    StageTransition,
    Touch,
)
from nurture.models import Enrollment, Message, Suppression
from routing.models import Assignment
from scoring.models import ScoreChange

from ..models import ImportJob

ERASED = "[erased]"
# Lead fields that describe the person (blanked); the rest (stage, status, score, source, company, dates) stays
# for the dashboards' counts and breakdowns.
PERSONAL_LEAD_FIELDS = ("email", "first_name", "last_name", "phone", "job_title", "consent_source", "budget",
                        "authority", "need", "timeline", "rejection_note")
# Audit actions whose changes tell the consent history.
CONSENT_FIELDS = ("marketing_consent", "consent_at", "consent_source")
_TEXT_TYPES = ("character varying", "text", "json", "jsonb")


class PrivacyRefused(Exception):
    """The named person may not make privacy requests for the tenant (only admins may: leadmgmt.tenancy.roles)."""


def privacy_actor(*, tenant: Tenant, action: str, username: str | None, tool: str) -> Actor:
    """Who a privacy request is audited as: the named member, who must be an active admin of the tenant (the
    role table's PRIVACY_EXPORT / PRIVACY_ERASE, as in the admin), or, when no one is named, the platform
    operator running `tool` on the server."""
    if not username:
        return Actor(kind="system", name=f"Platform operator ({tool})")
    membership = (Membership.objects.for_tenant(tenant).select_related("user")
                  .filter(user__username=username).first())
    if membership is None or not principal_may(action=action, membership=membership):
        raise PrivacyRefused(f"{username} is not an active admin of {tenant.slug}: only admins may do this.")
    return Actor.for_user(membership.user)


@dataclass(frozen=True)
class Person:
    tenant: Tenant
    email: str
    lead_ids: list[str]
    phones: set[str]
    names: set[tuple[str, str]]  # (first, last)
    job_titles: set[str]


@dataclass(frozen=True)
class ErasureResult:
    """What an erasure did: the person's hash, how many leads it anonymised, and rows changed or deleted per
    table (no personal data: safe to print and to audit)."""

    email_hash: str
    leads: int
    counts: dict[str, int] = field(default_factory=dict)
    already_erased: bool = False


def _email_required(email: str) -> str:
    email = email_key(email)
    if not email:
        raise ValidationError({"email": ["Enter the person's email address."]})
    return email


def _person(*, tenant: Tenant, email: str, lock: bool = False) -> Person:
    by_email = list(Lead.objects.for_tenant(tenant).filter(email=email).values("id", "phone", "first_name", "last_name", "job_title"))
    phones = {row["phone"] for row in by_email if row["phone"]}
    rows = by_email + (list(Lead.objects.for_tenant(tenant).filter(email="", phone__in=phones, erased_at__isnull=True)
                            .values("id", "phone", "first_name", "last_name", "job_title")) if phones else [])
    lead_ids = sorted({str(row["id"]) for row in rows})
    if lock and lead_ids:
        leads_lock(tenant=tenant, lead_ids=lead_ids)
    return Person(tenant=tenant, email=email, lead_ids=lead_ids, phones=phones,
                  names={(row["first_name"], row["last_name"]) for row in rows},
                  job_titles={row["job_title"] for row in rows if row["job_title"]})


# --- subject access export ------------------------------------------------------------------------------------

def _rows(queryset, *exclude: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in exclude and k != "tenant_id"} for row in queryset.values()]


def _by_lead(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(str(row["lead_id"]), []).append(row)
    return out


@transaction.atomic
def person_export(*, tenant: Tenant, email: str, actor: Actor | None = None) -> dict:
    """Everything the tenant holds about the person, as JSON-ready data: each lead with its fields, touches with
    their raw payloads, signals, activities, stage transitions, assignments, score changes, opportunities, nurture
    enrolments and emails sent, and its consent history (the consent fields and the audit trail's consent
    changes); plus the signals waiting for a lead and the suppression entries. A fixed number of queries whatever
    the person holds. Audited as `person.exported` (hash and counts only)."""
    with tenant_scope(tenant):
        email = _email_required(email)
        person = _person(tenant=tenant, email=email)
        ids = person.lead_ids
        per_lead = {
            "touches": _by_lead(_rows(Touch.objects.for_tenant(tenant).filter(lead_id__in=ids).order_by("received_at"))),
            "signals": _by_lead(_rows(Signal.objects.for_tenant(tenant).filter(lead_id__in=ids).order_by("occurred_at"))),
            "activities": _by_lead(_rows(Activity.objects.for_tenant(tenant).filter(lead_id__in=ids).order_by("occurred_at"))),
            "stage_transitions": _by_lead(_rows(StageTransition.objects.for_tenant(tenant).filter(lead_id__in=ids)
                                                .order_by("at"))),
            "assignments": _by_lead(_rows(Assignment.objects.for_tenant(tenant).filter(lead_id__in=ids).order_by("at"))),
            "score_changes": _by_lead(_rows(ScoreChange.objects.for_tenant(tenant).filter(lead_id__in=ids).order_by("at"))),
            "opportunities": _by_lead(_rows(Opportunity.objects.for_tenant(tenant).filter(lead_id__in=ids)
                                            .order_by("created_at"))),
            "nurture_enrollments": _by_lead(_rows(Enrollment.objects.for_tenant(tenant).filter(lead_id__in=ids)
                                                  .order_by("enrolled_at"))),
            "emails_sent": _by_lead(_rows(Message.objects.for_tenant(tenant).filter(lead_id__in=ids)
                                          .order_by("claimed_at"))),
        }
        audit = _rows(AuditEvent.objects.for_tenant(tenant).filter(object_type="leads.lead", object_id__in=ids)
                      .order_by("at", "id"), "actor_user_id", "actor_api_key_id")
        leads = []
        for lead in _rows(Lead.objects.for_tenant(tenant).filter(pk__in=ids).order_by("created_at")):
            key = str(lead["id"])
            lead_audit = [event for event in audit if event["object_id"] == key]
            entry = {"lead": lead, **{name: rows.get(key, []) for name, rows in per_lead.items()}}
            entry["consent"] = {
                **{name: lead[name] for name in CONSENT_FIELDS},
                "history": [{"at": e["at"], "action": e["action"], "actor": e["actor_name"],
                             "changes": {k: v for k, v in e["changes"].items() if k in CONSENT_FIELDS}}
                            for e in lead_audit if any(k in CONSENT_FIELDS for k in e["changes"])],
            }
            entry["audit_trail"] = lead_audit
            leads.append(entry)
        export = {
            "subject": {"email": email, "tenant": tenant.slug},
            "exported_at": timezone.now(),
            "erased": bool(erased_emails(tenant=tenant, emails=[email])),
            "leads": leads,
            "signals_waiting_for_a_lead": _rows(Signal.objects.for_tenant(tenant).filter(email=email, lead__isnull=True)
                                                .order_by("occurred_at")),
            "nurture_suppression": _rows(Suppression.objects.for_tenant(tenant).filter(email=email)),
        }
        counts = {"leads": len(leads), **{name: sum(len(v) for v in rows.values()) for name, rows in per_lead.items()},
                  "signals_waiting_for_a_lead": len(export["signals_waiting_for_a_lead"]),
                  "nurture_suppression": len(export["nurture_suppression"])}
        audit_record(tenant=tenant, actor=actor or Actor(kind="system", name="Privacy request"),
                     action="person.exported", object_type="person", object_id=email_hash(email),
                     metadata={"email_hash": email_hash(email), "counts": counts})
        return json.loads(json.dumps(export, cls=DjangoJSONEncoder))


# --- erasure --------------------------------------------------------------------------------------------------

def _phone_regex(phone: str) -> str | None:
    """The phone's national number with any separators between its digits, so that "+44 20 7946 0123",
    "020-7946-0123" and "+442079460123" typed in a note all match."""
    try:
        digits = str(phonenumbers.parse(phone, None).national_number)
    except phonenumbers.NumberParseException:
        digits = "".join(c for c in phone if c.isdigit())
    if len(digits) < 6:
        return None
    return "[^0-9a-z]{0,3}".join(digits)


def _pattern(needles: set[str], *, words: bool, phones: set[str] = frozenset()) -> str | None:
    """One case-insensitive PostgreSQL regular expression matching any needle, as text and as JSON text, and any
    of `phones` however it is written."""
    forms = set()
    for needle in needles:
        if len(needle) >= 2:
            forms.update({needle, json.dumps(needle, ensure_ascii=False)[1:-1]})
    escaped = ["".join(c if c.isalnum() else "\\" + c for c in form) for form in sorted(forms, key=len, reverse=True)]
    escaped += sorted(filter(None, (_phone_regex(phone) for phone in phones)))
    if not escaped:
        return None
    body = "|".join(escaped)
    return rf"\m({body})\M" if words else f"({body})"


def _schema_columns() -> tuple[dict[str, list[tuple[str, str]]], dict[str, set[str]]]:
    """Every table of the schema: its text and JSON columns ({table: [(column, type)]}) and all its column names,
    in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
            "ORDER BY c.table_name, c.ordinal_position")
        text: dict[str, list[tuple[str, str]]] = {}
        names: dict[str, set[str]] = {}
        for table, column, data_type in cursor.fetchall():
            names.setdefault(table, set()).add(column)
            if data_type in _TEXT_TYPES:
                text.setdefault(table, []).append((column, data_type))
        return text, names


def _scrub_table(table: str, columns: list[tuple[str, str]], *, pattern: str, where: str, params: dict) -> int:
    """Replace what `pattern` matches with ERASED in `columns` of the rows `where` selects, in one UPDATE that
    writes only the rows holding a match."""
    sets, tests = [], []
    for column, data_type in columns:
        text = f'"{column}"::text'
        cast = f"::{data_type}" if data_type in ("json", "jsonb") else ""
        sets.append(f'"{column}" = CASE WHEN {text} ~* %(p)s '
                    f"THEN regexp_replace({text}, %(p)s, %(r)s, 'gi'){cast} ELSE \"{column}\" END")
        tests.append(f"{text} ~* %(p)s")
    sql = f'UPDATE "{table}" SET {", ".join(sets)} WHERE ({where}) AND ({" OR ".join(tests)})'
    with connection.cursor() as cursor:
        cursor.execute(sql, {"p": pattern, "r": ERASED, **params})
        return cursor.rowcount


def _former_values(person: Person, *, tenant: Tenant) -> dict[str, set[str]]:
    """The values the person's contact fields had before (edits, merges), from the leads' audit trail."""
    out: dict[str, set[str]] = {name: set() for name in ("email", "first_name", "last_name", "phone", "job_title")}
    if not person.lead_ids:
        return out
    for changes in (AuditEvent.objects.for_tenant(tenant).filter(object_type="leads.lead", object_id__in=person.lead_ids)
                    .values_list("changes", flat=True)):
        for name, values in out.items():
            pair = changes.get(name) if isinstance(changes, dict) else None
            if isinstance(pair, list):
                values.update(v for v in pair if isinstance(v, str) and v)
    return out


_AUDIT = AuditEvent._meta.db_table


def _scopes(table: str, columns: set[str]) -> tuple[str, str | None]:
    """For a tenant table: the rows that may name the person but belong to no one else (every row but other
    leads' own), and the rows that are the person's (their leads' rows, the audit events naming them)."""
    if table == Lead._meta.db_table:
        return "tenant_id = %(t)s AND id::text = ANY(%(ids)s)", "tenant_id = %(t)s AND id::text = ANY(%(ids)s)"
    if "lead_id" in columns:
        return ("tenant_id = %(t)s AND (lead_id IS NULL OR lead_id::text = ANY(%(ids)s))",
                "tenant_id = %(t)s AND lead_id::text = ANY(%(ids)s)")
    if table == _AUDIT:
        return ("tenant_id = %(t)s AND NOT (object_type = 'leads.lead' AND object_id <> ALL(%(ids)s))",
                "tenant_id = %(t)s AND (object_id = ANY(%(ids)s) OR changes::text ~ %(idp)s OR metadata::text ~ %(idp)s)")
    return "tenant_id = %(t)s", None


def _scrub_everywhere(person: Person, *, tenant: Tenant) -> dict[str, int]:
    """The set-based scrub of every text and JSON column of every table, one UPDATE per table and scope:
    * the person's emails (current and former) in every row of the tenant;
    * their phones (written any way) and full names in every row but other leads' own (a colleague sharing the
      switchboard number, or a namesake, keeps their data);
    * their first and last names alone, and their job titles, in the rows of their leads and the audit events
      naming them;
    * Django's admin log (no tenant column) for their leads' entries."""
    former = _former_values(person, tenant=tenant)
    firsts = {first for first, _last in person.names if first} | former["first_name"]
    lasts = {last for _first, last in person.names if last} | former["last_name"]
    phones = person.phones | former["phone"]
    emails = _pattern({person.email, *former["email"]}, words=False)
    identity = _pattern({f"{first} {last}" for first in firsts for last in lasts}, words=False, phones=phones)
    names = _pattern(firsts | lasts | person.job_titles | former["job_title"], words=True)
    ids = person.lead_ids
    params = {"t": tenant.pk, "ids": ids, "idp": "(" + "|".join(ids) + ")" if ids else "^$"}
    text_columns, all_columns = _schema_columns()
    counts: dict[str, int] = {}
    for table, columns in text_columns.items():
        changed = 0
        if "tenant_id" in all_columns[table]:
            not_others, own = _scopes(table, all_columns[table])
            if emails:
                changed += _scrub_table(table, columns, pattern=emails, where="tenant_id = %(t)s", params=params)
            if identity:
                changed += _scrub_table(table, columns, pattern=identity, where=not_others, params=params)
            if names and ids and own:
                changed += _scrub_table(table, columns, pattern=names, where=own, params=params)
        elif table == "django_admin_log" and ids:
            with connection.cursor() as cursor:
                cursor.execute("UPDATE django_admin_log SET object_repr = %s WHERE object_id = ANY(%s)", [ERASED, ids])
                changed += cursor.rowcount
            for pattern in (emails, identity, names):
                if pattern:
                    changed += _scrub_table(table, columns, pattern=pattern, where="object_id = ANY(%(ids)s)",
                                            params=params)
        if changed:
            counts[table] = changed
    return counts


def _personal_rows_erase(person: Person, *, tenant: Tenant) -> dict[str, int]:
    """Delete the rows that are only personal data; empty the personal columns of the rows the counts need."""
    ids, email = person.lead_ids, person.email
    counts = {
        "leads_signal (waiting, deleted)": Signal.objects.for_tenant(tenant).filter(email=email, lead__isnull=True)
        .delete()[0],
        "nurture_suppression (deleted)": Suppression.objects.for_tenant(tenant).filter(email=email).delete()[0],
    }
    if ids:
        # Intake's replay records answer with the lead's id; the request itself is only a hash.
        counts["leads_idempotencyrecord (deleted)"] = IdempotencyRecord.objects.for_tenant(tenant).filter(
            response_body__id__in=ids).delete()[0]
        counts["leads_touch"] = Touch.objects.for_tenant(tenant).filter(lead_id__in=ids).update(
            payload={}, ip_address=None, user_agent="")
        # A tracker's external id may quote the address: a token unique per signal instead (dedup still works).
        counts["leads_signal"] = Signal.objects.for_tenant(tenant).filter(lead_id__in=ids).update(
            email="", properties={}, external_id=Case(
                When(external_id="", then=Value("")),
                default=Concat(Value("erased-"), Cast("id", output_field=CharField()))))
        counts["leads_activity"] = Activity.objects.for_tenant(tenant).filter(lead_id__in=ids).update(
            subject="", body="")
        counts["nurture_message"] = Message.objects.for_tenant(tenant).filter(lead_id__in=ids).update(
            to_email="", subject=ERASED, body_text=ERASED, error="")
        now = timezone.now()
        counts["leads_lead"] = Lead.objects.for_tenant(tenant).filter(pk__in=ids).update(
            **dict.fromkeys(PERSONAL_LEAD_FIELDS, ""), attributes={}, marketing_consent=False,
            erased_at=now, updated_at=now)
    return {table: n for table, n in counts.items() if n}


def _scrub_import_files(person: Person, *, tenant: Tenant) -> dict[str, int]:
    """Uploaded CSV files still held (an import not finished yet: a finished one drops its file): each line that
    names the person (their email, or a phone of theirs however written) keeps its delimiters and loses every
    value, so the file keeps its line numbers and the run refuses the empty row. The file is bytes in the
    database, out of the text and JSON scrub's reach."""
    needles = [re.escape(e) for e in sorted({person.email, *_former_values(person, tenant=tenant)["email"]}) if e]
    needles += sorted(filter(None, (_phone_regex(phone) for phone in person.phones)))
    if not needles:
        return {}
    pattern = re.compile("|".join(needles), re.IGNORECASE)
    scrubbed = lines = 0
    for job in ImportJob.objects.for_tenant(tenant).exclude(content=b"").only("id", "content", "encoding",
                                                                                "delimiter").iterator(chunk_size=1):
        text = bytes(job.content).decode(job.encoding)
        kept = []
        for line in text.splitlines(keepends=True):
            if pattern.search(line):
                ending = line[len(line.rstrip("\r\n")):]
                kept.append(job.delimiter * line.count(job.delimiter) + ending)
                lines += 1
            else:
                kept.append(line)
        new = "".join(kept)
        if new != text:
            ImportJob.objects.for_tenant(tenant).filter(pk=job.pk).update(content=new.encode(job.encoding))
            scrubbed += 1
    return {"workspace_importjob (file lines emptied)": lines} if scrubbed else {}


def person_erase(*, tenant: Tenant, email: str, actor: Actor) -> ErasureResult:
    """Erase the person from `tenant` (see the module docstring), in one transaction; a second erasure of the same
    email changes nothing more and is audited again with zero counts."""
    with tenant_scope(tenant), transaction.atomic():
        email = _email_required(email)
        digest = email_hash(email)
        person = _person(tenant=tenant, email=email, lock=True)
        # Rows found by the email first (deleted or emptied), then the scrub of what is left everywhere.
        counts = {f"{table} (anonymised)" if "(" not in table else table: n
                  for table, n in _personal_rows_erase(person, tenant=tenant).items()}
        counts.update(_scrub_everywhere(person, tenant=tenant))
        counts.update(_scrub_import_files(person, tenant=tenant))
        _contact, created = erased_contact_record(tenant=tenant, digest=digest)
        result = ErasureResult(email_hash=digest, leads=len(person.lead_ids), counts=counts,
                               already_erased=not created)
        audit_record(tenant=tenant, actor=actor, action="person.erased", object_type="person", object_id=digest,
                     metadata={"email_hash": digest, "leads": result.leads, "counts": counts,
                               "already_erased": result.already_erased})
        return result


