"""Aging (seed 003): untouched 48 h → flagged and the owner told; 72 h → the manager alerted (in-app + email);
once per untouched spell, by the real beat task with controlled time; set-based; tenant-isolated."""
from __future__ import annotations

import pytest

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Agent, AgentSetting
from leads.models import Lead, LeadStatus
from routing.models import Notification, RoutingSettings
from routing.services.aging import leads_aging_check
from routing.tasks import aging_check_task
from tests.support.factories import LeadFactory
from tests.support.sla import T0, assign, fresh, minutes, sales_team
from workspace.services.activities import activity_log

pytestmark = pytest.mark.django_db

HOUR = 60


def tick(at) -> dict:
    return aging_check_task.apply(kwargs={"now": at.isoformat()}).get()


@pytest.fixture
def desk(tenant):
    _team, boss, reps = sales_team(tenant, reps=2)
    return boss, reps


def owned_lead(tenant, owner, *, at=T0, **fields):
    lead = LeadFactory(tenant=tenant, **fields)
    assign(lead, owner, now=at)
    return fresh(lead)


def notes(user, kind):
    return list(Notification.objects.unscoped().filter(user=user, kind=kind).values_list("lead_id", "email_due"))


def test_untouched_48_hours_flags_the_lead_and_tells_the_owner_once(tenant, desk):
    boss, (owner, _) = desk
    lead = owned_lead(tenant, owner, first_name="Grace", last_name="Hopper")
    assert tick(T0 + minutes(47 * HOUR + 59)) == {"flagged": 0, "alerted": 0}
    assert tick(T0 + minutes(48 * HOUR)) == {"flagged": 1, "alerted": 0}
    assert tick(T0 + minutes(48 * HOUR + 15)) == {"flagged": 0, "alerted": 0}
    assert fresh(lead).aging_flagged_at == T0 + minutes(48 * HOUR) and fresh(lead).aging_alerted_at is None
    assert notes(owner, "lead_aging") == [(lead.pk, False)]
    assert Notification.objects.unscoped().get(user=owner).title == "Untouched for 48 h: Grace Hopper (Company)"
    assert not Notification.objects.unscoped().filter(user=boss).exists()
    event = AuditEvent.objects.unscoped().get(action="lead.aging_flagged", object_id=str(lead.pk))
    assert event.actor_name == "SLA Agent" and event.metadata["hours"] == 48


def test_untouched_72_hours_alerts_the_manager_in_app_and_by_email_once(tenant, desk):
    boss, (owner, _) = desk
    lead = owned_lead(tenant, owner)
    tick(T0 + minutes(48 * HOUR))
    assert tick(T0 + minutes(72 * HOUR)) == {"flagged": 0, "alerted": 1}
    assert tick(T0 + minutes(80 * HOUR)) == {"flagged": 0, "alerted": 0}
    assert fresh(lead).aging_alerted_at == T0 + minutes(72 * HOUR)
    assert notes(boss, "lead_aging_alert") == [(lead.pk, True)]
    assert AuditEvent.objects.unscoped().get(action="lead.aging_alerted").metadata["managers"] == [boss.pk]


def test_a_lead_found_at_72_hours_is_flagged_and_alerted_in_one_pass(tenant, desk):
    boss, (owner, _) = desk
    lead = owned_lead(tenant, owner)
    assert tick(T0 + minutes(100 * HOUR)) == {"flagged": 1, "alerted": 1}
    assert notes(owner, "lead_aging") == [(lead.pk, False)] and notes(boss, "lead_aging_alert") == [(lead.pk, True)]


def test_an_activity_starts_a_new_untouched_spell(tenant, desk):
    boss, (owner, _) = desk
    lead = owned_lead(tenant, owner, at=T0)
    tick(T0 + minutes(72 * HOUR))
    # The rep finally logs a call (at 72 h); the flags clear and the clock of untouchedness restarts.
    activity_log(lead=lead, kind="call", actor=Actor.for_user(owner), outcome="connected",
                 occurred_at=T0 + minutes(72 * HOUR))
    lead = fresh(lead)
    assert (lead.aging_flagged_at, lead.aging_alerted_at) == (None, None)
    assert tick(T0 + minutes(119 * HOUR)) == {"flagged": 0, "alerted": 0}
    assert tick(T0 + minutes(120 * HOUR)) == {"flagged": 1, "alerted": 0}
    assert len(notes(owner, "lead_aging")) == 2


def test_a_new_owner_gets_a_fresh_spell(tenant, desk):
    _boss, (owner, other) = desk
    lead = owned_lead(tenant, owner, at=T0)
    tick(T0 + minutes(50 * HOUR))
    assign(lead, other, now=T0 + minutes(50 * HOUR))
    assert fresh(lead).aging_flagged_at is None
    assert tick(T0 + minutes(97 * HOUR)) == {"flagged": 0, "alerted": 0}
    assert tick(T0 + minutes(98 * HOUR)) == {"flagged": 1, "alerted": 0}
    assert notes(other, "lead_aging") == [(lead.pk, False)]


def test_the_tenants_settings_change_the_hours(tenant, desk):
    RoutingSettings.objects.unscoped().create(tenant=tenant, aging_flag_hours=2, aging_alert_hours=4)
    _boss, (owner, _) = desk
    owned_lead(tenant, owner)
    assert tick(T0 + minutes(2 * HOUR)) == {"flagged": 1, "alerted": 0}
    assert tick(T0 + minutes(4 * HOUR)) == {"flagged": 0, "alerted": 1}


def test_only_open_owned_leads_age(tenant, desk):
    _boss, (owner, _) = desk
    LeadFactory(tenant=tenant, created_at=T0)  # in Unassigned: the manager's queue, not aging
    owned_lead(tenant, owner, status=LeadStatus.RECYCLED)
    owned_lead(tenant, owner, status=LeadStatus.CONVERTED)
    assert tick(T0 + minutes(100 * HOUR)) == {"flagged": 0, "alerted": 0}


def test_aging_is_per_tenant_and_respects_the_agent_switch(tenant, other_tenant, desk):
    boss, (owner, _) = desk
    their_boss, (their_rep, _) = sales_team(other_tenant, name="Globex SDRs")[1:]
    mine = owned_lead(tenant, owner)
    theirs = owned_lead(other_tenant, their_rep)
    assert leads_aging_check(now=T0 + minutes(80 * HOUR), tenant=tenant) == {"flagged": 1, "alerted": 1}
    assert fresh(theirs).aging_flagged_at is None
    AgentSetting.objects.unscoped().create(tenant=other_tenant, agent=Agent.SLA, enabled=False)
    assert tick(T0 + minutes(80 * HOUR)) == {"flagged": 0, "alerted": 0}
    assert fresh(theirs).aging_flagged_at is None
    assert notes(boss, "lead_aging_alert") == [(mine.pk, True)]
    assert not Notification.objects.unscoped().filter(user__in=[their_boss, their_rep]).exists()


def test_the_check_is_set_based(tenant, desk, django_assert_max_num_queries):
    boss, reps = desk
    for i in range(40):
        owned_lead(tenant, reps[i % 2])
    with django_assert_max_num_queries(14):  # a fixed number, whatever the number of leads
        assert leads_aging_check(now=T0 + minutes(80 * HOUR)) == {"flagged": 40, "alerted": 40}
    assert Notification.objects.unscoped().filter(user=boss, kind="lead_aging_alert").count() == 40
    assert Lead.objects.unscoped().filter(tenant=tenant, aging_alerted_at__isnull=False).count() == 40
