"""The call/email/meeting outcome taxonomy: seeded for a new tenant and (idempotently) for existing ones, edited in
the admin by tenant admins and marketing ops only (never another tenant's), offered in the log form, refused when
unknown (API: 400 with the field; the log form: tests/workspace/test_lead_outcomes_ui.py), and deciding contact
vs attempt: only contact stops the SLA clock."""
from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.urls import reverse

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leadmgmt.tenancy.services import tenant_create
from leads.activity_outcomes import DEFAULT_ACTIVITY_OUTCOMES, activity_outcomes_seed
from leads.models import Activity, ActivityOutcome, Lead, LeadStatus
from routing.defaults import routing_defaults_create
from routing.models import SlaClock
from tests.support.workspace import owned_lead, person
from workspace.services.activities import activity_log

pytestmark = pytest.mark.django_db


def fresh(lead) -> Lead:
    return Lead.objects.unscoped().get(pk=lead.pk)


def running(lead):
    return SlaClock.objects.unscoped().filter(lead=lead, stopped_at__isnull=True).first()


@pytest.fixture
def rep(tenant):
    from leadmgmt.audit.actors import SYSTEM

    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    activity_outcomes_seed(tenant_id=tenant.pk)
    return person(tenant, username="dana@acme.test")


# --- seeding -----------------------------------------------------------------------------------------


def test_a_new_tenant_gets_the_default_outcomes():
    tenant = tenant_create(slug="initech", name="Initech", admin_email="admin@initech.test").tenant
    rows = list(ActivityOutcome.objects.unscoped().filter(tenant=tenant).order_by("position"))
    assert [r.code for r in rows] == [d.code for d in DEFAULT_ACTIVITY_OUTCOMES]
    contact = {r.code for r in rows if r.counts_as_contact}
    assert {"connected", "replied", "held", "meeting_booked"} <= contact
    assert not contact & {"no_answer", "voicemail", "busy", "wrong_number", "sent", "bounced", "no_show"}
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="activity_outcomes.defaults_created").exists()


def test_the_data_migration_seeds_existing_tenants_once_and_keeps_their_edits(tenant, other_tenant):
    migration = importlib.import_module("leads.migrations.0007_activity_outcomes")
    ActivityOutcome.objects.unscoped().create(tenant=tenant, code="no_answer", label="Nobody picked up",
                                              kind="call", position=1)
    migration.outcomes_for_existing_tenants(django_apps, None)
    migration.outcomes_for_existing_tenants(django_apps, None)  # idempotent
    for t in (tenant, other_tenant):
        assert ActivityOutcome.objects.unscoped().filter(tenant=t).count() == len(DEFAULT_ACTIVITY_OUTCOMES)
    assert ActivityOutcome.objects.unscoped().get(tenant=tenant, code="no_answer").label == "Nobody picked up"
    assert AuditEvent.objects.unscoped().filter(action="activity_outcomes.defaults_created").count() == 2


# --- contact vs attempt ---------------------------------------------------------------------------------


def test_no_answer_and_a_blank_call_are_attempts_and_the_clock_keeps_running(tenant, rep):
    lead = owned_lead(tenant, rep)
    activity_log(lead=lead, kind="call", actor=Actor.for_user(rep), outcome="No answer")
    activity_log(lead=lead, kind="call", actor=Actor.for_user(rep))
    activity_log(lead=lead, kind="email", actor=Actor.for_user(rep), subject="Following up")  # sent: an attempt
    lead = fresh(lead)
    assert running(lead) is not None and lead.first_contacted_at is None
    assert lead.contact_attempts == 3 and lead.status == LeadStatus.CONTACTED  # worked, not reached
    assert list(Activity.objects.unscoped().filter(lead=lead).order_by("id").values_list("outcome", flat=True)) == [
        "no_answer", "", ""]


def test_connected_is_contact_stops_the_clock_and_resets_the_attempts(tenant, rep):
    lead = owned_lead(tenant, rep)
    activity_log(lead=lead, kind="call", actor=Actor.for_user(rep), outcome="voicemail")
    activity_log(lead=lead, kind="call", actor=Actor.for_user(rep), outcome="connected")
    lead = fresh(lead)
    assert running(lead) is None and lead.first_contacted_at is not None and lead.contact_attempts == 0
    clock = SlaClock.objects.unscoped().get(lead=lead)
    assert clock.stop_reason == "first_contact"


def test_a_meeting_without_an_outcome_is_contact_but_a_no_show_is_not(tenant, rep):
    no_show = owned_lead(tenant, rep)
    activity_log(lead=no_show, kind="meeting", actor=Actor.for_user(rep), outcome="no-show")
    assert running(no_show) is not None
    held = owned_lead(tenant, rep)
    activity_log(lead=held, kind="meeting", actor=Actor.for_user(rep), subject="Discovery")
    assert running(held) is None and fresh(held).first_contacted_at is not None


def test_the_tenant_decides_what_counts_as_contact(tenant, rep):
    ActivityOutcome.objects.unscoped().filter(tenant=tenant, code="sent").update(counts_as_contact=True)
    lead = owned_lead(tenant, rep)
    activity_log(lead=lead, kind="email", actor=Actor.for_user(rep), subject="Intro")  # blank email = sent
    assert running(lead) is None


@pytest.mark.parametrize("kind,outcome,message", [
    ("call", "telepathy", "Unknown outcome “telepathy”. Choose one of: connected, voicemail"),
    ("call", "bounced", "“Bounced” is not an outcome of a call."),
    ("note", "connected", "“Connected” is not an outcome of a note."),
])
def test_an_unknown_or_unfitting_outcome_is_refused_and_nothing_is_logged(tenant, rep, kind, outcome, message):
    from django.core.exceptions import ValidationError

    lead = owned_lead(tenant, rep)
    with pytest.raises(ValidationError) as refused:
        activity_log(lead=lead, kind=kind, actor=Actor.for_user(rep), outcome=outcome, body="x")
    assert message in refused.value.message_dict["outcome"][0]
    assert not Activity.objects.unscoped().filter(lead=lead).exists() and running(lead) is not None


def test_a_switched_off_outcome_is_no_longer_accepted(tenant, rep):
    from django.core.exceptions import ValidationError

    ActivityOutcome.objects.unscoped().filter(tenant=tenant, code="busy").update(is_active=False)
    with pytest.raises(ValidationError):
        activity_log(lead=owned_lead(tenant, rep), kind="call", actor=Actor.for_user(rep), outcome="busy")


# --- the API --------------------------------------------------------------------------------------------


def test_the_api_takes_a_code_refuses_an_unknown_one_and_keeps_accepting_blank(tenant, rep, client_for):
    lead = owned_lead(tenant, rep)
    client = client_for(rep)
    path = f"/api/v1/leads/{lead.pk}/activities/"
    unknown = client.post(path, {"kind": "call", "outcome": "telepathy"}, format="json")
    assert unknown.status_code == 400 and "outcome" in unknown.json()["errors"]
    blank = client.post(path, {"kind": "call", "outcome": ""}, format="json")
    assert blank.status_code == 201 and blank.json()["outcome"] == ""
    assert running(lead) is not None
    labelled = client.post(path, {"kind": "call", "outcome": "Connected"}, format="json")
    assert labelled.status_code == 201 and labelled.json()["outcome"] == "connected"
    assert running(lead) is None


# --- the admin ----------------------------------------------------------------------------------------


@pytest.fixture
def staff(tenant, make_member, client):
    def _as(role):
        user = make_member(tenant, role=role)
        user.is_staff = True
        user.save()
        client.force_login(user)
        return client
    activity_outcomes_seed(tenant_id=tenant.pk)
    return _as


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MARKETING_OPS])
def test_tenant_admins_and_marketing_ops_edit_the_taxonomy_of_their_tenant_only(tenant, other_tenant, staff, role):
    activity_outcomes_seed(tenant_id=other_tenant.pk)
    ActivityOutcome.objects.unscoped().filter(tenant=other_tenant, code="busy").update(label="Globex busy")
    client = staff(role)
    listing = client.get(reverse("admin:leads_activityoutcome_changelist"))
    assert listing.status_code == 200 and "Left voicemail" in listing.content.decode()
    assert "Globex busy" not in listing.content.decode()
    theirs = ActivityOutcome.objects.unscoped().get(tenant=other_tenant, code="busy")
    assert client.get(reverse("admin:leads_activityoutcome_change", args=[theirs.pk])).status_code == 302

    added = client.post(reverse("admin:leads_activityoutcome_add"), {
        "code": "gatekeeper", "label": "Reached the gatekeeper", "kind": "call", "position": 55, "is_active": "on"})
    assert added.status_code == 302
    row = ActivityOutcome.objects.unscoped().get(tenant=tenant, code="gatekeeper")
    assert not row.counts_as_contact
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="activity_outcome.created").exists()
    duplicate = client.post(reverse("admin:leads_activityoutcome_add"), {
        "code": "busy", "label": "Busy again", "kind": "call", "position": 1, "is_active": "on"})
    assert duplicate.status_code == 200 and "An outcome with this code already exists." in duplicate.content.decode()
    assert ActivityOutcome.objects.unscoped().filter(tenant=other_tenant).count() == len(DEFAULT_ACTIVITY_OUTCOMES)


def test_an_outcome_in_use_keeps_its_code_and_cannot_be_deleted(tenant, staff):
    client = staff(Role.ADMIN)
    rep = person(tenant)
    from tests.support.factories import LeadFactory

    activity_log(lead=LeadFactory(tenant=tenant), kind="call", actor=Actor.for_user(rep), outcome="busy")
    busy = ActivityOutcome.objects.unscoped().get(tenant=tenant, code="busy")
    renamed = client.post(reverse("admin:leads_activityoutcome_change", args=[busy.pk]), {
        "code": "engaged", "label": "Busy", "kind": "call", "position": 40, "is_active": "on"})
    assert renamed.status_code == 200 and "1 activity was logged as “busy”" in renamed.content.decode()
    delete = client.post(reverse("admin:leads_activityoutcome_delete", args=[busy.pk]), {"post": "yes"})
    assert delete.status_code in (200, 403) and ActivityOutcome.objects.unscoped().filter(pk=busy.pk).exists()


@pytest.mark.parametrize("role", [Role.SDR, Role.AE, Role.MANAGER])
def test_reps_and_managers_cannot_reach_the_taxonomy_admin(tenant, staff, role):
    client = staff(role)
    assert client.get(reverse("admin:leads_activityoutcome_changelist")).status_code == 403
