"""Managers hear at once about a lead that routing could not place: it landed in the Unassigned queue.

Only an automatic run that failed to place a lead alerts: a new lead (capture), one ready again after
nurture, or an owned lead the score re-route took away. A rule that sends leads to Unassigned on
purpose, a person's own move (reassign, bulk move, recycle), SLA escalations (they alert through the
ladder) and the SDR → AE handoff (workspace tells the SDR's manager itself) do not.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model

from leadmgmt.tenancy.models import Membership, Role, Team

from ..models import Assignment, Notification, RoutingSettings, Strategy, Trigger
from ..notifications import lead_label, notifications_bulk, notify

ALERT_KIND = "lead_unassigned"
_ALWAYS = frozenset({Trigger.CAPTURE, Trigger.NURTURE_READY})
_WHEN_IT_HAD_AN_OWNER = frozenset({Trigger.SCORE_BAND})


def unassigned_recipients(*, tenant_id: int, team_id: int | None) -> list:
    """Who distributes the lead: the manager of its team (the tenant's default team when it has none),
    else that team's members with the manager role, else the tenant's admins. Active members of this
    tenant only."""
    if team_id is None:
        team_id = (RoutingSettings.objects.for_tenant(tenant_id)
                   .values_list("default_team_id", flat=True).first())
    active = Membership.objects.for_tenant(tenant_id).filter(user__is_active=True)
    ids: list[int] = []
    if team_id is not None:
        manager_id = (Team.objects.for_tenant(tenant_id).filter(pk=team_id)
                      .values_list("manager_id", flat=True).first())
        if manager_id is not None and active.filter(user_id=manager_id).exists():
            ids = [manager_id]
        else:
            ids = list(active.filter(team_id=team_id, role=Role.MANAGER).order_by("user_id")
                       .values_list("user_id", flat=True))
    if not ids:
        ids = list(active.filter(role=Role.ADMIN).order_by("user_id").values_list("user_id", flat=True))
    users = get_user_model().objects.in_bulk(ids)
    return [users[i] for i in ids if i in users]


def _alerts(assignment: Assignment, previous_owner_id: int | None) -> bool:
    """Whether this assignment is a failed automatic placement that managers hear about (see the module)."""
    if assignment.owner_id is not None:
        return False
    trigger = assignment.trigger
    if trigger not in _ALWAYS and not (trigger in _WHEN_IT_HAD_AN_OWNER and previous_owner_id is not None):
        return False
    # A rule that sends these leads to Unassigned on purpose does not alert.
    return not (assignment.rule_id is not None and assignment.strategy == Strategy.UNASSIGNED)


def _alert_message(assignment: Assignment) -> dict:
    lead = assignment.lead
    return {"title": f"Unassigned lead: {lead_label(lead)}",
            "body": f"Routing could not place {lead_label(lead)}: {assignment.reason}\n"
                    "It waits in the Unassigned queue for someone to take it.",
            "dedup_key": f"{ALERT_KIND}:{assignment.pk}"}


def unassigned_alert(*, assignment: Assignment, previous_owner_id: int | None) -> list:
    """Notify the managers in-app when this assignment is a failed automatic placement (see the module);
    once per assignment. Returns the people notified."""
    if not _alerts(assignment, previous_owner_id):
        return []
    notified = []
    for manager in unassigned_recipients(tenant_id=assignment.tenant_id, team_id=assignment.team_id):
        made = notify(tenant=assignment.tenant_id, user=manager, kind=ALERT_KIND, lead=assignment.lead,
                      now=assignment.at, **_alert_message(assignment))
        if made is not None:
            notified.append(manager)
    return notified


def unassigned_alerts_many(*, assignments: list[Assignment], previous_owner_ids: dict) -> None:
    """`unassigned_alert` for a batch of assignments (the capture pipeline): the recipients read once per
    team, the notifications inserted in one statement (`previous_owner_ids`: {lead id: its previous owner})."""
    recipients: dict = {}
    notes = []
    for assignment in assignments:
        if not _alerts(assignment, previous_owner_ids.get(assignment.lead_id)):
            continue
        key = (assignment.tenant_id, assignment.team_id)
        if key not in recipients:
            recipients[key] = unassigned_recipients(tenant_id=assignment.tenant_id, team_id=assignment.team_id)
        message = _alert_message(assignment)
        notes.extend(Notification(tenant_id=assignment.tenant_id, user_id=manager.pk, kind=ALERT_KIND,
                                  lead_id=assignment.lead_id, title=message["title"][:200], body=message["body"],
                                  created_at=assignment.at, email_due=False, dedup_key=message["dedup_key"][:120])
                     for manager in recipients[key])
    notifications_bulk(notifications=notes)
