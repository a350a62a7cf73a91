"""The permission matrix: which role (or API key scope) may do what, the one table the UI, the API and the admin read.

Two layers decide whether someone may act on a lead:
1. the role × action matrix below (`may`, `key_may`): e.g. marketing ops read leads but do not work them;
2. the object rule (`may_on_lead`): SDRs and AEs act only on leads they own; managers on the leads they see
   (their teams', their own and Unassigned: the visibility of `leads.selectors`); admins and API keys on all.
A lead out of the member's sight is a 404 before either is asked.
"""
from __future__ import annotations

from collections.abc import Iterable

from .models import ApiKey, ApiScope, Membership, Role

# --- actions -------------------------------------------------------------------------------------------
LEAD_VIEW = "lead.view"  # read leads, their timeline, history and enrolments
LEAD_WORK = "lead.work"  # log activity, accept, reject, qualify, disqualify, recycle, convert
LEAD_EDIT = "lead.edit"  # edit a lead's contact and company details (lead page form, PATCH without owner)
LEAD_NURTURE = "lead.nurture"  # enrol a lead in a nurture sequence by hand, stop an enrolment
LEAD_EXPORT = "lead.export"  # download the leads of a list the member sees as CSV (API, queues, admin action)
LEAD_REASSIGN = "lead.reassign"  # move one lead to another rep (or through the rules), PATCH owner
LEAD_REASSIGN_BULK = "lead.reassign_bulk"  # move all open leads of a rep at once
ROUTING_DRY_RUN = "routing.dry_run"  # where would the rules send a lead (writes nothing)
MANAGER_PAGES = "manager.pages"  # the /manager/ pages: team queue, Unassigned, SLAs, reps, hot list
DASHBOARD_VIEW_TEAM = "dashboard.view_team"  # the team and funnel dashboards
TEAM_MANAGE = "team.manage"  # invite members, change roles, teams, capacity, access; tenant admin pages
CONFIG_EDIT = "config.edit"  # scoring, routing, nurture configuration in the admin
DUPLICATES_REVIEW = "duplicates.review"  # the merge review queue: merge or dismiss possible duplicates, undo a merge
LEAD_IMPORT = "lead.import"  # CSV imports: upload, map, preview, run, refused rows, undo
PRIVACY_EXPORT = "privacy.export"  # a person's subject access export (GDPR/CCPA): the Lead admin action, the command
PRIVACY_ERASE = "privacy.erase"  # erase a person at their request: the Lead admin action, the command
WEBHOOKS_MANAGE = "webhooks.manage"  # outbound webhook endpoints, their secrets and delivery log (API, admin)
OPPORTUNITY_CLOSE = "opportunity.close"  # move an opportunity's stage, close it won or lost (API, lead page, admin)
OUTCOMES_SYNC = "outcomes.sync"  # send outcomes of deals closed in another CRM (`POST /api/v1/outcomes/`): keys only
SCORING_BACKTEST = "scoring.backtest"  # backtest a scoring model on the closed leads (API, the scoring admin's page)
PREDICTIVE_VIEW = "predictive.view"  # the learned scoring model: status, metrics, weights (API, admin)
PREDICTIVE_TRAIN = "predictive.train"  # train the learned scoring model (API, command)
COSTS_VIEW = "costs.view"  # read source and campaign costs (`GET /api/v1/costs/`, the admin) and the Source ROI
COSTS_EDIT = "costs.edit"  # enter costs (`POST /api/v1/costs/`, the admin)
PLAN_VIEW = "plan.view"  # the funnel plan and its actual against plan (`/dashboard/plan/`, `GET /api/v1/funnel-plan/`)
PLAN_EDIT = "plan.edit"  # change the funnel plan (the plan page's form, `PUT /api/v1/funnel-plan/`)
REPORT_FEEDBACK = "report.feedback"  # the feedback-loop report: rejections, MQL acceptance, won revenue, threshold

REPS = frozenset({Role.SDR, Role.AE})
SALES = frozenset({Role.SDR, Role.AE, Role.MANAGER, Role.ADMIN})
EVERYONE = frozenset(Role)

# Role × action. Marketing ops read every lead, own nurture and the configuration, and never work reps' leads.
MATRIX: dict[str, frozenset[str]] = {
    LEAD_VIEW: EVERYONE,
    LEAD_WORK: SALES,
    LEAD_EDIT: SALES,
    LEAD_NURTURE: EVERYONE,
    LEAD_EXPORT: EVERYONE,  # each exports only what they see (leads.selectors); every export is audited
    LEAD_REASSIGN: frozenset({Role.MANAGER, Role.ADMIN}),
    LEAD_REASSIGN_BULK: frozenset({Role.MANAGER, Role.ADMIN}),
    ROUTING_DRY_RUN: frozenset({Role.MANAGER, Role.ADMIN, Role.MARKETING_OPS}),
    MANAGER_PAGES: frozenset({Role.MANAGER, Role.ADMIN}),
    DASHBOARD_VIEW_TEAM: frozenset({Role.MANAGER, Role.ADMIN, Role.MARKETING_OPS}),
    TEAM_MANAGE: frozenset({Role.ADMIN}),
    CONFIG_EDIT: frozenset({Role.ADMIN, Role.MARKETING_OPS}),
    DUPLICATES_REVIEW: frozenset({Role.MANAGER, Role.ADMIN}),
    LEAD_IMPORT: frozenset({Role.ADMIN, Role.MARKETING_OPS}),
    PRIVACY_EXPORT: frozenset({Role.ADMIN}),
    PRIVACY_ERASE: frozenset({Role.ADMIN}),
    WEBHOOKS_MANAGE: frozenset({Role.ADMIN}),
    # Reps on the opportunities of their own leads (or that they own), managers on their team's, admins on all.
    OPPORTUNITY_CLOSE: SALES,
    OUTCOMES_SYNC: frozenset(),  # an integration's job: no member role sends a batch of outcomes
    SCORING_BACKTEST: frozenset({Role.ADMIN, Role.MARKETING_OPS}),
    PREDICTIVE_VIEW: frozenset({Role.MANAGER, Role.ADMIN, Role.MARKETING_OPS}),
    PREDICTIVE_TRAIN: frozenset({Role.ADMIN, Role.MARKETING_OPS}),  # the configuration editors (CONFIG_EDIT)
    # Money and targets: the people who read the dashboards see them, those who configure the system set them.
    COSTS_VIEW: frozenset({Role.MANAGER, Role.ADMIN, Role.MARKETING_OPS}),
    COSTS_EDIT: frozenset({Role.ADMIN, Role.MARKETING_OPS}),
    PLAN_VIEW: frozenset({Role.MANAGER, Role.ADMIN, Role.MARKETING_OPS}),
    PLAN_EDIT: frozenset({Role.ADMIN, Role.MARKETING_OPS}),
    REPORT_FEEDBACK: frozenset({Role.MANAGER, Role.ADMIN, Role.MARKETING_OPS}),  # aggregates of every lead: no reps
}

# The scope an API key needs per action; an action missing here is for signed-in members only (a person
# accepts, qualifies or logs a call, never an integration).
KEY_SCOPES: dict[str, str] = {
    LEAD_VIEW: ApiScope.LEADS_READ,
    LEAD_EDIT: ApiScope.LEADS_WRITE,
    LEAD_NURTURE: ApiScope.LEADS_WRITE,
    LEAD_EXPORT: ApiScope.LEADS_READ,
    LEAD_REASSIGN: ApiScope.LEADS_WRITE,
    LEAD_REASSIGN_BULK: ApiScope.LEADS_WRITE,
    ROUTING_DRY_RUN: ApiScope.LEADS_READ,
    LEAD_IMPORT: ApiScope.LEADS_WRITE,
    OPPORTUNITY_CLOSE: ApiScope.LEADS_WRITE,
    OUTCOMES_SYNC: ApiScope.OUTCOMES_WRITE,
    SCORING_BACKTEST: ApiScope.LEADS_READ,
    PREDICTIVE_VIEW: ApiScope.PREDICTIVE_READ,
    PREDICTIVE_TRAIN: ApiScope.PREDICTIVE_TRAIN,
    COSTS_VIEW: ApiScope.COSTS_READ,
    COSTS_EDIT: ApiScope.COSTS_WRITE,
    PLAN_VIEW: ApiScope.PLAN_READ,
    PLAN_EDIT: ApiScope.PLAN_WRITE,
    REPORT_FEEDBACK: ApiScope.LEADS_READ,
}

# Roles that act only on the leads they own (the rest act on every lead they can see).
OWN_LEADS_ONLY = REPS


def _known(action: str) -> None:
    if action not in MATRIX:
        raise KeyError(f"Unknown action {action!r}: add it to leadmgmt.tenancy.roles.MATRIX.")


def may(role: str | None, action: str) -> bool:
    """Whether a member with `role` may do `action` at all (before the object rule)."""
    _known(action)
    return role is not None and role in MATRIX[action]


def roles_for(action: str) -> frozenset[str]:
    """The roles that may do `action` (for code that filters by role, e.g. the admin's view_roles)."""
    _known(action)
    return MATRIX[action]


def key_may(scopes: Iterable[str] | None, action: str) -> bool:
    """Whether an API key holding `scopes` may do `action`."""
    _known(action)
    required = KEY_SCOPES.get(action)
    return required is not None and required in set(scopes or ())


def principal_may(*, action: str, membership: Membership | None = None, api_key: ApiKey | None = None) -> bool:
    """`may` for a member (active ones only), `key_may` for an API key (active ones only)."""
    if api_key is not None:
        return api_key.is_active and key_may(api_key.scopes, action)
    return membership is not None and membership.is_active and may(membership.role, action)


def may_on_lead(*, action: str, owner_id: int | None, membership: Membership | None = None,
                api_key: ApiKey | None = None) -> bool:
    """The matrix plus the object rule for a lead the principal can see: reps only on leads they own."""
    if not principal_may(action=action, membership=membership, api_key=api_key):
        return False
    if api_key is not None:
        return True
    return membership.role not in OWN_LEADS_ONLY or (owner_id is not None and owner_id == membership.user_id)
