"""Privacy request helpers: a person with data in as many tables as the app writes, put there through the real
paths (the public intake with a raw payload and an Idempotency-Key, signals before and after the lead, the capture
pipeline's assignment and notification, an edit, a nurture email over real SMTP, a logged note, a conversion), and the scan of
every text and JSON column of every table for their email, names and phone."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Tenant
from leads.models import ActivityKind, Lead, LeadForm
from leads.services.lead_edit import lead_update
from leads.services.signals import SignalInput, signals_record
from nurture.models import Enrollment, EnrollmentStatus, Message, MessageStatus
from nurture.services.enrollment import working_pause_days
from nurture.services.sending import nurture_tenant_run
from scoring.services import scoring_default_model_create
from tests.support.intake import post_json
from tests.support.nurture import NurtureSettingsFactory, sequence_with_steps
from tests.support.routing import rep, rule, team
from workspace.services.activities import activity_log
from workspace.services.lifecycle import lead_convert

SIGNALER = Actor.agent("Site tracker")


@dataclass
class PersonData:
    """The person's unique values (the needles of the scan) and their lead."""

    email: str
    first_name: str
    last_name: str
    phone: str  # E.164, as stored
    phone_typed: str  # as typed in the form
    former_last_name: str
    lead: Lead | None = None

    @property
    def needles(self) -> list[str]:
        return [self.email, self.first_name, self.last_name, self.phone, self.phone_typed, self.former_last_name]


def new_person() -> PersonData:
    tag = secrets.token_hex(4)
    digits = f"{secrets.randbelow(1000):03d}"
    return PersonData(email=f"quilla.{tag}@{tag}-mail.example", first_name=f"Quilla{tag}", last_name=f"Marrow{tag}",
                      phone=f"+44207946{digits[:1]}{digits}", phone_typed=f"+44 20 7946 {digits[:1]}{digits}",
                      former_last_name=f"Oldname{tag}")


def routed(tenant: Tenant):
    """Scoring defaults, an SDR team of two reps and a round-robin rule: captures are scored, routed, notified."""
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    sdrs = team(tenant, name=f"SDRs {tenant.slug}")
    reps = [rep(tenant, sdrs) for _ in range(2)]
    rule(tenant, 10, team=sdrs)
    return reps


def person_build(*, client, tenant: Tenant, form: LeadForm, person: PersonData, smtp: bool = True,
                 capture_callbacks) -> PersonData:
    """Put `person` in every table the app writes for a person. `capture_callbacks` is pytest-django's
    `django_capture_on_commit_callbacks` (the capture pipeline runs after the intake's commit)."""
    with tenant_scope(tenant):
        signals_record(tenant=tenant, actor=SIGNALER, items=[SignalInput(
            index=0, type="pricing_page_view", occurred_at=timezone.now() - timedelta(hours=1), email=person.email,
            external_id=f"before-{person.email}", properties={"visitor": person.email, "name": person.first_name})])
    with capture_callbacks(execute=True):
        response = post_json(client, {
            "email": person.email.upper(), "first_name": person.first_name, "last_name": person.former_last_name,
            "phone": person.phone_typed, "company": "Marrow Widgets", "job_title": "Head of Ops",
            "marketing_consent": True, "notes": f"Call {person.first_name} on {person.phone_typed}",
        }, form=form, HTTP_IDEMPOTENCY_KEY=f"key-{person.first_name}")
    assert response.status_code == 201, response.content
    lead = Lead.objects.unscoped().get(tenant=tenant, email=person.email)
    with tenant_scope(tenant):
        lead_update(lead=lead, data={"last_name": person.last_name}, actor=SYSTEM)  # the old name: in the audit only
        signals_record(tenant=tenant, actor=SIGNALER, items=[SignalInput(
            index=0, type="pricing_page_view", occurred_at=timezone.now(), email=person.email,
            external_id=f"after-{person.first_name}", properties={"email": person.email})])
        if smtp:
            _nurture_email(tenant=tenant, lead=lead)
        lead = Lead.objects.get(pk=lead.pk)
        activity_log(lead=lead, kind=ActivityKind.NOTE, actor=Actor.for_user(lead.owner),
                     subject=f"Spoke to {person.first_name}",
                     body=f"{person.first_name} {person.last_name} asked to be called on {person.phone}.")
        lead_convert(lead=Lead.objects.get(pk=lead.pk), actor=Actor.for_user(lead.owner))  # an opportunity, a stage
        # A CSV file uploaded for import and not run yet: the person's row is in the stored file (bytes).
        from workspace.services.imports import import_upload

        import_upload(tenant=tenant, actor=SYSTEM, file_name="crm-export.csv", content=(
            "Email;First name;Last name;Phone;Company\r\n"
            f"{person.email};{person.first_name};{person.last_name};{person.phone_typed};Marrow Widgets\r\n"
            "someone.else@other-mail.example;Sam;Else;;Else Inc\r\n").encode("utf-8-sig"))
    person.lead = Lead.objects.unscoped().get(pk=lead.pk)
    return person


def _nurture_email(*, tenant: Tenant, lead: Lead) -> None:
    """The Nurture Agent enrols the consenting lead once the reps' working pause is over and sends step 1."""
    NurtureSettingsFactory(tenant=tenant)
    sequence_with_steps(tenant=tenant, steps=2, delays_days=(0, 3))
    Lead.objects.filter(pk=lead.pk).update(lead_class="nurture", band="warm", score=30)
    pause_over = timezone.localtime(timezone=ZoneInfo(tenant.timezone)) + timedelta(
        days=working_pause_days(tenant=tenant) + 1)
    noon = pause_over.replace(hour=12, minute=0, second=0, microsecond=0)
    nurture_tenant_run(tenant=tenant, now=noon)
    due = Enrollment.objects.filter(lead=lead, status=EnrollmentStatus.ACTIVE).first()
    if due is not None and not Message.objects.filter(lead=lead).exists():
        nurture_tenant_run(tenant=tenant, now=max(due.next_due_at, noon))
    assert Message.objects.filter(lead=lead, status=MessageStatus.SENT).exists(), "the nurture email was not sent"


def text_columns() -> dict[str, list[str]]:
    """Every table of the database's schema with its text, varchar, json, jsonb, array and bytea columns (files)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
            "AND c.data_type IN ('character varying', 'text', 'json', 'jsonb', 'ARRAY', 'character', 'bytea') "
            "ORDER BY 1, 2")
        out: dict[str, list[str]] = {}
        for table, column in cursor.fetchall():
            out.setdefault(table, []).append(column)
        return out


def _bytea_columns() -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name, column_name FROM information_schema.columns "
                       "WHERE table_schema = current_schema() AND data_type = 'bytea'")
        return set(cursor.fetchall())


def rows_holding(needles: list[str]) -> dict[str, dict[str, int]]:
    """{table: {column: rows}} of every row in any table whose text holds any needle (case-insensitive), all tenants."""
    found: dict[str, dict[str, int]] = {}
    binary = _bytea_columns()
    with connection.cursor() as cursor:
        for table, columns in text_columns().items():
            for column in columns:
                # A file (bytes): its ASCII as text, the rest escaped (the needles are ASCII).
                value = f"""encode("{column}", 'escape')""" if (table, column) in binary else f'"{column}"::text'
                cursor.execute(
                    f'SELECT count(*) FROM "{table}" WHERE '  # noqa: S608 - names from information_schema
                    + " OR ".join([f"strpos(lower({value}), lower(%s)) > 0"] * len(needles)), needles)
                count = cursor.fetchone()[0]
                if count:
                    found.setdefault(table, {})[column] = count
    return found
