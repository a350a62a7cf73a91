"""Publishing versions, what-if, decay, inactivity and cold archiving (with controlled time)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.audit.models import AuditEvent
from leads.models import Lead, Signal
from scoring.models import ModelStatus, ScoreBand, ScoreChange, ScoringModel, ScoringRule
from scoring.services import (
    leads_decay_and_archive,
    leads_score,
    model_whatif,
    scoring_model_draft_create,
    scoring_model_publish,
)
from tests.support.factories import LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


def fresh(lead):
    return Lead.objects.unscoped().get(pk=lead.pk)


def test_publishing_a_draft_rescores_every_lead_and_keeps_the_old_version_readable(
        in_tenant, tenant, model, django_capture_on_commit_callbacks):
    leads = [LeadFactory(tenant=tenant, job_title="VP Sales", last_activity_at=timezone.now()) for _ in range(3)]
    leads_score(tenant=tenant, cause="capture")
    assert {fresh(lead).score for lead in leads} == {20}
    draft = scoring_model_draft_create(tenant=tenant, actor=SYSTEM)
    assert (draft.version, draft.status, draft.rules.count()) == (2, ModelStatus.DRAFT, model.rules.count())
    ScoringRule.objects.unscoped().filter(model=draft, name="Title: VP/Director").update(points=45)
    user = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        scoring_model_publish(model=draft, actor=Actor.for_user(user))
    assert {(fresh(lead).score, fresh(lead).band) for lead in leads} == {(45, "mql")}
    assert ScoreChange.objects.unscoped().filter(cause="model_publish").count() == 3
    model.refresh_from_db()
    assert model.status == ModelStatus.RETIRED and model.rules.count() > 0  # still readable
    assert ScoringModel.objects.unscoped().get(tenant=tenant, status=ModelStatus.PUBLISHED) == draft
    event = AuditEvent.objects.unscoped().get(action="scoring_model.published", object_id=str(draft.pk))
    assert event.actor_user == user and event.metadata["previous_version"] == 1


def test_a_published_or_retired_version_cannot_be_published_again(tenant, model):
    with pytest.raises(ValidationError) as excinfo:
        scoring_model_publish(model=model, actor=SYSTEM)
    assert "Only a draft" in str(excinfo.value)


def test_a_draft_with_gapped_bands_or_an_invalid_rule_cannot_be_published(tenant, model):
    draft = scoring_model_draft_create(tenant=tenant, actor=SYSTEM)
    ScoreBand.objects.unscoped().filter(model=draft, key="warm").update(max_score=35)
    ScoringRule.objects.unscoped().filter(model=draft, name="Web: pricing page view").update(signal_type="no_such")
    with pytest.raises(ValidationError) as excinfo:
        scoring_model_publish(model=draft, actor=SYSTEM)
    messages = " ".join(excinfo.value.message_dict["detail"])
    assert "36–40 fall in no band" in messages and "Unknown signal type 'no_such'" in messages
    draft.refresh_from_db()
    assert draft.status == ModelStatus.DRAFT


def test_what_if_counts_moves_per_band_without_writing(tenant, model):
    vps = [LeadFactory(tenant=tenant, job_title="VP Sales", last_activity_at=timezone.now()) for _ in range(4)]
    LeadFactory(tenant=tenant, job_title="", last_activity_at=timezone.now())
    leads_score(tenant=tenant, cause="capture")
    draft = scoring_model_draft_create(tenant=tenant, actor=SYSTEM)
    ScoringRule.objects.unscoped().filter(model=draft, name="Title: VP/Director").update(points=45)
    changes_before = ScoreChange.objects.unscoped().count()
    rows = {row["key"]: row for row in model_whatif(model=draft)}
    assert rows["cold"] == {**rows["cold"], "now": 5, "after": 1, "moving_in": 0, "moving_out": 4}
    assert rows["mql"] == {**rows["mql"], "now": 0, "after": 4, "moving_in": 4, "moving_out": 0}
    assert ScoreChange.objects.unscoped().count() == changes_before
    assert {fresh(lead).score for lead in vps} == {20}


def test_engagement_ages_out_after_the_window_and_inactivity_is_penalised(tenant, model):
    now = timezone.now()
    lead = LeadFactory(tenant=tenant, job_title="CEO", last_activity_at=now - timedelta(days=10))
    Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="demo_request", occurred_at=now - timedelta(days=10))
    leads_score(tenant=tenant, lead_ids=[lead.pk], cause="signal", now=now)
    assert fresh(lead).score == 55
    leads_decay_and_archive(tenant=tenant, now=now + timedelta(days=25))  # 35 days inactive: -15
    assert fresh(lead).score == 40
    leads_decay_and_archive(tenant=tenant, now=now + timedelta(days=81))  # demo request 91 days old: ages out
    lead = fresh(lead)
    assert (lead.score, lead.band) == (10, "cold")
    assert list(ScoreChange.objects.unscoped().filter(lead=lead, cause="decay").values_list("new_score", flat=True)
                .order_by("at")) == [40, 10]


def test_leads_cold_for_14_days_are_archived_with_the_reason_logged_once(tenant, model):
    now = timezone.now()
    cold = LeadFactory(tenant=tenant, job_title="", last_activity_at=now)
    warm = LeadFactory(tenant=tenant, job_title="CEO", last_activity_at=now)
    worked = LeadFactory(tenant=tenant, job_title="", status="qualified", last_activity_at=now)
    leads_decay_and_archive(tenant=tenant, now=now)
    assert fresh(cold).cold_since == now and fresh(warm).cold_since is None
    assert leads_decay_and_archive(tenant=tenant, now=now + timedelta(days=13)).archived == 0
    run = leads_decay_and_archive(tenant=tenant, now=now + timedelta(days=14))
    assert run.archived == 1
    cold = fresh(cold)
    assert cold.status == "archived" and "cold" in cold.archive_reason and cold.archived_at is not None
    assert fresh(worked).status == "qualified" and fresh(warm).status == "new"
    event = AuditEvent.objects.unscoped().get(action="lead.archived")
    assert event.object_id == str(cold.pk) and event.actor_name == "Scoring Agent" and event.metadata["reason"]
    assert leads_decay_and_archive(tenant=tenant, now=now + timedelta(days=15)).archived == 0
    assert AuditEvent.objects.unscoped().filter(action="lead.archived").count() == 1


def test_a_lead_that_warms_up_stops_being_cold(tenant, model):
    now = timezone.now()
    lead = LeadFactory(tenant=tenant, job_title="", last_activity_at=now)
    leads_decay_and_archive(tenant=tenant, now=now)
    Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="demo_request", occurred_at=now)
    leads_score(tenant=tenant, lead_ids=[lead.pk], cause="signal", now=now + timedelta(days=1))
    assert fresh(lead).cold_since is None
    assert leads_decay_and_archive(tenant=tenant, now=now + timedelta(days=20)).archived == 0


def test_scoring_stays_inside_its_tenant(tenant, other_tenant, model):
    from scoring.services import scoring_default_model_create

    scoring_default_model_create(tenant=other_tenant, actor=SYSTEM)
    mine = LeadFactory(tenant=tenant, job_title="CEO")
    theirs = LeadFactory(tenant=other_tenant, job_title="CEO")
    Signal.objects.unscoped().create(tenant=other_tenant, lead=theirs, type="demo_request", occurred_at=timezone.now())
    leads_score(tenant=tenant, cause="manual")
    assert fresh(mine).score is not None and fresh(theirs).score is None
    # Passing another tenant's lead id scores nothing.
    assert leads_score(tenant=tenant, lead_ids=[theirs.pk], cause="manual").updated == 0
    assert fresh(theirs).score is None


def test_publishing_rewrites_only_the_leads_whose_result_changes(in_tenant, tenant, model,
                                                                 django_capture_on_commit_callbacks):
    vp = LeadFactory(tenant=tenant, job_title="VP Sales", last_activity_at=timezone.now())
    analyst = LeadFactory(tenant=tenant, job_title="Analyst", last_activity_at=timezone.now())
    leads_score(tenant=tenant, cause="capture")
    analyst_scored_at = fresh(analyst).scored_at
    draft = scoring_model_draft_create(tenant=tenant, actor=SYSTEM)
    assert set(draft.rules.values_list("key", flat=True)) == set(model.rules.values_list("key", flat=True))
    ScoringRule.objects.unscoped().filter(model=draft, name="Title: VP/Director").update(points=45)
    with django_capture_on_commit_callbacks(execute=True):
        scoring_model_publish(model=draft, actor=SYSTEM)
    assert (fresh(vp).score, fresh(vp).scoring_model_id) == (45, draft.pk)
    # Same result under the new version: untouched, still explained by the version that scored it.
    analyst = fresh(analyst)
    assert (analyst.score, analyst.scoring_model_id, analyst.scored_at) == (5, model.pk, analyst_scored_at)
    assert ScoreChange.objects.unscoped().filter(cause="model_publish").count() == 1
