"""A lead that automatic routing could not place alerts its managers in-app at once; deliberate moves do not."""
from __future__ import annotations

import pytest

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from routing.models import Notification, RoutingSettings, Strategy, Trigger
from routing.services.assign import lead_assign, lead_route
from routing.services.unassigned_alerts import ALERT_KIND, unassigned_recipients
from tests.support.routing import NOW, fresh, lead, rep, rule, team

pytestmark = pytest.mark.django_db


def alerted(lead_) -> set[int]:
    return set(Notification.objects.unscoped().filter(lead=lead_, kind=ALERT_KIND).values_list("user_id", flat=True))


def route(lead_, trigger=Trigger.CAPTURE):
    return lead_route(lead=lead_, actor=SYSTEM, trigger=trigger, now=NOW)


def test_a_new_lead_no_rule_can_place_alerts_the_tenant_admins_only(tenant, other_tenant):
    admin, sdr = rep(tenant, role=Role.ADMIN), rep(tenant)
    their_admin = rep(other_tenant, role=Role.ADMIN)
    new = lead(tenant, first_name="Ada", last_name="Byron", company="Analytical")
    assignment = route(new)
    assert assignment.owner_id is None
    assert alerted(new) == {admin.pk} and sdr.pk not in alerted(new) and their_admin.pk not in alerted(new)
    note = Notification.objects.unscoped().get(lead=new, kind=ALERT_KIND)
    assert note.tenant_id == tenant.pk and note.title == "Unassigned lead: Ada Byron (Analytical)"
    assert "No routing rule" in note.body and "Unassigned queue" in note.body


def test_a_rule_that_cannot_place_alerts_its_teams_manager(tenant):
    boss = rep(tenant, role=Role.MANAGER)
    inbound = team(tenant, "Inbound", manager=boss)
    rep(tenant, inbound, is_available=False)
    admin = rep(tenant, role=Role.ADMIN)
    rule(tenant, 10, team=inbound, fall_through=False)
    new = lead(tenant)
    assert route(new).owner_id is None
    assert alerted(new) == {boss.pk} and admin.pk not in alerted(new)


def test_without_a_team_the_default_teams_managers_hear_else_the_admins(tenant):
    default = team(tenant, "Default")
    lead_manager = rep(tenant, default, role=Role.MANAGER)
    RoutingSettings.objects.unscoped().create(tenant=tenant, default_team=default)
    rep(tenant, role=Role.ADMIN)
    assert [u.pk for u in unassigned_recipients(tenant_id=tenant.pk, team_id=None)] == [lead_manager.pk]


def test_a_rule_that_sends_leads_to_unassigned_on_purpose_alerts_nobody(tenant):
    rep(tenant, role=Role.ADMIN)
    rule(tenant, 10, Strategy.UNASSIGNED)
    new = lead(tenant)
    assert route(new).owner_id is None and alerted(new) == set()


def test_a_re_route_of_a_lead_already_unassigned_does_not_alert_again(tenant):
    admin = rep(tenant, role=Role.ADMIN)
    new = lead(tenant)
    route(new)
    route(fresh(new), trigger=Trigger.SCORE_BAND)
    assert Notification.objects.unscoped().filter(lead=new, kind=ALERT_KIND, user=admin).count() == 1


def test_people_moving_leads_to_unassigned_alert_nobody(tenant):
    rep(tenant, role=Role.ADMIN)
    sdr = rep(tenant)
    new = lead(tenant)
    lead_assign(lead=new, owner=sdr, actor=SYSTEM, trigger=Trigger.CAPTURE, now=NOW)
    for trigger in (Trigger.RECYCLE, Trigger.REASSIGNMENT, Trigger.BULK_REASSIGNMENT, Trigger.HANDOFF):
        lead_assign(lead=fresh(new), owner=None, actor=SYSTEM, trigger=trigger, reason="moved", now=NOW)
    assert alerted(new) == set()
