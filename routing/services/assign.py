"""Assigning leads: route by the tenant's rules, assign, reassign one lead or all of a rep's, and the
Routing Agent's automatic runs (capture, band change, sweep)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_bulk, audit_event_build, audit_record
from leadmgmt.db.bulk import instance_builder, rows_insert
from leadmgmt.tenancy.models import Agent, Membership, Team, Tenant, agent_enabled
from leadmgmt.webhooks.models import WebhookEventType
from leadmgmt.webhooks.services.emit import WebhookItem, webhook_emit_bulk, webhook_subscribed
from leads.locks import UNSET, lead_lock, lead_lock_refresh, leads_lock
from leads.models import OPEN_STATUSES, Lead
from leads.webhooks import lead_webhook_data

from ..models import Assignment, RoutingRule, Strategy, Trigger
from ..notifications import notify_new_owner, notify_new_owners
from ..selectors import (
    ineligibility,
    leads_ever_assigned,
    leads_lost_before_routing,
    open_lead_counts,
)
from ..strategies import (
    Decision,
    account_scores_attach,
    route_decide,
    routing_run,
    routing_run_prefetch,
    run_cached,
)
from .sla_clocks import sla_clock_restart, sla_clocks_restart_many
from .unassigned_alerts import unassigned_alert, unassigned_alerts_many

ROUTING_AGENT = Actor.agent("Routing Agent")
AUTOMATIC_TRIGGERS = {Trigger.CAPTURE, Trigger.SCORE_BAND}


def _user_id(user) -> int | None:
    return getattr(user, "pk", user)


def lead_assign(
    *, lead: Lead, owner, actor: Actor, trigger: str, rule: RoutingRule | None = None, strategy: str = "",
    team: Team | None = None, reason: str = "", details: dict | None = None, now: datetime | None = None,
) -> Assignment:
    """The one writer of a lead's owner, team, assigned_at and unassigned_reason.

    Locks the lead row, records the Assignment (rule, strategy, previous owner, reason, who) and an
    audit event, restarts the SLA clock and notifies the new owner. `owner` None puts the lead in
    the Unassigned queue with `reason`.
    """
    if trigger not in Trigger.values:
        raise ValidationError({"trigger": [f"Unknown trigger '{trigger}'."]})
    owner_id = _user_id(owner)
    with transaction.atomic():
        lead_lock_refresh(lead=lead)
        if owner_id is not None and not Membership.objects.for_tenant(lead.tenant_id).filter(
                                                                             user_id=owner_id).exists():
            raise ValidationError({"owner": ["This person is not a member of the lead's tenant."]})
        if owner is not None and not hasattr(owner, "get_username"):
            owner = get_user_model().objects.get(pk=owner_id)
        return _assign(lead=lead, owner=owner, actor=actor, trigger=trigger, rule=rule, strategy=strategy, team=team,
                       reason=reason, details=details, now=now or timezone.now())


def _assign(*, lead: Lead, owner, actor: Actor, trigger: str, rule: RoutingRule | None, strategy: str,
            team: Team | None, reason: str, details: dict | None, now: datetime) -> Assignment:
    """lead_assign's writes, for callers that already hold the lead's row lock in a transaction."""
    owner_id = _user_id(owner)
    previous_id, previous_team_id = lead.owner_id, lead.team_id
    reason = (reason or ("" if owner_id else "No routing rule could place this lead"))[:1000]
    lead.owner = owner
    lead.team = team
    lead.assigned_at = now if owner_id is not None else None
    lead.unassigned_reason = "" if owner_id is not None else reason[:300]
    lead.save(update_fields=["owner", "team", "assigned_at", "unassigned_reason", "updated_at"])
    assignment = Assignment.objects.create(
        tenant=lead.tenant, lead=lead, owner=owner, previous_owner_id=previous_id, team=team, rule=rule,
        rule_name=rule.name[:120] if rule is not None else "", strategy=strategy or (rule.strategy if rule else ""),
        trigger=trigger, reason=reason, details=details or {}, actor_kind=actor.kind, actor_name=actor.name[:200],
        actor_user=actor.user, at=now,
    )
    audit_record(
        tenant=lead.tenant, actor=actor, action="lead.assigned" if owner_id is not None else "lead.unassigned",
        obj=lead, changes={k: v for k, v in {"owner": [previous_id, owner_id],
                                             "team": [previous_team_id, lead.team_id]}.items() if v[0] != v[1]},
        metadata={"assignment_id": assignment.pk, "trigger": trigger, "rule": assignment.rule_name,
                  "strategy": assignment.strategy, "reason": reason},
    )
    sla_clock_restart(lead=lead, assignment=assignment, now=now)
    _webhooks_lead_assigned(tenant=lead.tenant_id, assignments=[assignment], now=now)
    notify_new_owner(assignment=assignment)
    unassigned_alert(assignment=assignment, previous_owner_id=previous_id)
    return assignment


def _assign_many(*, tenant: Tenant, decided: list[tuple[Lead, Decision]], actor: Actor, trigger: str,
                 now: datetime, never_assigned: bool = False) -> list[Assignment]:
    """`_assign` for a batch of locked leads, each with its routing decision, set-based: the assignments,
    SLA clocks, audit events and notifications as multi-row INSERTs and the leads in one UPDATE (the
    capture pipeline). Same rows, same history as `_assign` lead by lead. `never_assigned`: the caller has
    checked that none of the leads had an assignment (so no SLA clock runs to be stopped)."""
    if not decided:
        return []
    assignments, previous = [], {}
    new_assignment = instance_builder(Assignment)  # Assignment(**values), cheaper by the hundred
    for lead, decision in decided:
        owner_id = _user_id(decision.owner)
        previous[lead.pk] = (lead.owner_id, lead.team_id)
        reason = (decision.reason or ("" if owner_id else "No routing rule could place this lead"))[:1000]
        rule = decision.rule
        lead.owner, lead.team = decision.owner, decision.team
        lead.assigned_at = now if owner_id is not None else None
        lead.unassigned_reason = "" if owner_id is not None else reason[:300]
        lead.updated_at = now
        assignments.append(new_assignment(
            tenant=tenant, lead=lead, owner=decision.owner, previous_owner_id=previous[lead.pk][0], team=decision.team,
            rule=rule, rule_name=rule.name[:120] if rule is not None else "",
            strategy=decision.strategy or (rule.strategy if rule else ""), trigger=trigger, reason=reason,
            details={"rules": decision.trace}, actor_kind=actor.kind, actor_name=actor.name[:200],
            actor_user=actor.user, at=now))
    rows_insert(assignments)
    events = []
    for assignment in assignments:
        lead = assignment.lead
        previous_id, previous_team_id = previous[lead.pk]
        changes = {"owner": [previous_id, assignment.owner_id], "team": [previous_team_id, lead.team_id]}
        events.append(audit_event_build(
            tenant=tenant, actor=actor, action="lead.assigned" if assignment.owner_id is not None else "lead.unassigned",
            obj=lead, changes={k: v for k, v in changes.items() if v[0] != v[1]},
            metadata={"assignment_id": assignment.pk, "trigger": trigger, "rule": assignment.rule_name,
                      "strategy": assignment.strategy, "reason": assignment.reason}))
    events += sla_clocks_restart_many(tenant=tenant, assigned=[(a.lead, a) for a in assignments], now=now,
                                      never_assigned=never_assigned)
    leads_write_assigned(tenant=tenant, leads=[a.lead for a in assignments])
    audit_bulk(events=events)
    _webhooks_lead_assigned(tenant=tenant, assignments=assignments, now=now)
    notify_new_owners(assignments=assignments, now=now)
    unassigned_alerts_many(assignments=assignments,
                           previous_owner_ids={lead_id: owner_id for lead_id, (owner_id, _team) in previous.items()})
    return assignments


def leads_assign_named(*, tenant: Tenant, owners: list[tuple[Lead, object]], actor: Actor, reason: str,
                       now: datetime | None = None) -> list[Assignment]:
    """Leads whose owner a person named (a CSV import's owner column), assigned set-based like the capture
    pipeline's run: assignments, SLA clocks, audit events and notifications as multi-row writes. The caller
    holds the leads (rows its transaction inserted or locked) and has checked each owner is an active member."""
    decided = [(lead, Decision(owner=owner, team=None, rule=None, strategy="", reason=reason, trace=[]))
               for lead, owner in owners]
    return _assign_many(tenant=tenant, decided=decided, actor=actor, trigger=Trigger.CAPTURE, now=now or timezone.now())
def _webhooks_lead_assigned(*, tenant, assignments: list[Assignment], now: datetime) -> None:
    """`lead.assigned` for each assignment that gave a lead an owner (one insert for a batch; none when no
    endpoint of the tenant subscribes). The assignment's id is the event's key."""
    owned = [a for a in assignments if a.owner_id is not None]
    if not owned or not webhook_subscribed(tenant=tenant, event_type=WebhookEventType.LEAD_ASSIGNED):
        return
    webhook_emit_bulk(tenant=tenant, event_type=WebhookEventType.LEAD_ASSIGNED, now=now, items=[
        WebhookItem(lead_id=a.lead_id, key=f"assignment-{a.pk}", data={
            "lead": lead_webhook_data(a.lead),
            "owner": {"id": a.owner_id, "email": a.owner.email, "name": a.owner.get_full_name()},
            "previous_owner_id": a.previous_owner_id, "team_id": a.team_id, "trigger": a.trigger,
            "rule": a.rule_name, "strategy": a.strategy, "reason": a.reason, "assignment_id": a.pk})
        for a in owned])


def leads_write_assigned(*, tenant: Tenant, leads: list[Lead]) -> None:
    """Write the owner, team, assignment time, unassigned reason, SLA due time and cleared aging flags of
    these leads (set in memory by `_assign_many`) in one UPDATE … FROM (VALUES …)."""
    rows = [(str(lead.pk), lead.owner_id, lead.team_id, lead.assigned_at, lead.unassigned_reason, lead.sla_due_at,
             lead.updated_at) for lead in leads]
    values = ", ".join(["(%s::uuid, %s::bigint, %s::bigint, %s::timestamptz, %s, %s::timestamptz, %s::timestamptz)"]
                       * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Lead._meta.db_table} l SET owner_id = v.owner_id, team_id = v.team_id, "  # noqa: S608
            "assigned_at = v.assigned_at, unassigned_reason = v.reason, sla_due_at = v.due, updated_at = v.at, "
            "aging_flagged_at = NULL, aging_alerted_at = NULL "
            f"FROM (VALUES {values}) AS v(id, owner_id, team_id, assigned_at, reason, due, at) "
            "WHERE l.tenant_id = %s AND l.id = v.id",
            [value for row in rows for value in row] + [tenant.pk],
        )


def _route(*, lead: Lead, actor: Actor, trigger: str, exclude_user_ids=(), now: datetime | None = None,
           note: str = "") -> Assignment:
    now = now or timezone.now()
    # No savepoint inside an enclosing transaction (bulk runs): any error aborts the whole run anyway.
    with transaction.atomic(savepoint=False):
        lead_lock_refresh(lead=lead)  # the lead row before any round-robin slot: the lock order of leads.locks
        # A manual re-route, a bulk move or the agent's run: never by rules that cannot see the lead's score.
        _scored_first(tenant=lead.tenant, lead=lead)
        decision = route_decide(tenant=lead.tenant, source=lead, at=now, exclude_user_ids=exclude_user_ids)
        reason = f"{note}: {decision.reason}" if note else decision.reason
        return _assign(lead=lead, owner=decision.owner, actor=actor, trigger=trigger, rule=decision.rule,
                       strategy=decision.strategy, team=decision.team, reason=reason,
                       details={"rules": decision.trace}, now=now)


def lead_route(*, lead: Lead, actor: Actor, trigger: str, exclude_user_ids=(), now: datetime | None = None
               ) -> Assignment:
    """Run the tenant's rules for the lead and assign it (owner None: Unassigned, with the reason)."""
    return _route(lead=lead, actor=actor, trigger=trigger, exclude_user_ids=exclude_user_ids, now=now)


def _check_target(*, tenant_id: int, to_user, at: datetime, taking: int = 1) -> None:
    membership = Membership.objects.for_tenant(tenant_id).filter(user_id=_user_id(to_user)).first()
    if membership is None:
        raise ValidationError({"to_user": ["This person is not a member of this tenant."]})
    counts = open_lead_counts(tenant=membership.tenant, user_ids=[membership.user_id])
    why = ineligibility(membership, at=at, open_count=None)
    if why is None and membership.capacity is not None and counts[membership.user_id] + taking > membership.capacity:
        why = f"at capacity ({counts[membership.user_id]} of {membership.capacity} open leads)"
    if why is not None:
        raise ValidationError({"to_user": [f"{membership.user.get_username()} cannot take leads: {why}."]})


def _reason_required(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Give a reason for the reassignment."]})
    return reason[:500]


def lead_reassign(*, lead: Lead, actor: Actor, to_user=None, reason: str, expected_owner_id=UNSET,
                  now: datetime | None = None) -> Assignment:
    """A manager moves one lead: to `to_user`, or (None) through the rules without its current owner.

    `expected_owner_id` is the owner the manager saw; if the lead changed hands meanwhile the
    reassignment is refused instead of overriding the other change. Not gated by the agent switch.
    """
    reason = _reason_required(reason)
    now = now or timezone.now()
    with transaction.atomic():
        lead_lock_refresh(lead=lead, expected_owner_id=expected_owner_id)
        if to_user is None:
            return _route(lead=lead, actor=actor, trigger=Trigger.REASSIGNMENT, exclude_user_ids=[lead.owner_id],
                          now=now, note=reason)
        if _user_id(to_user) == lead.owner_id:
            raise ValidationError({"to_user": ["The lead already belongs to this person."]})
        _check_target(tenant_id=lead.tenant_id, to_user=to_user, at=now)
        return lead_assign(lead=lead, owner=to_user, actor=actor, trigger=Trigger.REASSIGNMENT,
                           strategy=Strategy.DIRECT, team=_team_of(lead.tenant_id, to_user) or lead.team,
                           reason=reason, now=now)


def _team_of(tenant_id: int, user) -> Team | None:
    membership = (Membership.objects.for_tenant(tenant_id).filter(user_id=_user_id(user))
                  .select_related("team").first())
    return membership.team if membership is not None else None


@dataclass(frozen=True)
class BulkReassignment:
    """What a bulk move did: one Assignment per moved lead (owner None: the rules could not place it and
    it went to Unassigned, with the reason)."""

    assignments: list[Assignment] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.assignments)

    @property
    def placed(self) -> list[Assignment]:
        return [a for a in self.assignments if a.owner_id is not None]

    @property
    def unassigned(self) -> list[Assignment]:
        return [a for a in self.assignments if a.owner_id is None]


def leads_reassign_bulk(*, tenant: Tenant, from_user, actor: Actor, to_user=None, reason: str,
                        now: datetime | None = None) -> BulkReassignment:
    """Move every open lead of a rep at once (they left, their territory changed): to `to_user`, or
    through the rules without them. One transaction: all leads move, or none. Returns each lead's new
    Assignment (`.count` of them moved; those the rules could not place are in Unassigned)."""
    reason = _reason_required(reason)
    now = now or timezone.now()
    from_id = _user_id(from_user)
    if to_user is not None and _user_id(to_user) == from_id:
        raise ValidationError({"to_user": ["Pick someone other than the rep whose leads are moving."]})
    with transaction.atomic(), routing_run():
        ids = list(Lead.objects.for_tenant(tenant).filter(owner_id=from_id, status__in=OPEN_STATUSES)
                   .values_list("id", flat=True))
        leads = leads_lock(tenant=tenant, lead_ids=ids)
        leads = [lead for lead in leads if lead.owner_id == from_id and lead.status in OPEN_STATUSES]
        if to_user is not None and leads:
            _check_target(tenant_id=tenant.pk, to_user=to_user, at=now, taking=len(leads))
            team = _team_of(tenant.pk, to_user)
        moved = []
        for lead in leads:
            lead.tenant = tenant
            if to_user is None:
                moved.append(_route(lead=lead, actor=actor, trigger=Trigger.BULK_REASSIGNMENT,
                                    exclude_user_ids=[from_id], now=now, note=reason))
            else:
                moved.append(lead_assign(lead=lead, owner=to_user, actor=actor, trigger=Trigger.BULK_REASSIGNMENT,
                                         strategy=Strategy.DIRECT, team=team or lead.team, reason=reason, now=now))
        return BulkReassignment(assignments=moved)


def lead_route_enqueue(*, lead: Lead, trigger: str) -> None:
    """Have the Routing Agent route the lead in a worker once the current transaction commits."""
    from routing.tasks import lead_route_task

    tenant_id, lead_id = lead.tenant_id, str(lead.pk)
    transaction.on_commit(lambda: lead_route_task.delay(tenant_id=tenant_id, lead_id=lead_id, trigger=trigger))


def _band_reroute_needed(*, lead: Lead, now: datetime) -> bool:
    """A score band change re-routes an owned lead only while nobody has worked it (no contact, not
    accepted, still new) and only when its new band sends it to a rule whose reps do not include the
    current owner. A lead someone already called stays with them: moving it would break the
    relationship and reset their SLA for no gain, and a rising score of a worked lead is the owner's
    good news, not a reason to take it away."""
    if lead.first_contacted_at is not None or lead.accepted_at is not None or lead.status != "new":
        return False
    current_rule_id = (Assignment.objects.for_tenant(lead.tenant_id).filter(lead_id=lead.pk)
                       .order_by("-at", "-id").values_list("rule_id", flat=True).first())
    decision = route_decide(tenant=lead.tenant, source=lead, at=now, commit=False)
    if decision.rule is None or decision.owner is None or decision.rule.pk == current_rule_id:
        return False
    return lead.owner_id not in decision.candidates


def _scored_first(*, tenant: Tenant, lead: Lead) -> Lead:
    """Never route an unscored lead: a lead with no score under the tenant's published model (its capture
    task was lost, the sweep found it) is scored first, in this transaction, so score-based rules see its
    score. Returns the lead as it is after scoring (the row stays locked)."""
    from scoring.models import ModelStatus, ScoreCause, ScoringModel
    from scoring.services import SCORING_AGENT, leads_score

    if lead.scored_at is not None and lead.scoring_model_id is not None:
        published = run_cached(("published_model", tenant.pk), lambda: (
            ScoringModel.objects.for_tenant(tenant).filter(status=ModelStatus.PUBLISHED)
            .values_list("pk", flat=True).first()))
        if lead.scoring_model_id == published:
            return lead  # the common case: one cached lookup per routing run
    published = (ScoringModel.objects.for_tenant(tenant).filter(status=ModelStatus.PUBLISHED)
                 .values_list("pk", flat=True).first())
    if published is None or (lead.scoring_model_id == published and lead.scored_at is not None):
        return lead
    if not agent_enabled(tenant=tenant, agent=Agent.SCORING):
        return lead
    leads_score(tenant=tenant, lead_ids=[lead.pk], cause=ScoreCause.CAPTURE, actor=SCORING_AGENT)
    return lead_lock_refresh(lead=lead)  # the caller's instance, refreshed: every holder sees the score


def lead_route_auto(*, tenant: Tenant, lead_id, trigger: str, now: datetime | None = None) -> Assignment | None:
    """The Routing Agent's run for one lead (capture, band change, sweep); None when nothing to do.

    Idempotent: a lead already routed on capture is not routed again, and everything is decided
    with the lead row locked, so two deliveries of the same task cannot both assign.
    """
    explicit_now = now is not None
    now = now or timezone.now()
    if not agent_enabled(tenant=tenant, agent=Agent.ROUTING):
        return None
    if not RoutingRule.objects.for_tenant(tenant).filter(is_active=True).exists():
        return None  # a tenant without routing rules does not route (every lead stays where it is)
    with transaction.atomic():
        try:
            lead = lead_lock(tenant=tenant, lead_id=lead_id)
        except Lead.DoesNotExist:
            return None
        if lead.status not in OPEN_STATUSES or lead.archived_at is not None:
            return None
        routed = Assignment.objects.for_tenant(tenant).filter(lead_id=lead.pk)
        # Capture (and the sweep) route a lead once: any earlier assignment (say, a band change that
        # raced ahead of the capture task) already placed it.
        if trigger == Trigger.CAPTURE and (lead.owner_id is not None or routed.exists()):
            return None
        scored_before = lead.scored_at
        lead = _scored_first(tenant=tenant, lead=lead)
        if lead.scored_at != scored_before and not explicit_now:
            now = timezone.now()  # scored just now: the assignment comes after the score, in the history too
        if trigger == Trigger.SCORE_BAND:
            if lead.owner_id is not None and not _band_reroute_needed(lead=lead, now=now):
                return None
            if lead.owner_id is None and route_decide(tenant=tenant, source=lead, at=now, commit=False).owner is None:
                return None  # still nobody to take it: no new history row for every band change
        return _route(lead=lead, actor=ROUTING_AGENT, trigger=trigger, now=now)


def leads_lost_route(*, tenant: Tenant, now: datetime | None = None) -> int:
    """The Routing Agent's sweep of one tenant: route, as on capture, the leads whose routing task was
    lost by `now` (`leads_lost_before_routing`); the routing itself happens at the current time.
    Returns how many got an assignment. Re-runnable: `lead_route_auto` routes a lead on capture once."""
    now = now or timezone.now()
    if not agent_enabled(tenant=tenant, agent=Agent.ROUTING):
        return 0
    if not RoutingRule.objects.for_tenant(tenant).filter(is_active=True).exists():
        return 0
    routed = 0
    for lead_id in leads_lost_before_routing(tenant=tenant, now=now):
        if lead_route_auto(tenant=tenant, lead_id=lead_id, trigger=Trigger.CAPTURE) is not None:
            routed += 1
    return routed


def leads_route_captured(*, tenant: Tenant, lead_ids, now: datetime | None = None) -> list[Assignment]:
    """The Routing Agent's capture run over a batch of new leads (the capture pipeline), in the caller's
    transaction: the leads are locked in one statement (ascending id, the lock order of leads.locks), the
    rule set is compiled once for the batch, and each lead that is open, owned by nobody and never assigned
    is routed in capture order. The caller has scored them in the same transaction. Idempotent like
    `lead_route_auto`: a lead already routed is skipped."""
    now = now or timezone.now()
    if not lead_ids or not agent_enabled(tenant=tenant, agent=Agent.ROUTING):
        return []
    if not RoutingRule.objects.for_tenant(tenant).filter(is_active=True).exists():
        return []
    with transaction.atomic(savepoint=False):
        leads = leads_lock(tenant=tenant, lead_ids=list(lead_ids))
        routed = leads_ever_assigned(tenant=tenant, lead_ids=[lead.pk for lead in leads])
        decided = []
        # The pools' round-robin slots are locked once and advanced in memory for the whole batch (written
        # back when the block ends): strict rotation, one lock wait per batch instead of one per lead.
        # The accounts, account owners and open-lead counts the rules ask for are read once for the batch.
        todo = [lead for lead in sorted(leads, key=lambda lead: (lead.created_at, lead.pk))
                if lead.status in OPEN_STATUSES and lead.archived_at is None and lead.owner_id is None
                and lead.pk not in routed]
        with routing_run(hold_slots=True):
            routing_run_prefetch(tenant=tenant, sources=todo)
            account_scores_attach(tenant=tenant, leads=todo)  # one query for the batch, when rules read it
            for lead in todo:
                lead.tenant = tenant
                decided.append((lead, route_decide(tenant=tenant, source=lead, at=now)))
        return _assign_many(tenant=tenant, decided=decided, actor=ROUTING_AGENT, trigger=Trigger.CAPTURE, now=now,
                            never_assigned=True)  # `todo` holds only leads with no assignment
