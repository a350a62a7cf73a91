"""Accept, reject (taxonomy), disqualify and qualify (BANT → Opportunity to the matched AE): clocks,
stale actions, idempotency."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leads.models import Lead, LeadStage, LeadStatus, Opportunity, StageTransition
from routing.defaults import routing_defaults_create
from routing.models import Assignment, RejectionReason, SlaClock, Territory, Trigger
from routing.services.assign import lead_assign
from tests.support.factories import AccountFactory
from tests.support.routing import NOW, as_user, fresh, lead, owned, rep, running, team
from workspace.services.lifecycle import lead_accept, lead_disqualify, lead_qualify, lead_reject

pytestmark = pytest.mark.django_db
BANT = {"budget": "$50k approved", "authority": "VP Sales signs", "need": "Reps lose inbound leads",
        "timeline": "This quarter"}


@pytest.fixture
def org(tenant):
    """The default set-up plus an SDR team, an AE team with two AEs and a territory for Germany."""
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    sdrs, aes = team(tenant, "SDRs"), team(tenant, "AEs")
    people = {"sdr": rep(tenant, sdrs), "ae1": rep(tenant, aes, role=Role.AE), "ae2": rep(tenant, aes, role=Role.AE)}
    Territory.objects.unscoped().create(tenant=tenant, name="DACH", countries=["Germany"], team=aes)
    return people








# --- accept ------------------------------------------------------------------------------------------


def test_accept_makes_an_mql_a_sal_and_stops_the_clock(tenant, org):
    sdr = org["sdr"]
    mql = owned(tenant, sdr)
    assert running(mql).policy_name.startswith("Hot / MQL web and paid leads")

    lead_accept(lead=mql, actor=as_user(sdr), now=NOW + timedelta(minutes=2))

    mql = fresh(mql)
    assert (mql.stage, mql.accepted_at, mql.sla_due_at) == (LeadStage.SAL, NOW + timedelta(minutes=2), None)
    assert running(mql) is None
    assert SlaClock.objects.unscoped().get(lead=mql).stop_reason == "accepted"
    assert StageTransition.objects.unscoped().filter(lead=mql, from_stage="mql", to_stage="sal").count() == 1
    assert AuditEvent.objects.unscoped().filter(action="lead.accepted", object_id=str(mql.pk)).count() == 1


def test_accepting_twice_changes_nothing(tenant, org):
    mql = owned(tenant, org["sdr"])
    lead_accept(lead=mql, actor=as_user(org["sdr"]), now=NOW)
    events = AuditEvent.objects.unscoped().count()

    lead_accept(lead=fresh(mql), actor=as_user(org["sdr"]), now=NOW + timedelta(hours=1))

    assert AuditEvent.objects.unscoped().count() == events
    assert fresh(mql).accepted_at == NOW


def test_an_unassigned_lead_cannot_be_accepted(tenant, org):
    with pytest.raises(ValidationError) as excinfo:
        lead_accept(lead=lead(tenant), actor=SYSTEM)
    assert "owner" in excinfo.value.message_dict


def test_a_stale_action_is_refused_and_writes_nothing(tenant, org):
    mql = owned(tenant, org["sdr"])
    seen_owner = mql.owner_id
    lead_assign(lead=mql, owner=org["ae1"], actor=SYSTEM, trigger=Trigger.REASSIGNMENT, now=NOW)
    events = AuditEvent.objects.unscoped().count()

    for action, kwargs in ((lead_accept, {}), (lead_reject, {"reason_code": "no_budget"}),
                           (lead_qualify, BANT)):
        with pytest.raises(ValidationError, match="reassigned meanwhile"):
            action(lead=fresh(mql), actor=as_user(org["sdr"]), expected_owner_id=seen_owner, **kwargs)

    mql = fresh(mql)
    assert (mql.status, mql.stage, mql.accepted_at, mql.budget) == (LeadStatus.NEW, LeadStage.MQL, None, "")
    assert AuditEvent.objects.unscoped().count() == events
    assert not Opportunity.objects.unscoped().exists()


# --- reject and disqualify --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["", "because", "NOT_ICP"])
def test_reject_requires_a_reason_from_the_taxonomy(tenant, org, code):
    mql = owned(tenant, org["sdr"])
    with pytest.raises(ValidationError) as excinfo:
        lead_reject(lead=mql, actor=as_user(org["sdr"]), reason_code=code)
    assert "not_icp" in excinfo.value.message_dict["reason"][0]
    assert fresh(mql).status == LeadStatus.NEW and fresh(mql).owner_id == org["sdr"].pk


def test_an_inactive_or_other_tenants_reason_is_refused(tenant, other_tenant, org):
    RejectionReason.objects.unscoped().filter(tenant=tenant, code="spam").update(is_active=False)
    RejectionReason.objects.unscoped().create(tenant=other_tenant, code="theirs", label="Theirs")
    mql = owned(tenant, org["sdr"])
    for code in ("spam", "theirs"):
        with pytest.raises(ValidationError):
            lead_reject(lead=mql, actor=as_user(org["sdr"]), reason_code=code)


def test_reject_sends_the_lead_back_to_marketing_with_the_reason(tenant, org):
    mql = owned(tenant, org["sdr"])

    lead_reject(lead=mql, actor=as_user(org["sdr"]), reason_code="not_icp", note="Consultancy of 3", now=NOW)

    mql = fresh(mql)
    assert (mql.status, mql.owner_id, mql.rejection_reason, mql.rejection_note, mql.rejected_at) == (
        LeadStatus.REJECTED, None, "not_icp", "Consultancy of 3", NOW)
    assert running(mql) is None and SlaClock.objects.unscoped().get(lead=mql).stop_reason == "rejected"
    last = Assignment.objects.unscoped().filter(lead=mql).order_by("-at", "-id").first()
    assert (last.owner_id, last.previous_owner_id, last.trigger) == (None, org["sdr"].pk, Trigger.RECYCLE)
    assert "Not our ideal customer" in last.reason
    event = AuditEvent.objects.unscoped().get(action="lead.rejected", object_id=str(mql.pk))
    assert event.metadata["reason"] == "not_icp" and event.actor_name == org["sdr"].username


def test_not_now_goes_back_to_nurture_as_recycled(tenant, org):
    mql = owned(tenant, org["sdr"])
    lead_reject(lead=mql, actor=as_user(org["sdr"]), reason_code="not_now")
    assert (fresh(mql).status, fresh(mql).rejection_reason) == (LeadStatus.RECYCLED, "not_now")


def test_rejecting_twice_with_the_same_reason_changes_nothing(tenant, org):
    mql = owned(tenant, org["sdr"])
    lead_reject(lead=mql, actor=as_user(org["sdr"]), reason_code="spam")
    count = Assignment.objects.unscoped().count()
    lead_reject(lead=fresh(mql), actor=as_user(org["sdr"]), reason_code="spam")
    assert Assignment.objects.unscoped().count() == count


def test_disqualify_keeps_the_owner_and_stops_the_clock(tenant, org):
    mql = owned(tenant, org["sdr"])
    lead_disqualify(lead=mql, actor=as_user(org["sdr"]), reason_code="no_need")
    mql = fresh(mql)
    assert (mql.status, mql.owner_id, mql.rejection_reason) == (LeadStatus.UNQUALIFIED, org["sdr"].pk, "no_need")
    assert running(mql) is None


# --- qualify: SDR → AE handoff -----------------------------------------------------------------------------


def test_qualify_needs_every_bant_field(tenant, org):
    mql = owned(tenant, org["sdr"])
    with pytest.raises(ValidationError) as excinfo:
        lead_qualify(lead=mql, actor=as_user(org["sdr"]), budget="  ", authority="CFO", need="", timeline="Q3")
    assert set(excinfo.value.message_dict) == {"budget", "need"}
    assert not Opportunity.objects.unscoped().exists() and fresh(mql).stage == LeadStage.MQL


def test_qualify_hands_off_to_the_named_account_ae_and_starts_the_acceptance_sla(tenant, org):
    AccountFactory(tenant=tenant, domain="acme.example", owner=org["ae2"])
    mql = owned(tenant, org["sdr"], company_domain="acme.example", country="France")

    opportunity = lead_qualify(lead=mql, actor=as_user(org["sdr"]), now=NOW, **BANT)

    mql = fresh(mql)
    assert opportunity.owner == org["ae2"] and opportunity.account.domain == "acme.example"
    assert (opportunity.budget, opportunity.need, opportunity.qualified_by) == (BANT["budget"], BANT["need"],
                                                                               org["sdr"])
    assert (mql.owner, mql.stage, mql.status, mql.budget) == (org["ae2"], LeadStage.SQL, LeadStatus.QUALIFIED,
                                                              BANT["budget"])
    handoff = Assignment.objects.unscoped().filter(lead=mql).order_by("-at", "-id").first()
    assert (handoff.trigger, handoff.strategy, handoff.previous_owner) == (Trigger.HANDOFF, "named_account",
                                                                          org["sdr"])
    clock = running(mql)
    assert (clock.kind, clock.owner, clock.due_at) == ("acceptance", org["ae2"], NOW + timedelta(hours=24))


def test_qualify_hands_off_to_the_territory_aes_in_rotation(tenant, org):
    leads = [owned(tenant, org["sdr"], country="Germany") for _ in range(4)]
    owners = [lead_qualify(lead=x, actor=as_user(org["sdr"]), **BANT).owner for x in leads]
    assert sorted(o.username for o in owners) == sorted([org["ae1"].username, org["ae2"].username] * 2)
    assert all(fresh(x).owner == o for x, o in zip(leads, owners, strict=True))
    assert set(Assignment.objects.unscoped().filter(trigger=Trigger.HANDOFF).values_list("strategy", flat=True)) \
        == {"territory"}


def test_an_unavailable_named_ae_falls_back_to_the_territory(tenant, org):
    from leadmgmt.tenancy.models import Membership

    AccountFactory(tenant=tenant, domain="acme.example", owner=org["ae2"])
    Membership.objects.unscoped().filter(tenant=tenant, user=org["ae2"]).update(is_available=False)
    mql = owned(tenant, org["sdr"], company_domain="acme.example", country="Germany")
    assert lead_qualify(lead=mql, actor=as_user(org["sdr"]), **BANT).owner == org["ae1"]


def test_with_no_ae_available_the_sql_waits_in_unassigned_with_the_reason(tenant, org):
    from leadmgmt.tenancy.models import Membership

    Membership.objects.unscoped().filter(tenant=tenant, role=Role.AE).update(is_available=False)
    mql = owned(tenant, org["sdr"], country="Germany")
    opportunity = lead_qualify(lead=mql, actor=as_user(org["sdr"]), **BANT)
    mql = fresh(mql)
    assert opportunity.owner is None and mql.owner is None
    assert "No AE of territory DACH" in mql.unassigned_reason


def test_qualifying_twice_gives_one_open_opportunity(tenant, org):
    mql = owned(tenant, org["sdr"], country="Germany")
    first = lead_qualify(lead=mql, actor=as_user(org["sdr"]), **BANT)
    second = lead_qualify(lead=fresh(mql), actor=as_user(org["sdr"]), **BANT)
    assert first.pk == second.pk and Opportunity.objects.unscoped().count() == 1
    assert Assignment.objects.unscoped().filter(trigger=Trigger.HANDOFF).count() == 1


def test_the_ae_accepting_the_sql_converts_it_and_stops_the_acceptance_clock(tenant, org):
    mql = owned(tenant, org["sdr"], country="Germany")
    opportunity = lead_qualify(lead=mql, actor=as_user(org["sdr"]), now=NOW, **BANT)
    ae = opportunity.owner

    lead_accept(lead=fresh(mql), actor=as_user(ae), expected_owner_id=ae.pk, now=NOW + timedelta(hours=3))

    sql = fresh(mql)
    assert (sql.status, sql.stage) == (LeadStatus.CONVERTED, LeadStage.OPPORTUNITY)
    assert fresh(opportunity).accepted_at == NOW + timedelta(hours=3)
    assert running(sql) is None
    assert SlaClock.objects.unscoped().get(lead=sql, kind="acceptance").stop_reason == "accepted"


def test_lifecycle_never_reaches_into_another_tenant(tenant, other_tenant, org):
    """An AE of another tenant owning an account with the same domain is never picked."""
    outsider = rep(other_tenant, role=Role.AE)
    AccountFactory(tenant=other_tenant, domain="acme.example", owner=outsider)
    mql = owned(tenant, org["sdr"], company_domain="acme.example", country="Germany")
    assert lead_qualify(lead=mql, actor=as_user(org["sdr"]), **BANT).owner in (org["ae1"], org["ae2"])
    assert Lead.objects.unscoped().filter(tenant=other_tenant).count() == 0
