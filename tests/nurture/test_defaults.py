"""Every tenant gets nurture's defaults: settings (no postal address yet, so nothing is sent), the exit
signal types, and seed 002 §5's five sequences with the seed's durations and email counts, templates
that pass the save checks, active and ready to work. Idempotent; the data migration does the same for
tenants that existed before nurture."""
from __future__ import annotations

import importlib

import pytest
from django.apps import apps as current_apps
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.services import tenant_create
from leads.models import SignalType
from nurture.defaults import DEFAULT_SEQUENCES, nurture_defaults_create
from nurture.models import (
    NurtureSettings,
    Sequence,
    SequenceKind,
    SequenceStatus,
    Step,
    StepCondition,
)
from nurture.templating import template_problems, template_render
from nurture.validation import sequence_problems, sequence_steps
from tests.support.factories import TenantFactory

pytestmark = pytest.mark.django_db

# Seed 002 §5: (name, kind, email count, (shortest, longest) duration in days)
SEED_SEQUENCES = [
    ("New Lead", SequenceKind.NEW_LEAD, 5, (14, 21)),
    ("MQL Nurture", SequenceKind.MQL_NURTURE, 6, (21, 28)),
    ("Re-engagement", SequenceKind.RE_ENGAGEMENT, 3, (14, 14)),
    ("Post-demo", SequenceKind.POST_DEMO, 4, (7, 14)),
    ("Lost deal", SequenceKind.LOST_DEAL, 5, (60, 92)),
]

migration = importlib.import_module("nurture.migrations.0002_default_sequences")


@pytest.fixture
def provisioned():
    return tenant_create(slug="fresh-co", name="Fresh Co", admin_email="admin@fresh.test").tenant


def counts(tenant) -> tuple[int, int, int, int]:
    return (NurtureSettings.objects.unscoped().filter(tenant=tenant).count(),
            Sequence.objects.unscoped().filter(tenant=tenant).count(),
            Step.objects.unscoped().filter(tenant=tenant).count(),
            SignalType.objects.unscoped().filter(tenant=tenant, name__in=["email_reply", "meeting_booked"]).count())


def test_a_new_tenant_gets_the_five_seed_sequences_with_their_durations_and_email_counts(provisioned):
    sequences = {s.name: s for s in Sequence.objects.unscoped().filter(tenant=provisioned)}

    assert set(sequences) == {name for name, *_ in SEED_SEQUENCES}
    for name, kind, emails, (shortest, longest) in SEED_SEQUENCES:
        sequence = sequences[name]
        steps = sequence_steps(sequence)
        days = sum(s.delay_days + s.delay_hours / 24 for s in steps)
        assert sequence.kind == kind and sequence.status == SequenceStatus.ACTIVE, name
        assert len(steps) == emails, name
        assert shortest <= days <= longest + 1, f"{name}: {days} days"
        assert [s.position for s in steps] == list(range(1, emails + 1))


def test_the_audiences_and_ready_scores_follow_the_seed(provisioned):
    by_name = {s.name: s for s in Sequence.objects.unscoped().filter(tenant=provisioned)}

    new_lead = by_name["New Lead"]
    assert (new_lead.audience_classes, new_lead.audience_stages, new_lead.audience_statuses) == (
        ["nurture", "future_fit"], ["raw"], ["new", "recycled"])
    assert (new_lead.ready_score, new_lead.priority, new_lead.auto_enroll) == (41, 40, True)
    assert (by_name["MQL Nurture"].audience_stages, by_name["MQL Nurture"].ready_score) == (["mql"], 61)
    assert (by_name["Re-engagement"].audience_statuses, by_name["Re-engagement"].priority) == (["recycled"], 10)
    assert not by_name["Post-demo"].auto_enroll and by_name["Post-demo"].ready_score is None
    assert by_name["Lost deal"].audience_opportunity_lost and by_name["Lost deal"].ready_score == 61
    # The lowest priority number wins when a lead matches several: stale before lost deals before MQLs before raw.
    auto = [s.name for s in sorted(by_name.values(), key=lambda s: s.priority) if s.auto_enroll]
    assert auto == ["Re-engagement", "Lost deal", "MQL Nurture", "New Lead"]
    mql_steps = sequence_steps(by_name["MQL Nurture"])
    assert mql_steps[3].condition == StepCondition.OPENED_PREVIOUS and mql_steps[3].when_false == "skip"


def test_every_default_template_passes_the_save_checks_and_renders_without_the_unsubscribe_link(provisioned):
    sample = {"first_name": "Dana", "company": "Northwind", "owner_name": "Alex Morgan", "tenant_name": "Fresh Co"}
    with tenant_scope(provisioned):
        for sequence in Sequence.objects.unscoped().filter(tenant=provisioned):
            steps = sequence_steps(sequence)
            assert sequence_problems(sequence, steps) == {}, sequence.name
            sequence.full_clean()
            for step in steps:
                assert template_problems(step.subject) == [] and template_problems(step.body) == []
                step.full_clean()
                body = template_render(step.body, sample)
                assert body.startswith("Hi Dana,") and body.rstrip().endswith("Alex Morgan\nFresh Co")
                assert "unsubscribe" not in step.body.lower() and "{{" not in body
                assert "\n" not in step.subject and len(template_render(step.subject, sample)) <= 80
    without_name = template_render(DEFAULT_SEQUENCES[0]["steps"][0]["body"], {"tenant_name": "Fresh Co"})
    assert without_name.startswith("Hi there,")


def test_settings_start_without_a_postal_address_and_the_exit_signals_exist(provisioned):
    nurture = NurtureSettings.objects.unscoped().get(tenant=provisioned)

    assert nurture.postal_address == "" and nurture.from_name == "Fresh Co" and len(nurture.bounce_secret) >= 32
    labels = dict(SignalType.objects.unscoped().filter(tenant=provisioned).values_list("name", "label"))
    assert labels["email_reply"] == "Email reply" and labels["meeting_booked"] == "Meeting booked"
    assert AuditEvent.objects.unscoped().filter(tenant=provisioned, action="nurture.defaults_created").count() == 1


def test_creating_the_defaults_again_changes_nothing(provisioned):
    before = counts(provisioned)
    Sequence.objects.unscoped().filter(tenant=provisioned, name="Post-demo").delete()

    created = nurture_defaults_create(tenant=provisioned, actor=SYSTEM)

    assert created == {"settings": 0, "signal_types": 0, "sequences": 0, "steps": 0}
    assert counts(provisioned)[1] == before[1] - 1, "a sequence the tenant deleted stays deleted"
    assert AuditEvent.objects.unscoped().filter(tenant=provisioned, action="nurture.defaults_created").count() == 1


def test_a_tenant_with_its_own_sequence_and_signal_type_keeps_them(tenant):
    Sequence.objects.unscoped().create(tenant=tenant, name="Our own", status=SequenceStatus.DRAFT)
    SignalType.objects.unscoped().create(tenant=tenant, name="email_reply", label="Replied (CRM)")

    created = nurture_defaults_create(tenant=tenant, actor=SYSTEM)

    assert created == {"settings": 1, "signal_types": 1, "sequences": 0, "steps": 0}
    assert SignalType.objects.unscoped().get(tenant=tenant, name="email_reply").label == "Replied (CRM)"


def test_the_data_migration_gives_existing_tenants_the_defaults_once_with_historical_models(provisioned):
    older = TenantFactory(slug="older-co", name="Older Co")  # made without tenant_create: no nurture yet
    historical = MigrationLoader(connection).project_state(("nurture", "0002_default_sequences")).apps
    provisioned_before = counts(provisioned)

    migration.nurture_defaults_for_existing_tenants(historical, None)

    assert counts(older) == (1, 5, 23, 2)
    assert counts(provisioned) == provisioned_before
    assert NurtureSettings.objects.unscoped().get(tenant=older).from_name == "Older Co"
    event = AuditEvent.objects.unscoped().get(tenant=older, action="nurture.defaults_created")
    assert event.metadata["created"]["sequences"] == 5

    migration.nurture_defaults_for_existing_tenants(current_apps, None)  # again, with today's models

    assert counts(older) == (1, 5, 23, 2)
    assert AuditEvent.objects.unscoped().filter(tenant=older, action="nurture.defaults_created").count() == 1
