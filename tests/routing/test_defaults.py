"""Default routing set-up: the exact rule set, the seed SLA figures and ladders, the rejection taxonomy,
business hours; idempotent; new tenants get it through tenant_create; the demo tenant can route."""
from __future__ import annotations

import json
from datetime import time
from io import StringIO

import pytest
from django.core.management import call_command

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Membership, Role, Team
from leadmgmt.tenancy.services import DEFAULT_TEAM, tenant_create
from routing.defaults import routing_defaults_create
from routing.models import (
    BusinessHours,
    EscalationStep,
    RejectionReason,
    RoutingRule,
    RoutingSettings,
    SlaPolicy,
    Territory,
)

pytestmark = pytest.mark.django_db
ROUTING_MODELS = [RoutingRule, SlaPolicy, EscalationStep, RejectionReason, BusinessHours, RoutingSettings, Territory]


def counts(tenant) -> dict[str, int]:
    return {m.__name__: m.objects.unscoped().filter(tenant=tenant).count() for m in ROUTING_MODELS}


def ladder(policy) -> list[tuple[int, str, int]]:
    return list(EscalationStep.objects.unscoped().filter(policy=policy).order_by("level")
                .values_list("level", "action", "after_minutes"))


def test_rule_set_is_named_account_then_sdr_round_robin_then_unassigned_fallback(tenant):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)

    team = Team.objects.unscoped().get(tenant=tenant, name=DEFAULT_TEAM)
    rules = list(RoutingRule.objects.unscoped().filter(tenant=tenant).order_by("is_fallback", "position")
                 .values_list("position", "name", "strategy", "team_id", "roles", "is_fallback", "is_active",
                              "conditions"))
    assert rules == [
        (10, "Named account → account owner", "named_account", None, [], False, True, []),
        (20, "Round-robin among available SDRs", "round_robin", team.pk, ["sdr"], False, True, []),
        (1000, "Unassigned", "unassigned", None, [], True, True, []),
    ]
    assert RoutingSettings.objects.unscoped().get(tenant=tenant).default_team == team


def test_sla_policies_carry_the_seed_figures_and_escalation_ladders(tenant):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)

    policies = {p.name: p for p in SlaPolicy.objects.unscoped().filter(tenant=tenant)}
    hot = policies["Hot / MQL web and paid leads: first contact in 5 minutes"]
    assert (hot.kind, hot.minutes, hot.bands) == ("first_contact", 5, ["mql", "sal", "sql"])
    assert {"web_form", "chat", "paid_search", "paid_social"} <= set(hot.sources)
    assert ladder(hot) == [(1, "alert_manager", 0), (2, "reassign", 25)]
    hot_other = policies["Hot / MQL leads from other sources: first contact in 1 hour"]
    assert (hot_other.minutes, hot_other.bands, hot_other.sources) == (60, ["mql", "sal", "sql"], [])
    assert ladder(hot_other) == [(1, "alert_manager", 0), (2, "reassign", 180)], "reassigned 4 h after assignment"
    assert hot.position < hot_other.position < min(p.position for p in policies.values()
                                                   if p.kind == "first_contact" and p not in (hot, hot_other))
    warm = policies["Warm leads: first contact in 1 hour"]
    assert (warm.minutes, warm.bands, warm.sources) == (60, ["warm"], [])
    assert ladder(warm) == [(1, "alert_manager", 0), (2, "reassign", 23 * 60)], "reassigned 24 h after assignment"
    event = policies["Trade-show leads: first contact in 24 hours"]
    assert (event.minutes, event.sources) == (24 * 60, ["event"])
    acceptance = policies["AE accepts an SQL within 24 hours"]
    assert (acceptance.kind, acceptance.minutes, acceptance.stages) == ("acceptance", 24 * 60, ["sql"])
    general = policies["Every other lead: first contact in 4 hours"]
    assert (general.minutes, general.sources, general.bands, general.stages) == (240, [], [], [])
    # seed 001: alert the manager after 4 hours, reassign after 24.
    assert ladder(general) == [(1, "alert_manager", 0), (2, "reassign", 20 * 60)]
    assert max(policies.values(), key=lambda p: p.position) == general, "the catch-all comes last"
    assert all(p.is_active and not p.business_hours_only for p in policies.values())


def test_rejection_taxonomy_and_business_hours(tenant):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)

    reasons = {r.code: r for r in RejectionReason.objects.unscoped().filter(tenant=tenant)}
    assert {"not_icp", "no_budget", "no_authority", "no_need", "not_now", "bad_contact_data", "duplicate",
            "competitor", "student_or_job_seeker", "existing_customer", "spam"} == set(reasons)
    assert reasons["not_icp"].label == "Not our ideal customer"
    assert reasons["not_now"].label == "Timing: not now"
    assert [code for code, r in reasons.items() if r.nurture] == ["not_now"]
    hours = list(BusinessHours.objects.unscoped().filter(tenant=tenant).order_by("weekday")
                 .values_list("weekday", "opens_at", "closes_at"))
    assert hours == [(day, time(9), time(17)) for day in range(5)]


def test_running_it_again_changes_nothing_and_keeps_edits(tenant):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    RoutingRule.objects.unscoped().filter(tenant=tenant, position=20).update(name="Edited by ops")
    RejectionReason.objects.unscoped().filter(tenant=tenant, code="spam").delete()
    before = counts(tenant)
    audits = AuditEvent.objects.unscoped().filter(tenant=tenant).count()

    routing_defaults_create(tenant=tenant, actor=SYSTEM)

    assert counts(tenant) == before
    assert AuditEvent.objects.unscoped().filter(tenant=tenant).count() == audits
    assert RoutingRule.objects.unscoped().get(tenant=tenant, position=20).name == "Edited by ops"


def test_a_new_tenant_gets_the_defaults_through_tenant_create(other_tenant):
    provisioned = tenant_create(slug="initech", name="Initech", admin_email="boss@initech.test")
    tenant = provisioned.tenant

    assert counts(tenant) == {"RoutingRule": 3, "SlaPolicy": 6, "EscalationStep": 12, "RejectionReason": 11,
                              "BusinessHours": 5, "RoutingSettings": 1, "Territory": 0}
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="routing.defaults_created").count() == 1
    assert counts(other_tenant) == dict.fromkeys(counts(other_tenant), 0), "other tenants are left alone"


def test_demo_tenant_has_teams_with_a_manager_sdrs_aes_and_a_territory(tmp_path):
    def seed():
        out = StringIO()
        call_command("seed_demo", "--json", "--credentials-file", str(tmp_path / "c.json"), stdout=out)
        return json.loads(out.getvalue())

    seed()
    from leadmgmt.tenancy.models import Tenant

    demo = Tenant.objects.get(slug="demo")
    before = counts(demo)
    seed()

    assert counts(demo) == before, "seeding twice adds nothing"
    sdr_team = Team.objects.unscoped().get(tenant=demo, name=DEFAULT_TEAM)
    ae_team = Team.objects.unscoped().get(tenant=demo, name="Account Executives")
    assert sdr_team.manager.username == ae_team.manager.username == "manager@demo.test"
    members = Membership.objects.unscoped().filter(tenant=demo)
    assert members.filter(team=sdr_team, role=Role.SDR).count() == 2
    assert members.filter(team=ae_team, role=Role.AE).count() == 2
    assert Territory.objects.unscoped().get(tenant=demo).team == ae_team
    assert RoutingRule.objects.unscoped().get(tenant=demo, position=20).team == sdr_team
