"""Merging a possible-duplicate pair keeps everything both leads had, notifies both owners, and can be undone."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Role
from leads.models import (
    Activity,
    DuplicatePair,
    DuplicateStatus,
    Lead,
    LeadStatus,
    Opportunity,
    Touch,
)
from leads.services.capture import lead_capture
from routing.models import Assignment, Notification, SlaClock
from scoring.services import scoring_default_model_create
from tests.support.routing import fresh, rep, rule, team
from tests.support.sla import sla_policy
from workspace.services.activities import activity_log
from workspace.services.duplicates import duplicate_merge, duplicate_merge_undo, survivor_default
from workspace.services.pipeline import captured_leads_process

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair_of_leads(tenant, lead_form):
    """Two captures of one person (one phone, two emails), each scored, routed to its own rep with an SLA clock."""
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    sdrs = team(tenant)
    reps = [rep(tenant, sdrs), rep(tenant, sdrs)]
    rule(tenant, 10, team=sdrs)
    sla_policy(tenant, minutes=60)
    manager = rep(tenant, sdrs, role=Role.MANAGER)
    actor = Actor.for_form(lead_form)
    rich = lead_capture(tenant=tenant, actor=actor, form=lead_form, data={
        "email": "ada@analytical.example", "first_name": "Ada", "last_name": "Lovelace", "phone": "+442071234567",
        "job_title": "CTO", "company": "Analytical Engines"}).lead
    with tenant_scope(tenant):
        captured_leads_process(tenant=tenant)
    thin = lead_capture(tenant=tenant, actor=actor, form=lead_form, data={
        "email": "ada.l@gmail.com", "first_name": "Ada", "last_name": "Lovelace", "phone": "+442071234567",
        "industry": "Software", "utm_campaign": "spring-webinar"}).lead
    with tenant_scope(tenant):
        captured_leads_process(tenant=tenant)
    rich, thin = fresh(rich), fresh(thin)
    assert {rich.owner_id, thin.owner_id} == {reps[0].pk, reps[1].pk}
    activity_log(lead=thin, kind="note", actor=Actor.for_user(reps[1] if thin.owner_id == reps[1].pk else reps[0]),
                 body="Asked for pricing at the booth")
    pair = DuplicatePair.objects.for_tenant(tenant).get()
    return tenant, pair, rich, thin, manager


def _rows(lead) -> dict[str, int]:
    return {"touches": Touch.objects.unscoped().filter(lead=lead).count(),
            "activities": Activity.objects.unscoped().filter(lead=lead).count(),
            "assignments": Assignment.objects.unscoped().filter(lead=lead).count(),
            "clocks": SlaClock.objects.unscoped().filter(lead=lead).count()}


def test_merge_keeps_the_richer_record_moves_every_row_and_notifies_both_owners(pair_of_leads):
    tenant, pair, rich, thin, manager = pair_of_leads
    assert survivor_default(lead=rich, other=thin) == rich  # more fields filled
    rich_rows, thin_rows = _rows(rich), _rows(thin)
    result = duplicate_merge(pair=pair, actor=Actor.for_user(manager))

    survivor, merged = fresh(rich), fresh(thin)
    assert result.survivor.pk == rich.pk and result.merged.pk == thin.pk
    # Blanks filled from the other lead; the survivor's own values kept.
    assert (survivor.job_title, survivor.industry, survivor.utm_campaign) == ("CTO", "Software", "spring-webinar")
    assert survivor.email == "ada@analytical.example"
    # Every row of the merged lead is the survivor's now.
    assert _rows(survivor) == {k: rich_rows[k] + thin_rows[k] for k in rich_rows}
    assert _rows(merged) == dict.fromkeys(rich_rows, 0)
    assert merged.status == LeadStatus.ARCHIVED and merged.archive_reason.startswith("Merged into Ada Lovelace")
    assert SlaClock.objects.unscoped().filter(lead=survivor, stopped_at__isnull=True).count() == 1
    assert SlaClock.objects.unscoped().filter(lead=survivor, stop_reason="merged").count() == 1  # thin's, stopped
    pair.refresh_from_db()
    assert (pair.status, pair.survivor_id, pair.resolved_by_id) == (DuplicateStatus.MERGED, rich.pk, manager.pk)
    notified = set(Notification.objects.unscoped().filter(kind="duplicate_merged").values_list("user_id", flat=True))
    assert notified == {rich.owner_id, thin.owner_id}
    event = AuditEvent.objects.for_tenant(tenant).get(action="lead.duplicate_merged")
    assert event.object_id == str(rich.pk) and event.changes["industry"] == ["", "Software"]
    assert event.metadata["moved"]["leads_activity"] == 1
    assert AuditEvent.objects.for_tenant(tenant).filter(action="lead.merged_into", object_id=str(thin.pk)).exists()

    with pytest.raises(ValidationError) as refused:
        duplicate_merge(pair=pair, actor=Actor.for_user(manager))
    assert "already merged" in str(refused.value.message_dict["pair"])


def test_undo_puts_back_the_rows_the_fields_and_the_other_lead(pair_of_leads):
    tenant, pair, rich, thin, manager = pair_of_leads
    rich_rows, thin_rows = _rows(rich), _rows(thin)
    duplicate_merge(pair=pair, actor=Actor.for_user(manager))
    Lead.objects.unscoped().filter(pk=rich.pk).update(utm_campaign="edited-since")  # a person's later edit stays

    duplicate_merge_undo(pair=pair, actor=Actor.for_user(manager))
    survivor, restored = fresh(rich), fresh(thin)
    assert _rows(survivor) == rich_rows and _rows(restored) == thin_rows
    assert (survivor.industry, survivor.utm_campaign) == ("", "edited-since")
    assert restored.status == thin.status and restored.archived_at is None and restored.archive_reason == ""
    pair.refresh_from_db()
    assert (pair.status, pair.survivor_id, pair.merge_record) == (DuplicateStatus.OPEN, None, None)
    assert AuditEvent.objects.for_tenant(tenant).filter(action="lead.duplicate_merge_undone").count() == 1
    with pytest.raises(ValidationError):
        duplicate_merge_undo(pair=pair, actor=Actor.for_user(manager))  # nothing to undo now


def test_refusals_leave_both_leads_as_they_were(pair_of_leads):
    tenant, pair, rich, thin, manager = pair_of_leads
    actor = Actor.for_user(manager)
    with pytest.raises(ValidationError) as refused:
        duplicate_merge(pair=pair, actor=actor, picks={"email": "other", "industry": "mine"})
    assert "email" in str(refused.value.message_dict["values"])
    with pytest.raises(ValidationError) as refused:
        duplicate_merge(pair=pair, actor=actor, survivor_id="00000000-0000-0000-0000-000000000000")
    assert "survivor_id" in refused.value.message_dict
    Lead.objects.unscoped().filter(pk=thin.pk).update(email="")
    with pytest.raises(ValidationError) as refused:
        duplicate_merge(pair=pair, actor=actor, survivor_id=thin.pk)
    assert "email" in str(refused.value.message_dict["survivor_id"])
    Lead.objects.unscoped().filter(pk=thin.pk).update(email="ada.l@gmail.com")
    for lead in (rich, thin):
        Opportunity.objects.unscoped().create(tenant=tenant, lead=lead, name=f"Deal {lead.pk}")
    with pytest.raises(ValidationError) as refused:
        duplicate_merge(pair=pair, actor=actor)
    assert "open opportunity" in str(refused.value.message_dict["pair"])
    assert fresh(thin).status != LeadStatus.ARCHIVED and DuplicatePair.objects.for_tenant(tenant).get().status == "open"


def test_a_picked_value_from_the_other_lead_replaces_the_survivors(pair_of_leads):
    _tenant, pair, rich, thin, manager = pair_of_leads
    Lead.objects.unscoped().filter(pk=thin.pk).update(job_title="Chief Technology Officer")
    duplicate_merge(pair=pair, actor=Actor.for_user(manager), survivor_id=rich.pk, picks={"job_title": "other"})
    assert fresh(rich).job_title == "Chief Technology Officer"
