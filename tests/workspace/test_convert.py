"""lead_convert (a lead into an opportunity: created or the SQL's kept, stage transition, SLA stop, audit, stale
and closed-lead refusals, idempotency) and the `expected_owner_id` stale check of activity_log and lead_recycle."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leads.models import (
    Activity,
    Lead,
    LeadStage,
    LeadStatus,
    Opportunity,
    OpportunityStage,
    StageTransition,
)
from routing.defaults import routing_defaults_create
from routing.models import SlaClock, Territory, Trigger
from routing.services.aging import lead_recycle
from routing.services.assign import lead_assign
from tests.support.factories import AccountFactory
from tests.support.routing import NOW, as_user, fresh, lead, owned, rep, running, team
from workspace.services.activities import activity_log
from workspace.services.lifecycle import lead_convert, lead_qualify, opportunity_name_default

pytestmark = pytest.mark.django_db
BANT = {"budget": "$50k approved", "authority": "VP Sales signs", "need": "Reps lose inbound leads",
        "timeline": "This quarter"}


@pytest.fixture
def org(tenant):
    """The routing defaults, an SDR and two AEs of a territory for Germany."""
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    sdrs, aes = team(tenant, "SDRs"), team(tenant, "AEs")
    people = {"sdr": rep(tenant, sdrs), "ae1": rep(tenant, aes, role=Role.AE), "ae2": rep(tenant, aes, role=Role.AE)}
    Territory.objects.unscoped().create(tenant=tenant, name="DACH", countries=["Germany"], team=aes)
    return people








# --- converting --------------------------------------------------------------------------------------


def test_converting_an_open_lead_opens_an_opportunity_for_its_owner(tenant, org):
    sdr = org["sdr"]
    account = AccountFactory(tenant=tenant, domain="initech.example", name="Initech")
    mql = owned(tenant, sdr, first_name="Peter", last_name="Gibbons", company="Initech", account=account)
    assert running(mql) is not None

    opportunity = lead_convert(lead=mql, actor=as_user(sdr), expected_owner_id=sdr.pk, now=NOW + timedelta(minutes=5))

    assert opportunity.name == "Initech – Peter Gibbons"
    assert (opportunity.stage, opportunity.owner_id, opportunity.account_id) == (
        OpportunityStage.DISCOVERY, sdr.pk, account.pk)
    assert opportunity.accepted_at == NOW + timedelta(minutes=5) and opportunity.qualified_by_id == sdr.pk
    converted = fresh(mql)
    assert (converted.status, converted.stage, converted.owner_id) == (
        LeadStatus.CONVERTED, LeadStage.OPPORTUNITY, sdr.pk)
    assert converted.accepted_at == NOW + timedelta(minutes=5)
    assert running(converted) is None
    assert SlaClock.objects.unscoped().get(lead=converted).stop_reason == "converted"
    move = StageTransition.objects.unscoped().get(lead=converted)
    assert (move.from_stage, move.to_stage, move.actor_user_id) == (LeadStage.MQL, LeadStage.OPPORTUNITY, sdr.pk)
    event = AuditEvent.objects.unscoped().get(action="lead.converted", object_id=str(mql.pk))
    assert event.changes["status"] == [LeadStatus.NEW, LeadStatus.CONVERTED]
    assert event.changes["stage"] == [LeadStage.MQL, LeadStage.OPPORTUNITY]
    assert event.metadata["opportunity_id"] == opportunity.pk and event.metadata["opportunity_created"] is True
    assert AuditEvent.objects.unscoped().filter(action="opportunity.created", object_id=str(opportunity.pk)).exists()


def test_a_given_name_and_stage_are_used(tenant, org):
    mql = owned(tenant, org["sdr"])
    opportunity = lead_convert(lead=mql, actor=as_user(org["sdr"]), name="  Initech   renewal ",
                               stage=OpportunityStage.DEMO)
    assert (opportunity.name, opportunity.stage) == ("Initech renewal", OpportunityStage.DEMO)


def test_the_default_name_falls_back_to_the_person_or_the_company():
    assert opportunity_name_default(Lead(company="Initech", first_name="Peter")) == "Initech – Peter"
    assert opportunity_name_default(Lead(company="", email="ada@acme.example")) == "ada@acme.example"
    assert opportunity_name_default(Lead(company="Initech", email="", phone="")) == "Initech"


def test_the_account_is_found_by_the_company_domain(tenant, org):
    account = AccountFactory(tenant=tenant, domain="acme.example")
    mql = owned(tenant, org["sdr"], company_domain="acme.example")
    assert lead_convert(lead=mql, actor=as_user(org["sdr"])).account_id == account.pk


def test_converting_twice_returns_the_same_opportunity_and_changes_nothing(tenant, org):
    mql = owned(tenant, org["sdr"])
    first = lead_convert(lead=mql, actor=as_user(org["sdr"]), now=NOW)
    second = lead_convert(lead=fresh(mql), actor=as_user(org["sdr"]), name="Another name", now=NOW + timedelta(hours=1))
    assert second.pk == first.pk and fresh(first).name == first.name
    assert Opportunity.objects.unscoped().filter(lead=mql).count() == 1
    assert AuditEvent.objects.unscoped().filter(action="lead.converted").count() == 1
    assert StageTransition.objects.unscoped().filter(lead=mql).count() == 1


def test_converting_an_sql_accepts_its_opportunity_instead_of_opening_a_second(tenant, org):
    mql = owned(tenant, org["sdr"], country="Germany")
    handed_off = lead_qualify(lead=mql, actor=as_user(org["sdr"]), now=NOW, **BANT)
    ae = handed_off.owner
    sql = fresh(mql)
    assert (sql.stage, sql.owner_id, running(sql).kind) == (LeadStage.SQL, ae.pk, "acceptance")

    opportunity = lead_convert(lead=sql, actor=as_user(ae), expected_owner_id=ae.pk, now=NOW + timedelta(hours=2))

    assert opportunity.pk == handed_off.pk and Opportunity.objects.unscoped().filter(lead=mql).count() == 1
    assert opportunity.accepted_at == NOW + timedelta(hours=2) and opportunity.owner_id == ae.pk
    assert opportunity.budget == BANT["budget"] and opportunity.name == handed_off.name  # kept as qualified
    converted = fresh(mql)
    assert (converted.status, converted.stage) == (LeadStatus.CONVERTED, LeadStage.OPPORTUNITY)
    assert running(converted) is None
    assert SlaClock.objects.unscoped().get(lead=converted, kind="acceptance").stop_reason == "converted"
    event = AuditEvent.objects.unscoped().get(action="lead.converted")
    assert event.metadata["opportunity_created"] is False
    assert "accepted_at" in AuditEvent.objects.unscoped().get(action="opportunity.updated").changes


def test_a_kept_opportunity_follows_a_reassigned_sql(tenant, org):
    mql = owned(tenant, org["sdr"], country="Germany")
    handed_off = lead_qualify(lead=mql, actor=as_user(org["sdr"]), **BANT)
    other_ae = org["ae2"] if handed_off.owner_id == org["ae1"].pk else org["ae1"]
    lead_assign(lead=fresh(mql), owner=other_ae, actor=SYSTEM, trigger=Trigger.REASSIGNMENT)
    opportunity = lead_convert(lead=fresh(mql), actor=as_user(other_ae), stage=OpportunityStage.PROPOSAL)
    assert (opportunity.pk, opportunity.owner_id, opportunity.stage) == (
        handed_off.pk, other_ae.pk, OpportunityStage.PROPOSAL)


@pytest.mark.parametrize("status", [LeadStatus.REJECTED, LeadStatus.UNQUALIFIED, LeadStatus.ARCHIVED,
                                    LeadStatus.RECYCLED])
def test_a_closed_lead_cannot_be_converted(tenant, org, status):
    mql = owned(tenant, org["sdr"])
    Lead.objects.unscoped().filter(pk=mql.pk).update(status=status)
    with pytest.raises(ValidationError) as refused:
        lead_convert(lead=fresh(mql), actor=as_user(org["sdr"]))
    assert "cannot be converted" in refused.value.message_dict["status"][0]
    assert not Opportunity.objects.unscoped().exists() and fresh(mql).stage == LeadStage.MQL


def test_a_converted_lead_without_an_opportunity_is_refused_not_reopened(tenant, org):
    mql = owned(tenant, org["sdr"])
    Lead.objects.unscoped().filter(pk=mql.pk).update(status=LeadStatus.CONVERTED)
    with pytest.raises(ValidationError) as refused:
        lead_convert(lead=fresh(mql), actor=as_user(org["sdr"]))
    assert "status" in refused.value.message_dict and not Opportunity.objects.unscoped().exists()


def test_an_unassigned_lead_cannot_be_converted(tenant, org):
    unowned = lead(tenant, stage=LeadStage.MQL)
    with pytest.raises(ValidationError) as refused:
        lead_convert(lead=unowned, actor=as_user(org["sdr"]))
    assert "owner" in refused.value.message_dict
    assert fresh(unowned).status == LeadStatus.NEW and not Opportunity.objects.unscoped().exists()


def test_a_lead_that_changed_hands_meanwhile_is_not_converted(tenant, org):
    mql = owned(tenant, org["sdr"])
    shown_owner = mql.owner_id
    lead_assign(lead=fresh(mql), owner=org["ae1"], actor=SYSTEM, trigger=Trigger.REASSIGNMENT)
    with pytest.raises(ValidationError) as refused:
        lead_convert(lead=mql, actor=as_user(org["sdr"]), expected_owner_id=shown_owner)
    assert "reassigned meanwhile" in refused.value.message_dict["owner"][0]
    assert fresh(mql).status == LeadStatus.NEW and not Opportunity.objects.unscoped().exists()
    assert not AuditEvent.objects.unscoped().filter(action="lead.converted").exists()


@pytest.mark.parametrize("name,stage,field", [
    ("x" * 201, "", "name"),
    ("Deal\x00", "", "name"),
    ("", OpportunityStage.WON, "stage"),
    ("", "closed", "stage"),
])
def test_bad_input_is_a_field_error_and_writes_nothing(tenant, org, name, stage, field):
    mql = owned(tenant, org["sdr"])
    with pytest.raises(ValidationError) as refused:
        lead_convert(lead=mql, actor=as_user(org["sdr"]), name=name, stage=stage)
    assert list(refused.value.message_dict) == [field]
    assert fresh(mql).status == LeadStatus.NEW and not Opportunity.objects.unscoped().exists()
    assert running(mql) is not None


def test_converting_never_touches_another_tenant(tenant, other_tenant, org):
    AccountFactory(tenant=other_tenant, domain="acme.example")
    mql = owned(tenant, org["sdr"], company_domain="acme.example")
    opportunity = lead_convert(lead=mql, actor=as_user(org["sdr"]))
    assert opportunity.account_id is None and opportunity.tenant_id == tenant.pk


# --- expected_owner_id on activity_log and lead_recycle ---------------------------------------------


def test_activity_log_refuses_a_lead_that_changed_hands_and_checks_nothing_by_default(tenant, org):
    mql = owned(tenant, org["sdr"])
    lead_assign(lead=fresh(mql), owner=org["ae1"], actor=SYSTEM, trigger=Trigger.REASSIGNMENT)
    with pytest.raises(ValidationError) as refused:
        activity_log(lead=mql, kind="call", actor=as_user(org["sdr"]), outcome="connected",
                     expected_owner_id=org["sdr"].pk)
    assert "reassigned meanwhile" in refused.value.message_dict["owner"][0]
    assert not Activity.objects.unscoped().filter(lead=mql).exists() and fresh(mql).status == LeadStatus.NEW

    _, created = activity_log(lead=mql, kind="call", actor=as_user(org["ae1"]), outcome="connected",
                              expected_owner_id=str(org["ae1"].pk))  # a form's string works too
    assert created and fresh(mql).status == LeadStatus.CONTACTED
    _, created = activity_log(lead=mql, kind="note", actor=as_user(org["sdr"]), body="No check without the keyword")
    assert created


def test_activity_log_on_an_unassigned_lead_expects_no_owner(tenant, org):
    unowned = lead(tenant)
    with pytest.raises(ValidationError):
        activity_log(lead=unowned, kind="note", actor=as_user(org["sdr"]), body="x", expected_owner_id=org["sdr"].pk)
    _, created = activity_log(lead=unowned, kind="note", actor=as_user(org["sdr"]), body="x", expected_owner_id="")
    assert created


def test_lead_recycle_refuses_a_lead_that_changed_hands_and_checks_nothing_by_default(tenant, org):
    mql = owned(tenant, org["sdr"])
    lead_assign(lead=fresh(mql), owner=org["ae1"], actor=SYSTEM, trigger=Trigger.REASSIGNMENT)
    with pytest.raises(ValidationError) as refused:
        lead_recycle(lead=mql, actor=as_user(org["sdr"]), reason="Not now", expected_owner_id=org["sdr"].pk)
    assert "reassigned meanwhile" in refused.value.message_dict["owner"][0]
    assert fresh(mql).status == LeadStatus.NEW and running(mql) is not None
    assert lead_recycle(lead=mql, actor=as_user(org["ae1"]), reason="Not now",
                        expected_owner_id=org["ae1"].pk).status == LeadStatus.RECYCLED
    assert lead_recycle(lead=mql, actor=SYSTEM, reason="again").status == LeadStatus.RECYCLED
