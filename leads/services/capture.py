"""Capturing a lead: match a validated submission (email, phone, company domain) to create a Lead
or merge a duplicate Touch into the existing one, in one transaction with its audit events; then the
`lead_captured` event (scoring re-scores a merge, the workspace scores and routes a new lead)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
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


def _account_get_or_create(*, tenant: Tenant, domain: str, name: str, actor: Actor) -> Account:
    """The tenant's Account for a domain; created with its first lead (race-safe)."""
    account = Account.objects.for_tenant(tenant).filter(domain=domain).first()
    if account is None:
        try:
            with transaction.atomic():  # a savepoint: losing the race must not abort the capture
                account = Account.objects.create(tenant=tenant, domain=domain, name=name[:200])
        except IntegrityError:
            return Account.objects.for_tenant(tenant).get(domain=domain)
        audit_record(tenant=tenant, actor=actor, action="account.created", obj=account,
                     changes={"domain": [None, domain], "name": [None, account.name]})
    elif not account.name and name:
        account.name = name[:200]
        account.save(update_fields=["name", "updated_at"])
        audit_record(tenant=tenant, actor=actor, action="account.updated", obj=account,
                     changes={"name": ["", account.name]})
    return account


def _phone_lock(*, tenant: Tenant, phone: str) -> None:
    """Serialise phone-only captures of one number (there is no unique index on phone)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, %s))", [phone, tenant.pk])


def _signals_attach(*, tenant: Tenant, lead: Lead) -> list[tuple[int, Any]]:
    """Attach signals that arrived for this email before the lead existed (one UPDATE)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Signal._meta.db_table} SET lead_id = %s "  # noqa: S608 - table name from model meta
            "WHERE tenant_id = %s AND lead_id IS NULL AND email = %s RETURNING id, occurred_at",
            [lead.pk, tenant.pk, lead.email],
        )
        return cursor.fetchall()


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


def _lead_match_or_create(
    *, tenant: Tenant, capture: CaptureInput, account: Account | None, form: LeadForm | None, now
) -> tuple[Lead, bool, str, Lead | None]:
    """(lead, created, matched_on, possible_duplicate_of): the lead with this email (or, with no
    email, this phone), locked; else a new one. Two concurrent inserts of one email meet at the
    unique constraint, and the loser merges into the winner's lead."""
    leads = Lead.objects.for_tenant(tenant)
    phone = capture.values.get("phone", "")
    if capture.email:
        matched_on, lead = "email", lead_lock_by_contact(tenant=tenant, email=capture.email)
    else:
        _phone_lock(tenant=tenant, phone=phone)
        matched_on, lead = "phone", lead_lock_by_contact(tenant=tenant, phone=phone)
    if lead is not None:
        return lead, False, matched_on, None
    possible_duplicate = None
    if phone and capture.email:
        possible_duplicate = leads.filter(phone=phone).exclude(email=capture.email).order_by("created_at").first()
    lead = Lead(
        tenant=tenant, email=capture.email, account=account, form=form,
        is_personal_email=capture.is_personal_email, attributes=capture.attributes,
        possible_duplicate_of=possible_duplicate, last_activity_at=now, created_at=now, **capture.values,
    )
    try:
        with transaction.atomic():  # a savepoint: losing the race must not abort the capture
            lead.save(force_insert=True)
    except IntegrityError:
        if not capture.email:
            raise
        winner = lead_lock_by_contact(tenant=tenant, email=capture.email)
        if winner is None:
            raise
        return winner, False, matched_on, None
    return lead, True, matched_on, possible_duplicate


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
    no email was given, the same phone), logging a Touch with the raw payload either way."""
    capture = capture_input_validate(data=data)
    now = timezone.now()
    capture.values = _lead_values(capture, form=form, source=source, now=now)
    with transaction.atomic():
        account = None
        if capture.company_domain:
            account = _account_get_or_create(
                tenant=tenant, domain=capture.company_domain, name=capture.values.get("company", ""), actor=actor
            )
        lead, created, matched_on, possible_duplicate = _lead_match_or_create(
            tenant=tenant, capture=capture, account=account, form=form, now=now
        )
        changes = {} if created else _lead_merge(lead=lead, capture=capture, account=account, now=now)

        # Signals that came before the lead: attached now; their processing (after commit) does
        # the rest. `last_activity_at` is already the capture time, which is later than any of
        # them (a signal stamped slightly in the future counts as now).
        attached = _signals_attach(tenant=tenant, lead=lead) if lead.email else []
        if attached:
            _signals_enqueue(tenant=tenant, signal_ids=[signal_id for signal_id, _at in attached])

        touch = Touch.objects.create(
            tenant=tenant, lead=lead, kind=TouchKind.CREATED if created else TouchKind.DUPLICATE,
            form=form, source=capture.values["source"], payload=capture.payload,
            filled_fields=sorted(capture.values) if created else sorted(changes),
            ip_address=ip_address, user_agent=(user_agent or "")[:500], received_at=now,
        )
        metadata = {"touch_id": touch.pk, "form": form.name if form else None, "source": touch.source}
        if attached:
            metadata["attached_signal_ids"] = [signal_id for signal_id, _at in attached]
        if created:
            initial = {"email": capture.email, **capture.values, "account": account,
                       "is_personal_email": capture.is_personal_email, "attributes": capture.attributes or None}
            audit_record(tenant=tenant, actor=actor, action="lead.created", obj=lead,
                         changes={k: [None, v] for k, v in initial.items() if not _blank(v)},
                         metadata={**metadata, "possible_duplicate_of": possible_duplicate})
        else:
            audit_record(tenant=tenant, actor=actor, action="lead.merged", obj=lead, changes=changes,
                         metadata={**metadata, "matched_on": matched_on})
        lead_captured.send(sender=Lead, tenant=tenant, lead=lead, created=created,
                           changed_fields=frozenset(name.split(".")[0] for name in changes))
    return CaptureResult(lead=lead, result="created" if created else "merged", touch=touch,
                         possible_duplicate_of=possible_duplicate)
