"""Rows in every tenant-owned table for one tenant, for the row-level security tests.

`fill_every_tenant_table(tenant)` completes a demo tenant (`manage.py seed_demo`) with what the seed
does not write, through the services the app runs: the capture pipeline task (scores and routes the
demo leads: assignments, round-robin slots, SLA clocks, notifications), an intake with an
Idempotency-Key, a signal, an invitation, the SLA Agent at the first deadline (an escalation), a
logged call, a conversion (an opportunity) closed lost and a won outcome synced (the lost-deal taxonomy and the
leads' outcomes), the Nurture Agent (an enrolment and a sent message) and a
suppressed address, a CSV import (uploaded, mapped, dry-run, run: its refused rows, its leads,
the remembered mapping), and a webhook delivery sent once (its attempt); then another person who posted the form
is erased at their request (a hashed erased contact). Two rows have no service to write them (the admin site does): a routing rule
member and an agent setting, created directly. Everything runs inside `tenant_scope(tenant)`, so
PostgreSQL holds it to that tenant as it holds the app: it never reads or writes another tenant.
Calling it again for the same tenant adds rows but fails on nothing.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.invitations import invitation_send
from leadmgmt.tenancy.models import Agent, AgentSetting, Invitation, Role, Tenant
from leadmgmt.webhooks.services.delivery import webhook_deliveries_send
from leadmgmt.webhooks.services.emit import webhook_emit
from leadmgmt.webhooks.services.endpoints import webhook_endpoint_create
from leads.lost_reasons import lost_reasons_seed
from leads.models import OPEN_STATUSES, ActivityKind, Lead, LeadForm, OutcomeSource
from leads.services.intake import intake_submit
from leads.services.signals import SignalInput, signals_record
from nurture.models import Enrollment, EnrollmentStatus, SuppressionReason
from nurture.services.enrollment import working_pause_days
from nurture.services.sending import nurture_tenant_run
from nurture.services.tracking import suppression_add
from routing.models import Assignment, RoutingRule, RoutingRuleMember, SlaClock, Strategy
from routing.services.sla_enforcement import sla_enforce
from workspace.models import FeedbackSettings
from workspace.services.activities import activity_log
from workspace.services.funnel_plan import funnel_plan_save
from workspace.services.imports import (
    import_mapping_set,
    import_preview,
    import_run,
    import_run_start,
    import_upload,
)
from workspace.services.lifecycle import lead_convert
from workspace.services.outcomes import OutcomeInput, opportunity_update, outcomes_sync
from workspace.services.privacy import person_erase
from workspace.services.source_costs import CostInput, source_costs_upsert
from workspace.tasks import lead_captured_task

FILLER = Actor.agent("RLS test filler")
INVITEE = "invitee@rls-fill.test"
INTAKE_KEY = "rls-fill-intake-1"
SUPPRESSED = "do-not-mail@rls-fill.test"
ERASED = "erase-me@rls-fill.test"


def fill_every_tenant_table(tenant: Tenant) -> None:
    """At least one row of `tenant` (a seeded demo tenant) in every table of `leadmgmt.db.rls.tenant_tables()`."""
    with tenant_scope(tenant):
        _admin_only_rows(tenant)
        _webhook(tenant)
        _intake_with_key()
        _import(tenant)
        _route_captured_leads(tenant)
        _signal(tenant)
        _invitation(tenant)
        _sla_escalation(tenant)
        _call_and_convert()
        _nurture(tenant)
        _possible_duplicate(tenant)
        _erasure(tenant)
        _deals_closed(tenant)
        _learned_model(tenant)
        _costs_and_plan(tenant)


def _user(email: str):
    return get_user_model().objects.get(username=email)


def _admin_only_rows(tenant: Tenant) -> None:
    """What only the admin site writes: a member of the round-robin rule, an agent's switch (left on)."""
    rule = RoutingRule.objects.filter(strategy=Strategy.ROUND_ROBIN).order_by("position").first()
    RoutingRuleMember.objects.get_or_create(tenant=tenant, rule=rule, user=_user("sdr1@demo.test"))
    AgentSetting.objects.get_or_create(tenant=tenant, agent=Agent.ROUTING, defaults={"enabled": True})
    FeedbackSettings.objects.get_or_create(tenant=tenant, defaults={"mql_acceptance_target": 70})


def _webhook(tenant: Tenant) -> None:
    """An endpoint (the API's service) and an event with its delivery, written by the outbox, and its first attempt
    (the sender's: refused, nothing listens there; recorded in the attempt history)."""
    endpoint = webhook_endpoint_create(tenant=tenant, actor=FILLER, url="http://127.0.0.1:9/rls-fill",
                                       events=["lead.created", "import.finished"])
    assert webhook_emit(tenant=tenant, event_type="import.finished", data={"rows": 0}) == 1, endpoint
    assert webhook_deliveries_send(tenant=tenant) >= 1


def _intake_with_key() -> None:
    """A post to the demo form with an Idempotency-Key: a new lead and the record of the answer."""
    form = LeadForm.objects.order_by("pk").first()
    intake_submit(form=form, idempotency_key=INTAKE_KEY, data={
        "email": "pat.kim@rls-fill.test", "first_name": "Pat", "last_name": "Kim", "company": "RLS Fill",
        "marketing_consent": True})


def _import(tenant: Tenant) -> None:
    """A CSV file with a new lead, a duplicate of a demo lead and a refused row: dry run, then run in-process."""
    known = Lead.objects.exclude(email="").order_by("created_at", "pk").first()
    content = f"email,company\nimported@rls-fill.test,RLS Fill\n{known.email},Filled\nnot-an-email,Bad\n".encode()
    job = import_upload(tenant=tenant, actor=FILLER, file_name="rls.csv", content=content)
    job = import_mapping_set(job=job, mapping=job.mapping)
    job = import_preview(job=job)
    import_run_start(job=job, actor=FILLER)
    import_run(tenant=tenant, job_id=job.pk)


def _route_captured_leads(tenant: Tenant) -> None:
    """The capture pipeline task (score, then route) that `lead_captured` enqueues on commit, which a
    test's transaction never reaches: run in-process for every lead not routed yet."""
    not_routed = Lead.objects.exclude(pk__in=Assignment.objects.values("lead_id")).values_list("pk", flat=True)
    for lead_id in not_routed:
        lead_captured_task.apply(kwargs={"tenant_id": tenant.pk, "lead_id": str(lead_id)}, throw=True)


def _signal(tenant: Tenant) -> None:
    """A pricing page view sent for the first lead with an email (as `POST /api/v1/signals/` records it)."""
    lead = Lead.objects.exclude(email="").order_by("created_at", "pk").first()
    signals_record(tenant=tenant, actor=FILLER, items=[SignalInput(
        index=0, type="pricing_page_view", occurred_at=timezone.now(), email=lead.email,
        external_id="rls-fill-signal-1")])


def _possible_duplicate(tenant: Tenant) -> None:
    """Two leads with one phone number (different emails): a pair for the merge review queue."""
    from leads.services.duplicates import duplicate_pairs_detect

    leads = [Lead.objects.create(tenant=tenant, email=f"twin{n}@rls-fill.test", phone="+14155550123",
                                 first_name="Twin", last_name="Fill") for n in (1, 2)]
    duplicate_pairs_detect(tenant=tenant, lead_ids=[lead.pk for lead in leads])


def _invitation(tenant: Tenant) -> None:
    if not Invitation.objects.filter(email=INVITEE).exists():
        invitation_send(tenant=tenant, email=INVITEE, role=Role.SDR, actor=Actor.for_user(_user("admin@demo.test")))


def _sla_escalation(tenant: Tenant) -> None:
    """The SLA Agent's tick just after the first running clock's next step: the breach and its first step."""
    clock = (SlaClock.objects.filter(stopped_at__isnull=True, next_action_at__isnull=False)
             .order_by("next_action_at").first())
    if clock is not None:
        sla_enforce(tenant=tenant, now=clock.next_action_at + timedelta(minutes=1))


def _call_and_convert() -> None:
    """The owner of an open lead logs a call, then converts the lead into an opportunity."""
    lead = (Lead.objects.filter(owner__isnull=False, status__in=OPEN_STATUSES)
            .select_related("owner").order_by("created_at", "pk").first())
    owner = Actor.for_user(lead.owner)
    activity_log(lead=lead, kind=ActivityKind.CALL, actor=owner, subject="Intro call")
    lead_convert(lead=lead, actor=owner)


def _deals_closed(tenant: Tenant) -> None:
    """Last, so that no earlier step misses an open lead: the converted lead's deal closed lost (a reason of the
    lost taxonomy, seeded here if the demo tenant predates it: the lead's outcome), and another lead's won deal
    sent by the outcome sync."""
    from leads.models import Opportunity

    lost_reasons_seed(tenant_id=tenant.pk)
    opportunity = Opportunity.objects.exclude(stage__in=["won", "lost"]).select_related("lead", "owner") \
        .order_by("created_at", "pk").first()
    owner = Actor.for_user(opportunity.owner) if opportunity.owner else FILLER
    opportunity_update(opportunity=opportunity, actor=owner, data={"stage": "lost", "lost_reason": "price"},
                       source=OutcomeSource.UI)
    other = Lead.objects.exclude(pk=opportunity.lead_id).exclude(email="").order_by("created_at", "pk").first()
    outcomes_sync(tenant=tenant, actor=FILLER, items=[OutcomeInput(
        index=0, result="won", email=other.email, amount=Decimal("100.00"), currency="EUR")])


def _learned_model(tenant: Tenant) -> None:
    """The demo's learned model (trained by the seed on its closed history), or one with one weight written as
    stored when the tenant has none."""
    from scoring.models import FeatureKind, PredictiveFeature, PredictiveModel, PredictiveStatus

    if PredictiveFeature.objects.filter(model__is_current=True).exists():
        return
    model = PredictiveModel.objects.create(tenant=tenant, version=1, status=PredictiveStatus.READY, is_current=True,
                                           closed_count=2, won_count=1, intercept=-1.0)
    PredictiveFeature.objects.create(tenant=tenant, model=model, kind=FeatureKind.FLAG, key="is_personal_email",
                                     weight=-0.5, label="Free-mail address")


def _costs_and_plan(tenant: Tenant) -> None:
    """A month's cost of a source (the Source ROI) and the tenant's funnel plan."""
    from datetime import date

    source_costs_upsert(tenant=tenant, actor=FILLER, items=[CostInput(
        month=date(2026, 1, 1), source="web_form", campaign="", amount=Decimal("100.00"), currency="EUR")])
    funnel_plan_save(tenant=tenant, actor=FILLER, data={"revenue_target": Decimal("10000"), "currency": "EUR",
                                                        "average_contract_value": Decimal("1000")})


def _nurture(tenant: Tenant) -> None:
    """The Nurture Agent at noon once the reps' working pause is over (it enrols a consenting lead), and
    again when the first step is due (it sends); then an address put on the suppression list."""
    pause_over = timezone.localtime(timezone=ZoneInfo(tenant.timezone)) + timedelta(
        days=working_pause_days(tenant=tenant) + 1)
    noon = pause_over.replace(hour=12, minute=0, second=0, microsecond=0)  # outside the usual quiet hours
    nurture_tenant_run(tenant=tenant, now=noon)
    due = Enrollment.objects.filter(status=EnrollmentStatus.ACTIVE).order_by("next_due_at").first()
    if due is not None:
        nurture_tenant_run(tenant=tenant, now=max(due.next_due_at, noon))
    suppression_add(tenant=tenant, email=SUPPRESSED, reason=SuppressionReason.MANUAL, actor=FILLER)


def _erasure(tenant: Tenant) -> None:
    """A person who posted the demo form asks to be erased: their lead is anonymised, their hash kept."""
    intake_submit(form=LeadForm.objects.order_by("pk").first(), data={
        "email": ERASED, "first_name": "Robin", "last_name": "Erased", "company": "RLS Fill"})
    person_erase(tenant=tenant, email=ERASED, actor=Actor.for_user(_user("admin@demo.test")))
