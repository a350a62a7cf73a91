"""Hotter is never slower: with the default SLA policies, for every source and stage, the policy a hotter
band matches allows no more time than the one a cooler band matches; and the `..._hot_policies_first`
migration brings existing tenants' unedited seed policies there, once, leaving edited ones alone."""
from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.audit.models import AuditEvent
from leads.models import Lead, LeadStage
from routing.defaults import PAID_SOURCES, WEB_SOURCES, routing_defaults_create
from routing.models import EscalationStep, SlaPolicy
from routing.services.sla_clocks import sla_policy_for
from tests.support.routing import NOW

pytestmark = pytest.mark.django_db

BANDS_COOL_TO_HOT = ["cold", "warm", "mql", "sal", "sql"]  # the default scoring model's bands (seed 003)
KNOWN_SOURCES = [*WEB_SOURCES, *PAID_SOURCES, "event", "referral", "outbound", "import", "partner", "api", ""]
STAGES = [LeadStage.RAW, LeadStage.MQL, LeadStage.SAL, LeadStage.SQL]
migration = importlib.import_module("routing.migrations.0003_hot_policies_first")


def windows(policies, *, source: str, stage: str, accepted: bool = False) -> list[int | None]:
    """The minutes of the policy each band matches, coolest band first (None: no clock at all)."""
    result = []
    for band in BANDS_COOL_TO_HOT:
        lead = Lead(source=source, band=band, stage=stage, accepted_at=NOW if accepted else None)
        policy = sla_policy_for(lead=lead, policies=policies)
        result.append(policy.minutes if policy is not None else None)
    return result


def hotter_never_slower(minutes: list[int | None]) -> bool:
    known = [m for m in minutes if m is not None]
    return len(known) == len(minutes) and all(hot <= cool for cool, hot in zip(known, known[1:], strict=False))


def stored_policies(tenant) -> list[SlaPolicy]:
    return list(SlaPolicy.objects.unscoped().filter(tenant=tenant, is_active=True).order_by("position", "id"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=st.one_of(st.sampled_from(KNOWN_SOURCES), st.text(max_size=20)),
       stage=st.sampled_from(STAGES), accepted=st.booleans())
def test_default_policies_never_give_a_hotter_band_more_time(tenant, source, stage, accepted):
    if not SlaPolicy.objects.unscoped().filter(tenant=tenant).exists():
        routing_defaults_create(tenant=tenant, actor=SYSTEM)
    minutes = windows(stored_policies(tenant), source=source, stage=stage, accepted=accepted)
    assert hotter_never_slower(minutes), f"{source!r} at stage {stage}: {dict(zip(BANDS_COOL_TO_HOT, minutes, strict=True))}"


@pytest.mark.parametrize("source", KNOWN_SOURCES)
def test_every_known_source_gets_a_clock_that_tightens_with_the_band(tenant, source):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    minutes = windows(stored_policies(tenant), source=source, stage=LeadStage.RAW)
    assert hotter_never_slower(minutes)
    hot = minutes[BANDS_COOL_TO_HOT.index("sql")]
    assert hot <= 60, "a hot lead is never on the 4-hour catch-all"
    if source in WEB_SOURCES or source in PAID_SOURCES:
        assert hot == 5


# --- the migration for existing tenants ----------------------------------------------------------------


def old_defaults(tenant) -> None:
    """The seed SLA policies as `routing.defaults` created them before this fix (the migration's frozen values)."""
    acceptance = dict(position=10, name="AE accepts an SQL within 24 hours", kind="acceptance", sources=[], bands=[],
                      stages=["sql"], minutes=1440, is_active=True, business_hours_only=False)
    event = dict(position=30, name="Trade-show leads: first contact in 24 hours", kind="first_contact",
                 sources=["event"], bands=[], stages=[], minutes=1440, is_active=True, business_hours_only=False)
    for seed in (acceptance, migration.OLD_HOT_WEB, event, migration.WARM, migration.CATCH_ALL):
        policy = SlaPolicy.objects.unscoped().create(tenant=tenant, **seed)
        EscalationStep.objects.unscoped().create(tenant=tenant, policy=policy, level=1, action="alert_manager",
                                                 after_minutes=0)


def policy_rows(tenant) -> list[tuple]:
    return list(SlaPolicy.objects.unscoped().filter(tenant=tenant).order_by("position")
                .values_list("position", "name", "sources", "bands", "minutes"))


def test_the_old_defaults_gave_hot_paid_leads_4_hours_while_warm_ones_got_1(tenant):
    old_defaults(tenant)
    assert windows(stored_policies(tenant), source="paid_search", stage=LeadStage.RAW) == [240, 60, 240, 240, 240]


def test_the_migration_fixes_a_tenant_with_the_old_defaults_once(tenant, other_tenant):
    old_defaults(tenant)
    old_defaults(other_tenant)

    migration.sla_policies_hot_first(apps, None)

    rows = policy_rows(tenant)
    assert [r[1] for r in rows] == [
        "AE accepts an SQL within 24 hours",
        "Hot / MQL web and paid leads: first contact in 5 minutes",
        "Hot / MQL leads from other sources: first contact in 1 hour",
        "Trade-show leads: first contact in 24 hours",
        "Warm leads: first contact in 1 hour",
        "Every other lead: first contact in 4 hours",
    ]
    assert set(PAID_SOURCES) <= set(rows[1][2]) and rows[2][2:] == ([], ["mql", "sal", "sql"], 60)
    added = SlaPolicy.objects.unscoped().get(tenant=tenant, position=25)
    assert list(EscalationStep.objects.unscoped().filter(policy=added).order_by("level")
                .values_list("level", "action", "after_minutes")) == [(1, "alert_manager", 0), (2, "reassign", 180)]
    for source in KNOWN_SOURCES:
        assert hotter_never_slower(windows(stored_policies(tenant), source=source, stage=LeadStage.RAW)), source
    assert policy_rows(other_tenant) == rows, "every tenant is fixed"
    audit = AuditEvent.objects.unscoped().get(tenant=tenant, action="routing.sla_policies_hot_first")
    assert set(audit.metadata) == {"paid_sources_added_to", "added"}

    migration.sla_policies_hot_first(apps, None)  # idempotent

    assert policy_rows(tenant) == rows
    assert AuditEvent.objects.unscoped().filter(action="routing.sla_policies_hot_first").count() == 2


def test_the_migration_leaves_policies_a_tenant_edited_alone(tenant):
    old_defaults(tenant)
    SlaPolicy.objects.unscoped().filter(tenant=tenant, position=20).update(minutes=10)  # ops chose 10 minutes
    SlaPolicy.objects.unscoped().filter(tenant=tenant, position=40).update(minutes=30)  # and warm in 30
    before = policy_rows(tenant)

    migration.sla_policies_hot_first(apps, None)

    assert policy_rows(tenant) == before
    assert not AuditEvent.objects.unscoped().filter(tenant=tenant, action="routing.sla_policies_hot_first").exists()


def test_the_migration_adds_nothing_where_a_custom_policy_sits_between_hot_and_trade_show(tenant):
    old_defaults(tenant)
    SlaPolicy.objects.unscoped().create(tenant=tenant, position=25, name="Partners: 2 hours", sources=["partner"],
                                        minutes=120)

    migration.sla_policies_hot_first(apps, None)

    names = [row[1] for row in policy_rows(tenant)]
    assert "Hot / MQL web and paid leads: first contact in 5 minutes" in names, "the unedited web policy is still fixed"
    assert "Hot / MQL leads from other sources: first contact in 1 hour" not in names


def test_a_new_tenant_gets_the_fixed_defaults_and_the_migration_changes_nothing_there(tenant):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    before = policy_rows(tenant)

    migration.sla_policies_hot_first(apps, None)

    assert policy_rows(tenant) == before
