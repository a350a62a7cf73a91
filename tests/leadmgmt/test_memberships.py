"""Membership services: the last active admin stays an admin, deactivated members lose the tenant and get
no leads (default round-robin, SDR → AE handoff, manual reassignment), and reps join the default team."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Membership, Role
from leadmgmt.tenancy.selectors import memberships_of_user
from leadmgmt.tenancy.services import (
    DEFAULT_TEAM,
    membership_deactivate,
    membership_reactivate,
    membership_update,
    membership_upsert,
)
from routing.defaults import routing_defaults_create
from routing.services.assign import lead_reassign, lead_route
from tests.support.factories import LeadFactory, TeamFactory
from tests.support.routing import NOW, membership
from tests.support.workspace import person

pytestmark = pytest.mark.django_db


def update(m: Membership, actor, **changes) -> Membership:
    fields = {"role": m.role, "team": m.team, "capacity": m.capacity, "is_available": m.is_available, **changes}
    return membership_update(membership=m, actor=Actor.for_user(actor), **fields)


def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(tenant):
    boss = person(tenant, role=Role.ADMIN, username="boss@acme.test")
    mine = membership(tenant, boss)

    with pytest.raises(ValidationError) as demote:
        update(mine, boss, role=Role.MANAGER)
    with pytest.raises(ValidationError) as deactivate:
        membership_deactivate(membership=mine, actor=Actor.for_user(boss))

    assert "at least one active tenant admin" in demote.value.message_dict["role"][0]
    assert "at least one active tenant admin" in deactivate.value.messages[0]
    assert membership(tenant, boss).role == Role.ADMIN and membership(tenant, boss).is_active


def test_a_deactivated_admin_does_not_count_as_the_other_admin(tenant):
    boss = person(tenant, role=Role.ADMIN, username="boss@acme.test")
    gone = person(tenant, role=Role.ADMIN, username="gone@acme.test")
    membership_deactivate(membership=membership(tenant, gone), actor=Actor.for_user(boss))
    with pytest.raises(ValidationError):
        update(membership(tenant, boss), boss, role=Role.SDR)


def test_with_a_second_admin_an_admin_may_step_down(tenant):
    boss = person(tenant, role=Role.ADMIN, username="boss@acme.test")
    person(tenant, role=Role.ADMIN, username="deputy@acme.test")
    team = TeamFactory(tenant=tenant, name="AE West")

    changed = update(membership(tenant, boss), boss, role=Role.AE, team=team, capacity=40, is_available=False)

    assert (changed.role, changed.team, changed.capacity, changed.is_available) == (Role.AE, team, 40, False)
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="membership.updated")
    assert event.changes["role"] == ["admin", "ae"] and event.changes["capacity"] == [None, 40]


def test_a_team_of_another_tenant_is_refused(tenant, other_tenant):
    boss = person(tenant, role=Role.ADMIN, username="boss@acme.test")
    rep = person(tenant, username="rep@acme.test")
    with pytest.raises(ValidationError) as excinfo:
        update(membership(tenant, rep), boss, team=TeamFactory(tenant=other_tenant))
    assert "team" in excinfo.value.message_dict


def test_a_deactivated_member_loses_the_tenant_but_keeps_their_others(tenant, other_tenant):
    boss = person(tenant, role=Role.ADMIN, username="boss@acme.test")
    rep = person(tenant, username="rep@acme.test")
    person(other_tenant, username="rep@acme.test")

    membership_deactivate(membership=membership(tenant, rep), actor=Actor.for_user(boss))

    assert [m.tenant for m in memberships_of_user(user=rep)] == [other_tenant]
    assert AuditEvent.objects.unscoped().get(tenant=tenant, action="membership.deactivated").changes == {
        "is_active": [True, False]}
    membership_reactivate(membership=membership(tenant, rep), actor=Actor.for_user(boss))
    assert {m.tenant for m in memberships_of_user(user=rep)} == {tenant, other_tenant}


def test_a_deactivated_sdr_gets_no_leads_from_the_default_round_robin(tenant):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    boss = person(tenant, role=Role.ADMIN, username="boss@acme.test")
    ann = membership_upsert(tenant=tenant, email="ann@acme.test", role=Role.SDR)[0]
    bob = membership_upsert(tenant=tenant, email="bob@acme.test", role=Role.SDR)[0]
    membership_deactivate(membership=bob, actor=Actor.for_user(boss))

    owners = {lead_route(lead=LeadFactory(tenant=tenant), actor=SYSTEM, trigger="capture", now=NOW).owner_id
              for _ in range(4)}

    assert owners == {ann.user_id}
    membership_deactivate(membership=ann, actor=Actor.for_user(boss))
    assert lead_route(lead=LeadFactory(tenant=tenant), actor=SYSTEM, trigger="capture", now=NOW).owner_id is None


def test_a_deactivated_member_cannot_be_given_a_lead_by_hand(tenant):
    boss = person(tenant, role=Role.ADMIN, username="boss@acme.test")
    rep = person(tenant, username="rep@acme.test")
    membership_deactivate(membership=membership(tenant, rep), actor=Actor.for_user(boss))
    with pytest.raises(ValidationError, match="deactivated"):
        lead_reassign(lead=LeadFactory(tenant=tenant), to_user=rep, actor=Actor.for_user(boss), reason="cover")


def test_reps_added_without_a_team_join_the_default_team_the_default_rules_route_to(tenant):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    sdr, _created, _pw = membership_upsert(tenant=tenant, email="sdr@acme.test", role=Role.SDR)
    ae, _created, _pw = membership_upsert(tenant=tenant, email="ae@acme.test", role=Role.AE)
    manager, _created, _pw = membership_upsert(tenant=tenant, email="mgr@acme.test", role=Role.MANAGER)

    assert sdr.team.name == DEFAULT_TEAM and ae.team.name == DEFAULT_TEAM
    assert manager.team is None, "only reps are put in the default team"
    assert lead_route(lead=LeadFactory(tenant=tenant), actor=SYSTEM, trigger="capture", now=NOW).owner_id == sdr.user_id
