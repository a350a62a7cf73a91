"""Each event type is emitted where it happens, in that step's transaction, with the lead's data."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.tenancy.models import Role
from leadmgmt.webhooks.models import WebhookDelivery, WebhookEvent, WebhookEventType
from leads.models import Lead
from leads.services.capture import lead_capture
from routing.defaults import routing_defaults_create
from routing.models import EscalationAction, RoutingRule, Strategy
from routing.tasks import sla_enforce_task
from scoring.events import score_events_dispatch
from scoring.models import ScoreEvent, ScoreEventKind
from scoring.services import scoring_default_model_create
from tests.support.routing import NOW, as_user, owned, rep, rule, team
from tests.support.sla import T0, assigned_lead, minutes, sales_team, sla_policy
from tests.support.webhooks import endpoint_for
from workspace.services.lifecycle import lead_convert, lead_qualify, lead_reject

pytestmark = pytest.mark.django_db
BANT = {"budget": "$50k approved", "authority": "VP Sales signs", "need": "Reps lose inbound leads",
        "timeline": "This quarter"}


@pytest.fixture
def subscribed(tenant):
    """An endpoint of the tenant subscribed to every event (never called: these tests read the outbox)."""
    return endpoint_for(tenant, "http://127.0.0.1:9/hook", list(WebhookEventType.values))


def events(tenant, event_type=None):
    rows = WebhookEvent.objects.unscoped().filter(tenant=tenant).order_by("created_at", "pk")
    return list(rows.filter(type=event_type) if event_type else rows)


def test_the_capture_pipeline_emits_lead_created_then_lead_assigned_per_lead(tenant, lead_form, subscribed,
                                                                            django_capture_on_commit_callbacks):
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    sdrs = team(tenant)
    reps = [rep(tenant, sdrs) for _ in range(2)]
    rule(tenant, 10, team=sdrs)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        leads = [lead_capture(tenant=tenant, data={"email": f"p{i}@prospect.example", "first_name": f"P{i}"},
                              actor=Actor.for_form(lead_form), form=lead_form).lead for i in range(3)]
    created = events(tenant, "lead.created")
    assert sorted(e.lead_id for e in created) == sorted(lead.pk for lead in leads)
    by_lead = {e.lead_id: e.payload for e in created}
    assert by_lead[leads[0].pk]["data"]["lead"]["email"] == "p0@prospect.example"
    assert by_lead[leads[0].pk]["data"]["lead"]["score"] is not None  # scored before it is announced
    assigned = events(tenant, "lead.assigned")
    assert len(assigned) == 3
    assert {e.payload["data"]["owner"]["id"] for e in assigned} <= {r.pk for r in reps}
    for lead in leads:  # in each lead's order: created before assigned
        order = list(WebhookDelivery.objects.unscoped().filter(lead_id=lead.pk).order_by("id")
                     .values_list("event__type", flat=True))
        assert order[:2] == ["lead.created", "lead.assigned"]
    # the pipeline running again (a redelivered task) announces nobody twice
    from workspace.services.pipeline import captured_leads_process
    Lead.objects.unscoped().filter(pk__in=[x.pk for x in leads]).update(pipeline_pending_since=NOW)
    captured_leads_process(tenant=tenant)
    assert len(events(tenant, "lead.created")) == 3


def test_a_duplicate_submission_emits_lead_merged(tenant, lead_form, subscribed):
    first = lead_capture(tenant=tenant, data={"email": "ana@prospect.example"}, actor=Actor.for_form(lead_form),
                         form=lead_form)
    again = lead_capture(tenant=tenant, data={"email": "ana@prospect.example", "company": "Prospect"},
                         actor=Actor.for_form(lead_form), form=lead_form)
    assert again.result == "merged"
    [merged] = events(tenant, "lead.merged")
    assert merged.lead_id == first.lead.pk
    assert merged.payload["data"]["changed_fields"] == ["company"]
    assert merged.payload["data"]["matched_on"] == "email"
    assert merged.payload["data"]["lead"]["company"] == "Prospect"


def test_a_band_change_from_the_score_outbox_emits_lead_band_changed_once(tenant, subscribed):
    lead = Lead.objects.unscoped().create(tenant=tenant, email="b@prospect.example", band="warm")
    ScoreEvent.objects.unscoped().create(tenant=tenant, lead=lead, kind=ScoreEventKind.BAND_CHANGED,
                                         from_band="cold", to_band="warm", score=55, at=NOW)
    ScoreEvent.objects.unscoped().create(tenant=tenant, lead=lead, kind=ScoreEventKind.BECAME_HOT,
                                         from_band="cold", to_band="warm", score=55, at=NOW)
    assert score_events_dispatch(tenant=tenant) == 2
    assert score_events_dispatch(tenant=tenant) == 0
    [changed] = events(tenant, "lead.band_changed")
    data = changed.payload["data"]
    assert (changed.lead_id, data["from_band"], data["to_band"], data["score"]) == (lead.pk, "cold", "warm", 55)
    assert data["lead"]["email"] == "b@prospect.example"


@pytest.fixture
def org(tenant):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    sdrs, aes = team(tenant, "SDRs"), team(tenant, "AEs")
    return {"sdr": rep(tenant, sdrs), "ae": rep(tenant, aes, role=Role.AE)}


def test_qualify_emits_lead_qualified_before_the_handoffs_lead_assigned(tenant, org, subscribed):
    mql = owned(tenant, org["sdr"])
    before = len(events(tenant, "lead.assigned"))
    opportunity = lead_qualify(lead=mql, actor=as_user(org["sdr"]), now=NOW, **BANT)
    [qualified] = events(tenant, "lead.qualified")
    assert qualified.lead_id == mql.pk and qualified.payload["data"]["opportunity_id"] == opportunity.pk
    assert qualified.payload["data"]["lead"]["status"] == "qualified"
    assert qualified.payload["data"]["budget"] == BANT["budget"]
    order = list(WebhookDelivery.objects.unscoped().filter(lead_id=mql.pk).order_by("id")
                 .values_list("event__type", flat=True))
    assert order[before:] == ["lead.qualified", "lead.assigned"]


def test_convert_emits_lead_converted(tenant, org, subscribed):
    lead = owned(tenant, org["ae"])
    opportunity = lead_convert(lead=lead, actor=as_user(org["ae"]), now=NOW)
    [converted] = events(tenant, "lead.converted")
    assert converted.payload["data"]["opportunity"]["id"] == opportunity.pk
    assert converted.payload["data"]["lead"]["status"] == "converted"


def test_reject_emits_lead_rejected_with_the_reason(tenant, org, subscribed):
    lead = owned(tenant, org["sdr"])
    lead_reject(lead=lead, actor=as_user(org["sdr"]), reason_code="not_icp", note="Too small", now=NOW)
    [rejected] = events(tenant, "lead.rejected")
    data = rejected.payload["data"]
    assert (data["reason"], data["note"], data["previous_owner_id"]) == ("not_icp", "Too small", org["sdr"].pk)


def test_an_sla_breach_emits_sla_breached_once(tenant, subscribed):
    team_, _boss, reps = sales_team(tenant, reps=1)
    RoutingRule.objects.unscoped().create(tenant=tenant, position=1, name="RR", strategy=Strategy.ROUND_ROBIN,
                                          team=team_)
    sla_policy(tenant, minutes=5, name="Hot", steps=[(1, 0, EscalationAction.ALERT_MANAGER)])
    lead, clock = assigned_lead(tenant, reps[0])
    for _ in range(2):  # the beat task running twice breaches once
        sla_enforce_task.apply(kwargs={"now": (T0 + minutes(6)).isoformat()}).get()
    [breached] = events(tenant, "sla.breached")
    sla = breached.payload["data"]["sla"]
    assert breached.lead_id == lead.pk and sla["clock_id"] == clock.pk and sla["owner_id"] == reps[0].pk
    assert sla["due_at"] == (T0 + timedelta(minutes=5)).isoformat()


def test_a_tenant_without_endpoints_gets_no_events_from_any_step(tenant, other_tenant, lead_form, org):
    endpoint_for(other_tenant, "http://127.0.0.1:9/hook", list(WebhookEventType.values))
    lead = owned(tenant, org["sdr"])
    lead_reject(lead=lead, actor=as_user(org["sdr"]), reason_code="not_icp", now=NOW)
    lead_capture(tenant=tenant, data={"email": "x@prospect.example"}, actor=Actor.for_form(lead_form), form=lead_form)
    assert events(tenant) == [] and events(other_tenant) == []


def test_an_import_that_finishes_emits_import_finished_once(tenant, subscribed):
    from workspace.services.imports import (
        import_mapping_set,
        import_run,
        import_run_start,
        import_upload,
    )

    content = b"email,first_name\nimported.one@x.example,One\nnot-an-email,Bad\n"
    job = import_upload(tenant=tenant, actor=SYSTEM, file_name="crm.csv", content=content)
    job = import_run_start(job=import_mapping_set(job=job, mapping=job.mapping), actor=SYSTEM)
    import_run(tenant=tenant, job_id=job.pk)
    import_run(tenant=tenant, job_id=job.pk)  # run again: finished already, nothing more
    [event] = events(tenant, "import.finished")
    data = event.payload["data"]["import"]
    assert data["id"] == job.pk and data["file_name"] == "crm.csv" and data["rows"] == 2
    assert data["counts"]["created"] == 1 and data["counts"]["refused"] == 1 and event.lead_id is None


def test_merging_a_possible_duplicate_emits_lead_merged_for_the_kept_lead(tenant, subscribed):
    from leads.models import DuplicatePair
    from leads.services.duplicates import duplicate_pairs_detect
    from tests.support.factories import LeadFactory
    from workspace.services.duplicates import duplicate_merge

    kept = LeadFactory(tenant=tenant, phone="+14155550177", job_title="CTO", email="kept@x.example")
    other = LeadFactory(tenant=tenant, phone="+14155550177", industry="Software", email="other@x.example")
    duplicate_pairs_detect(tenant=tenant)
    manager = rep(tenant, team(tenant), role=Role.MANAGER)
    duplicate_merge(pair=DuplicatePair.objects.unscoped().get(tenant=tenant), actor=Actor.for_user(manager),
                    survivor_id=kept.pk)
    [event] = events(tenant, "lead.merged")
    data = event.payload["data"]
    assert event.lead_id == kept.pk and data["merged_lead_id"] == str(other.pk) and data["matched_on"] == "phone"
    assert data["changed_fields"] == ["industry"] and data["lead"]["email"] == "kept@x.example"
