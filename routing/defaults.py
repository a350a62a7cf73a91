"""A new tenant's working routing set-up: rules, seed SLA policies and ladders, rejection taxonomy, hours.

Where the figures come from:
- rule order (named account first, round-robin among the default team's SDRs, Unassigned
  fallback): seed 003 (named accounts before anything else; SDRs work new leads);
- SLAs: seed 002 §4/§6 (hot/MQL within 5 minutes, warm within 1 hour, AE accepts an SQL within
  24 hours), the issue (trade-show leads within 24 hours); a 4-hour catch-all so every owned
  lead has a clock. Hotter is never slower: the hot policies come first (right after the AE's
  acceptance), so an MQL-or-hotter lead from the web or an ad platform gets 5 minutes and one from
  any other source (a trade show included) 1 hour, never the 4-hour catch-all while a warm lead
  gets 1 hour (tests/routing/test_sla_policy_order.py checks this for every source);
- escalation: seed 001 step 4 (alert the manager after 4 hours, reassign after 24). For the
  catch-all that is "alert at the 4-hour deadline, reassign 20 hours later". Hot/MQL web leads
  lose most of their value within minutes (seed 002: -80% after 5 minutes), so their ladder is
  alert at the 5-minute breach and reassign 25 minutes later (30 minutes after assignment); other
  hot leads alert at the 1-hour breach and reassign 3 hours later (4 hours after assignment);
  warm leads alert at the 1-hour breach and reassign at 24 hours after assignment; trade-show
  leads and AE acceptance alert at their 24-hour breach and reassign a day later;
- rejection taxonomy: seed 001, mistake 4 (a defined list of reasons, no free text).

Idempotent: each part (rules, SLA policies, taxonomy, business hours, settings) is created only
when the tenant has none of it yet, so a second call, or a call after marketing ops edited the
set-up, changes nothing.
"""
from __future__ import annotations

from datetime import time

from django.db import transaction

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.models import Role, Tenant
from leadmgmt.tenancy.services import DEFAULT_TEAM, team_get_or_create

from .models import (
    BusinessHours,
    EscalationAction,
    EscalationStep,
    RejectionReason,
    RoutingRule,
    RoutingSettings,
    SlaKind,
    SlaPolicy,
    Strategy,
)

NAMED_ACCOUNT_RULE = "Named account → account owner"
ROUND_ROBIN_RULE = "Round-robin among available SDRs"
FALLBACK_RULE = "Unassigned"
FALLBACK_POSITION = 1000

WEB_SOURCES = ["web_form", "website", "chat", "demo_request", "contact_form", "landing_page"]
# Ad platforms (seed 003: "leads land from web forms, ad platforms, events, chat and outbound"):
# someone who clicked an ad and filled its form is as fresh as a web form lead.
PAID_SOURCES = ["paid_search", "paid_social", "ads", "ppc", "google_ads", "linkedin_ads", "facebook_ads"]
HOT_BANDS = ["mql", "sal", "sql"]
HOURS = 60
ALERT, REASSIGN = EscalationAction.ALERT_MANAGER, EscalationAction.REASSIGN

# (position, name, kind, sources, bands, stages, minutes, [(action, minutes after the deadline)])
SLA_POLICIES: list[tuple] = [
    (10, "AE accepts an SQL within 24 hours", SlaKind.ACCEPTANCE, [], [], ["sql"], 24 * HOURS,
     [(ALERT, 0), (REASSIGN, 24 * HOURS)]),
    (20, "Hot / MQL web and paid leads: first contact in 5 minutes", SlaKind.FIRST_CONTACT,
     WEB_SOURCES + PAID_SOURCES, HOT_BANDS, [], 5, [(ALERT, 0), (REASSIGN, 25)]),
    (25, "Hot / MQL leads from other sources: first contact in 1 hour", SlaKind.FIRST_CONTACT, [], HOT_BANDS, [],
     1 * HOURS, [(ALERT, 0), (REASSIGN, 3 * HOURS)]),
    (30, "Trade-show leads: first contact in 24 hours", SlaKind.FIRST_CONTACT, ["event"], [], [], 24 * HOURS,
     [(ALERT, 0), (REASSIGN, 24 * HOURS)]),
    (40, "Warm leads: first contact in 1 hour", SlaKind.FIRST_CONTACT, [], ["warm"], [], 1 * HOURS,
     [(ALERT, 0), (REASSIGN, 23 * HOURS)]),
    (100, "Every other lead: first contact in 4 hours", SlaKind.FIRST_CONTACT, [], [], [], 4 * HOURS,
     [(ALERT, 0), (REASSIGN, 20 * HOURS)]),
]

# (code, label, nurture): "not now" goes back to nurture, the rest back to marketing.
REJECTION_REASONS: list[tuple[str, str, bool]] = [
    ("not_icp", "Not our ideal customer", False),
    ("no_budget", "No budget", False),
    ("no_authority", "Not a decision maker", False),
    ("no_need", "No real need", False),
    ("not_now", "Timing: not now", True),
    ("bad_contact_data", "Bad or unreachable contact data", False),
    ("duplicate", "Duplicate of another lead", False),
    ("competitor", "Competitor", False),
    ("student_or_job_seeker", "Student or job seeker", False),
    ("existing_customer", "Already a customer", False),
    ("spam", "Spam or fake submission", False),
]

BUSINESS_DAYS = range(0, 5)  # Monday–Friday
OPENS_AT, CLOSES_AT = time(9, 0), time(17, 0)


def _rules_create(*, tenant: Tenant, team) -> int:
    if RoutingRule.objects.for_tenant(tenant).exists():
        return 0
    RoutingRule.objects.bulk_create([
        RoutingRule(tenant=tenant, position=10, name=NAMED_ACCOUNT_RULE, strategy=Strategy.NAMED_ACCOUNT),
        RoutingRule(tenant=tenant, position=20, name=ROUND_ROBIN_RULE, strategy=Strategy.ROUND_ROBIN, team=team,
                    roles=[Role.SDR.value]),
        RoutingRule(tenant=tenant, position=FALLBACK_POSITION, name=FALLBACK_RULE, strategy=Strategy.UNASSIGNED,
                    is_fallback=True),
    ])
    return 3


def _sla_policies_create(*, tenant: Tenant) -> int:
    if SlaPolicy.objects.for_tenant(tenant).exists():
        return 0
    policies = SlaPolicy.objects.bulk_create([
        SlaPolicy(tenant=tenant, position=position, name=name, kind=kind, sources=sources, bands=bands,
                  stages=stages, minutes=minutes)
        for position, name, kind, sources, bands, stages, minutes, _ladder in SLA_POLICIES
    ])
    EscalationStep.objects.bulk_create([
        EscalationStep(tenant=tenant, policy=policy, level=level, action=action, after_minutes=after)
        for policy, spec in zip(policies, SLA_POLICIES, strict=True)
        for level, (action, after) in enumerate(spec[-1], start=1)
    ])
    return len(policies)


def _rejection_reasons_create(*, tenant: Tenant) -> int:
    if RejectionReason.objects.for_tenant(tenant).exists():
        return 0
    RejectionReason.objects.bulk_create([
        RejectionReason(tenant=tenant, code=code, label=label, nurture=nurture, position=index * 10)
        for index, (code, label, nurture) in enumerate(REJECTION_REASONS, start=1)
    ])
    return len(REJECTION_REASONS)


def _business_hours_create(*, tenant: Tenant) -> int:
    if BusinessHours.objects.for_tenant(tenant).exists():
        return 0
    BusinessHours.objects.bulk_create([
        BusinessHours(tenant=tenant, weekday=day, opens_at=OPENS_AT, closes_at=CLOSES_AT) for day in BUSINESS_DAYS
    ])
    return len(BUSINESS_DAYS)


@transaction.atomic
def routing_defaults_create(*, tenant: Tenant, actor: Actor) -> None:
    """Give `tenant` the default routing rules, seed SLA policies with their escalation ladders, the
    rejection taxonomy, Mon–Fri 09:00–17:00 business hours and its routing settings (idempotent)."""
    team = team_get_or_create(tenant=tenant, name=DEFAULT_TEAM, actor=actor)
    _settings, settings_created = RoutingSettings.objects.for_tenant(tenant).get_or_create(tenant=tenant, defaults={"default_team": team})
    created = {
        "settings": int(settings_created),
        "rules": _rules_create(tenant=tenant, team=team),
        "sla_policies": _sla_policies_create(tenant=tenant),
        "rejection_reasons": _rejection_reasons_create(tenant=tenant),
        "business_hours": _business_hours_create(tenant=tenant),
    }
    if any(created.values()):
        audit_record(tenant=tenant, actor=actor, action="routing.defaults_created", object_type="tenancy.tenant",
                     object_id=tenant.pk, metadata={"created": created, "default_team": team.name})
