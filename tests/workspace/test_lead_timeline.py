"""The lead timeline reads as sentences with names: who assigned, reassigned or handed off the lead and why, score
changes with their cause, stage changes, field edits, activities with their outcome, SLA clocks; long notes are never
cut mid-word; the people are resolved in bulk (the same queries for two names or twenty)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.models import Role
from leads.models import Lead, Signal
from leads.services.lead_edit import lead_update
from routing.defaults import ROUND_ROBIN_RULE
from routing.models import RoutingRule, Trigger
from routing.services.assign import ROUTING_AGENT, lead_assign, lead_reassign
from scoring.models import ScoreCause, ScoreChange
from tests.support.factories import LeadFactory, MembershipFactory, TeamFactory, UserFactory
from tests.support.workspace import person
from workspace.selectors import lead_timeline
from workspace.services.activities import activity_log
from workspace.services.lifecycle import lead_qualify, lead_reject

pytestmark = pytest.mark.django_db
BANT = {"budget": "$50k", "authority": "VP Sales", "need": "Routing in minutes", "timeline": "Q3"}
LONG_NOTE = ("Spoke with Peter about their inbound volume. " * 8) + "Decision maker is the VP of Sales, Joanna Lee."


def named(tenant, username, first, last, role=Role.SDR, team=None):
    user = UserFactory(username=username, first_name=first, last_name=last)
    MembershipFactory(tenant=tenant, user=user, role=role, team=team)
    return user


@pytest.fixture
def people(tenant, org):
    team = org["team"]
    return {
        "dana": named(tenant, "dana@acme.test", "Dana", "Reyes", team=team),
        "sam": named(tenant, "sam@acme.test", "Sam", "Rivera", team=team),
        "maria": named(tenant, "maria@acme.test", "Maria", "Lopez", role=Role.MANAGER, team=team),
        "ana": named(tenant, "ana@acme.test", "Ana", "Ruiz", role=Role.AE, team=TeamFactory(tenant=tenant, name="AEs")),
    }


def titles(lead) -> list[str]:
    return [entry.title for entry in lead_timeline(lead=Lead.objects.unscoped().get(pk=lead.pk))]


def routed_lead(tenant, owner, **fields) -> Lead:
    rule = RoutingRule.objects.unscoped().get(tenant=tenant, name=ROUND_ROBIN_RULE)
    lead = LeadFactory(tenant=tenant, stage="mql", band="mql", **fields)
    lead_assign(lead=lead, owner=owner, actor=ROUTING_AGENT, trigger=Trigger.CAPTURE, rule=rule,
                reason="Next in the rotation")
    return Lead.objects.unscoped().get(pk=lead.pk)


def test_assignments_say_who_moved_the_lead_to_whom_and_why(tenant, people):
    lead = routed_lead(tenant, people["dana"])
    lead_reassign(lead=lead, actor=Actor.for_user(people["maria"]), to_user=people["sam"], reason="Dana is out sick")
    lead_qualify(lead=Lead.objects.unscoped().get(pk=lead.pk), actor=Actor.for_user(people["sam"]), **BANT)
    said = titles(lead)
    assert "Assigned to Dana Reyes by the Routing Agent: rule ‘Round-robin among available SDRs’" in said
    assert "Reassigned from Dana Reyes to Sam Rivera by Maria Lopez (manager): Dana is out sick" in said
    assert "Handed off to Ana Ruiz (AE) by Sam Rivera (SDR): ana@acme.test has the fewest open leads among the AEs" \
        in said
    assert "Stage MQL → SQL: qualified (BANT) by Sam Rivera (SDR)" in said
    routed = next(e for e in lead_timeline(lead=lead) if e.title.startswith("Assigned to Dana"))
    assert routed.detail == "Next in the rotation" and routed.kind == "assignment"


def test_a_rejection_says_who_rejected_it_with_the_reason_and_note(tenant, people):
    lead = routed_lead(tenant, people["dana"])
    lead_reject(lead=lead, actor=Actor.for_user(people["dana"]), reason_code="spam", note="Bot signup")
    entries = lead_timeline(lead=Lead.objects.unscoped().get(pk=lead.pk))
    rejected = next(e for e in entries if e.title.startswith("Rejected by Dana Reyes (SDR)"))
    assert rejected.detail == "Bot signup"
    assert any(e.title.startswith("Sent back to marketing by Dana Reyes (SDR)") for e in entries)
    assert "SLA clock stopped: rejected" in [e.title for e in entries]


def test_score_changes_give_the_scores_the_bands_and_the_signal_that_caused_them(tenant, people):
    lead = routed_lead(tenant, people["dana"])
    start = timezone.now() - dt.timedelta(hours=2)
    ScoreChange.objects.unscoped().create(tenant=tenant, lead=lead, at=start, old_score=None, new_score=50,
                                          new_band="mql", cause=ScoreCause.CAPTURE)
    Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="pricing_page_view", occurred_at=start,
                                     processed_at=start + dt.timedelta(minutes=30))
    ScoreChange.objects.unscoped().create(tenant=tenant, lead=lead, at=start + dt.timedelta(minutes=30),
                                          old_score=50, new_score=70, old_band="mql", new_band="hot",
                                          cause=ScoreCause.SIGNAL)
    ScoreChange.objects.unscoped().create(tenant=tenant, lead=lead, at=start + dt.timedelta(minutes=90),
                                          old_score=70, new_score=66, old_band="hot", new_band="hot",
                                          cause=ScoreCause.DECAY)
    said = titles(lead)
    assert "Scored 50 (MQL): lead captured" in said
    assert "Score 50 → 70 (MQL → Hot): new signal “Pricing page view”" in said
    assert "Score 70 → 66: decay / inactivity" in said
    assert "Signal: Pricing page view" in said


def test_edits_name_the_field_and_both_values(tenant, people):
    lead = routed_lead(tenant, people["dana"], job_title="Intern", phone="", industry="Retail")
    lead_update(lead=lead, data={"job_title": "VP Sales"}, actor=Actor.for_user(people["dana"]))
    lead_update(lead=Lead.objects.unscoped().get(pk=lead.pk), data={"phone": "+14155550123", "industry": ""},
                actor=Actor.for_user(people["maria"]))
    entries = lead_timeline(lead=Lead.objects.unscoped().get(pk=lead.pk))
    said = [e.title for e in entries]
    assert "Job title changed from ‘Intern’ to ‘VP Sales’ by Dana Reyes (SDR)" in said
    several = next(e for e in entries if e.title == "Details edited by Maria Lopez (manager)")
    assert "Phone set to ‘+14155550123’" in several.lines
    assert "Industry cleared (was ‘Retail’)" in several.lines


def test_activities_give_the_outcome_and_keep_the_whole_note(tenant, people, signed_in):
    dana = people["dana"]
    lead = routed_lead(tenant, dana)
    activity_log(lead=lead, kind="call", actor=Actor.for_user(dana), outcome="no_answer")
    activity_log(lead=lead, kind="call", actor=Actor.for_user(dana), outcome="connected", subject="Intro",
                 body=LONG_NOTE)
    entries = lead_timeline(lead=Lead.objects.unscoped().get(pk=lead.pk))
    said = [e.title for e in entries]
    assert "Call by Dana Reyes: No answer" in said and "Call by Dana Reyes: Connected" in said
    assert next(e for e in entries if e.title.endswith("Connected")).detail == f"Intro\n\n{LONG_NOTE}"
    assert "SLA clock stopped: first contact" in said
    html = signed_in(dana, tenant).get(f"/leads/{lead.pk}/").content.decode()
    assert f'<div class="timeline-detail">Intro\n\n{LONG_NOTE}</div>' in html  # the whole note, folded
    summary = html[html.index('<details class="timeline-more"><summary>') + 40:]
    summary = summary[:summary.index("</summary>")]
    assert summary.endswith(" …") and len(summary) < len(LONG_NOTE)
    assert f"{summary[:-2]} " in f"Intro\n\n{LONG_NOTE}".replace("\n\n", " ")  # cut between words


def test_the_timeline_resolves_names_in_bulk(tenant, people, django_assert_max_num_queries):
    """The same number of queries for one person as for fifteen: people, accounts and labels are read in bulk."""
    dana = people["dana"]
    few = routed_lead(tenant, dana)
    activity_log(lead=few, kind="call", actor=Actor.for_user(dana), outcome="connected")
    many = routed_lead(tenant, dana)
    for i in range(15):
        someone = person(tenant, role=Role.MANAGER, username=f"boss{i}@acme.test")
        lead_reassign(lead=Lead.objects.unscoped().get(pk=many.pk), actor=Actor.for_user(someone),
                      to_user=people["sam"] if i % 2 == 0 else dana, reason=f"Round {i}")
        activity_log(lead=many, kind="note", actor=Actor.for_user(someone), body=f"Note {i}")
    activity_log(lead=many, kind="call", actor=Actor.for_user(dana), outcome="voicemail")
    lead_update(lead=Lead.objects.unscoped().get(pk=many.pk), data={"job_title": "CTO"}, actor=Actor.for_user(dana))

    def count(lead) -> int:
        with CaptureQueriesContext(connection) as captured:
            lead_timeline(lead=Lead.objects.unscoped().get(pk=lead.pk))
        return len(captured.captured_queries)

    assert count(many) == count(few)
    with django_assert_max_num_queries(12):
        entries = lead_timeline(lead=Lead.objects.unscoped().get(pk=many.pk))
    assert "Reassigned from Sam Rivera to Dana Reyes by boss13@acme.test (manager): Round 13" in [
        e.title for e in entries]
