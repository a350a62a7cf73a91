"""Validation of routing and SLA configuration: field-level messages, used by the admin forms and the API.

Every function returns `{field: [messages]}` (empty when valid) and reads only the given tenant's
rows, so a rule can never point at another tenant's team or person, two rules never share a
position, and a rule never targets a team whose every rep is capped at zero.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from leadmgmt.tenancy.models import Membership, Role, Team, Tenant
from leads.countries import SALES_REGION_CODES, country_codes, region_code
from leads.models import LeadStage

from .models import (
    BusinessHours,
    RejectionReason,
    RoutingRule,
    RoutingSettings,
    SlaPolicy,
    Strategy,
    Territory,
)

Errors = dict[str, list[str]]
REP_ROLES = (Role.SDR, Role.AE)  # who a rule without roles routes to (routing.selectors.REP_ROLES)
NEEDS_TARGET = {Strategy.ROUND_ROBIN, Strategy.WEIGHTED_ROUND_ROBIN, Strategy.CAPACITY}


def _add(errors: Errors, name: str, message: str) -> None:
    errors.setdefault(name, []).append(message)


def _string_list_error(value: Any, *, allowed: Iterable[str] | None = None) -> str | None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        return 'Give a JSON list of texts, e.g. ["web_form", "chat"] (or [] for any).'
    if allowed is not None:
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            return f"Unknown value(s): {', '.join(unknown)}; choose from {', '.join(allowed)}."
    return None


def conditions_errors(conditions: Any) -> list[str]:
    """Problems of a rule's conditions, as the routing engine that evaluates them sees them."""
    from .conditions import conditions_errors as engine_conditions_errors

    return [str(message) for messages in engine_conditions_errors(conditions).values() for message in messages]


def _team_of_tenant(team: Team | None, tenant: Tenant) -> bool:
    return team is None or (team.pk is not None and team.tenant_id == tenant.pk
                            and Team.objects.for_tenant(tenant).filter(pk=team.pk).exists())


def team_all_capped_at_zero(*, tenant: Tenant, team: Team, roles: Iterable[str] = ()) -> bool:
    """True when the team has reps (of `roles`, default any rep role) and every one has a cap of 0."""
    capacities = list(Membership.objects.for_tenant(tenant).filter(team=team, role__in=list(roles) or REP_ROLES)
                      .values_list("capacity", flat=True))
    return bool(capacities) and all(cap == 0 for cap in capacities)


def routing_rule_errors(*, rule: RoutingRule, tenant: Tenant, member_count: int | None = None) -> Errors:
    """Problems of one rule. `member_count`, the number of people the rule will have, also checks that
    the strategy has someone to route to (the admin checks that with the people inline instead)."""
    errors: Errors = {}
    if rule.position is not None:
        taken = (RoutingRule.objects.for_tenant(tenant).filter(position=rule.position)
                 .exclude(pk=rule.pk).values_list("name", flat=True).first())
        if taken is not None:
            _add(errors, "position", f"Another routing rule (“{taken}”) already has position {rule.position}; "
                                     "choose a free position.")
    team = rule.team if rule.team_id else None
    if not _team_of_tenant(team, tenant):
        _add(errors, "team", "Choose a team of this tenant (this one does not exist or was deleted).")
        team = None
    if rule.strategy not in Strategy.values:
        _add(errors, "strategy", f"Unknown strategy '{rule.strategy}'.")
    if member_count is not None:
        for name, messages in rule_target_errors(rule=rule, team=team, member_count=member_count).items():
            errors.setdefault(name, []).extend(messages)
    if rule.strategy == Strategy.UNASSIGNED and team is not None:
        _add(errors, "team", "The Unassigned queue takes no team; leave it empty.")
    roles_error = _string_list_error(rule.roles, allowed=Role.values)
    if roles_error:
        _add(errors, "roles", roles_error)
    for message in conditions_errors(rule.conditions):
        _add(errors, "conditions", message)
    if rule.is_fallback and rule.is_active and RoutingRule.objects.for_tenant(tenant).filter(is_fallback=True, is_active=True).exclude(pk=rule.pk).exists():
        _add(errors, "is_fallback", "This tenant already has an active fallback rule; only one can be the fallback.")
    if team is not None and rule.strategy in NEEDS_TARGET and "roles" not in errors and team_all_capped_at_zero(
            tenant=tenant, team=team, roles=rule.roles):
        _add(errors, "team", f"Every rep of “{team.name}” has a cap of 0 open leads, so this rule could never "
                             "place a lead: raise a rep's capacity first.")
    return errors


def rule_target_errors(*, rule: RoutingRule, team: Team | None, member_count: int) -> Errors:
    """A strategy that picks among people needs a team or people; "Specific person" needs people."""
    errors: Errors = {}
    if rule.strategy in NEEDS_TARGET and team is None and member_count == 0:
        _add(errors, "team", f"{Strategy(rule.strategy).label} needs a team or people to route to.")
    if rule.strategy == Strategy.DIRECT and member_count == 0:
        _add(errors, "strategy", "“Specific person” needs at least one person to route to.")
    return errors


def rule_member_errors(*, tenant: Tenant, user, weight: Any) -> Errors:
    """Problems of one person of a rule: a member of this tenant, with a weight of 0 or more."""
    errors: Errors = {}
    if user is not None and not Membership.objects.for_tenant(tenant).filter(user=user).exists():
        _add(errors, "user", f"{user} is not a member of this tenant.")
    if weight is not None and (not isinstance(weight, int) or weight < 0):
        _add(errors, "weight", "A weight cannot be below zero (0 pauses the person).")
    return errors


def sla_policy_errors(*, policy: SlaPolicy, tenant: Tenant) -> Errors:
    errors: Errors = {}
    if policy.minutes is None or policy.minutes <= 0:
        _add(errors, "minutes", "An SLA needs a positive number of minutes (at least 1).")
    if policy.position is not None and SlaPolicy.objects.for_tenant(tenant).filter(position=policy.position).exclude(pk=policy.pk).exists():
        _add(errors, "position", f"Another SLA policy already has position {policy.position}.")
    for name, allowed in (("sources", None), ("bands", None), ("stages", LeadStage.values)):
        message = _string_list_error(getattr(policy, name), allowed=allowed)
        if message:
            _add(errors, name, message)
    return errors


def escalation_steps_errors(steps: list[dict]) -> Errors:
    """A ladder's rungs (`{"level", "after_minutes", "action"}`): levels 1, 2, 3 … with times that grow."""
    errors: Errors = {}
    levels = [step["level"] for step in steps]
    if len(set(levels)) != len(levels):
        _add(errors, "level", "Two steps have the same level.")
    elif sorted(levels) != list(range(1, len(levels) + 1)):
        _add(errors, "level", "Number the steps 1, 2, 3 … without gaps.")
    ordered = sorted(steps, key=lambda step: step["level"])
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after["after_minutes"] <= before["after_minutes"]:
            _add(errors, "after_minutes", f"Steps are out of order: step {after['level']} (+{after['after_minutes']} "
                                          f"min) must come later than step {before['level']} "
                                          f"(+{before['after_minutes']} min).")
    return errors


def territory_errors(*, territory: Territory, tenant: Tenant) -> Errors:
    errors: Errors = {}
    if territory.team_id and not _team_of_tenant(territory.team, tenant):
        _add(errors, "team", "Choose a team of this tenant (this one does not exist or was deleted).")
    if territory.name and Territory.objects.for_tenant(tenant).filter(name=territory.name).exclude(
            pk=territory.pk).exists():
        _add(errors, "name", "A territory with this name already exists.")
    low, high = territory.company_size_min, territory.company_size_max
    if low is not None and high is not None and low > high:
        _add(errors, "company_size_max", "The largest company size must not be below the smallest.")
    for name in ("countries", "regions", "industries"):
        message = _string_list_error(getattr(territory, name))
        if message:
            _add(errors, name, message)
    if "countries" not in errors:
        unknown = country_codes(territory.countries)[1]
        if unknown:
            _add(errors, "countries", f"Unknown country {', '.join(repr(v) for v in unknown)}: use country names "
                                      'or ISO codes, e.g. ["United States", "DE"].')
    if "regions" not in errors:
        unknown = [r for r in territory.regions if not region_code(r)]
        if unknown:
            _add(errors, "regions", f"Unknown region {', '.join(repr(v) for v in unknown)}: use "
                                    f"{', '.join(SALES_REGION_CODES)} (or list the countries).")
    return errors


def territory_canonicalize(*, countries: Any, regions: Any) -> tuple[Any, Any]:
    """A territory's countries as ISO alpha-2 codes and its regions as NA/LATAM/EMEA/APAC, the form they
    are saved in; a list with anything not understood is returned unchanged for `territory_errors`."""
    if isinstance(countries, list) and all(isinstance(c, str) for c in countries):
        codes, unknown = country_codes(countries)
        if not unknown:
            countries = codes
    if isinstance(regions, list) and all(isinstance(r, str) and region_code(r) for r in regions):
        regions = list(dict.fromkeys(region_code(r) for r in regions))
    return countries, regions


def business_hours_errors(*, hours: BusinessHours, tenant: Tenant) -> Errors:
    errors: Errors = {}
    if hours.weekday is not None and BusinessHours.objects.for_tenant(tenant).filter(weekday=hours.weekday).exclude(pk=hours.pk).exists():
        _add(errors, "weekday", "This weekday already has business hours.")
    if hours.opens_at and hours.closes_at and hours.opens_at >= hours.closes_at:
        _add(errors, "closes_at", "Closing time must be after opening time.")
    return errors


def routing_settings_errors(*, routing_settings: RoutingSettings, tenant: Tenant) -> Errors:
    errors: Errors = {}
    if RoutingSettings.objects.for_tenant(tenant).exclude(pk=routing_settings.pk).exists():
        _add(errors, "__all__", "This tenant already has routing settings: edit them instead.")
    if routing_settings.default_team_id and not _team_of_tenant(routing_settings.default_team, tenant):
        _add(errors, "default_team", "Choose a team of this tenant.")
    flag, alert = routing_settings.aging_flag_hours, routing_settings.aging_alert_hours
    if flag is not None and alert is not None and alert < flag:
        _add(errors, "aging_alert_hours", "The manager alert cannot come before the aging flag.")
    return errors


def rejection_reason_errors(*, reason: RejectionReason, tenant: Tenant) -> Errors:
    errors: Errors = {}
    if reason.code and RejectionReason.objects.for_tenant(tenant).filter(code=reason.code).exclude(
            pk=reason.pk).exists():
        _add(errors, "code", "This reason code already exists.")
    return errors


def membership_capacity_errors(*, membership: Membership) -> Errors:
    """A cap of 0 on the last rep without a zero cap in a team that an active rule routes to is refused."""
    if membership.capacity != 0 or membership.team_id is None:
        return {}
    rules = RoutingRule.objects.for_tenant(membership.tenant_id).filter(team_id=membership.team_id,
                                                  is_active=True, strategy__in=NEEDS_TARGET).order_by("position")
    for rule in rules:
        roles = rule.roles or list(REP_ROLES)
        if membership.role not in roles:
            continue
        others_can_take_leads = (
            Membership.objects.for_tenant(membership.tenant_id).filter(team_id=membership.team_id,
                                                 role__in=roles)
            .exclude(pk=membership.pk).exclude(capacity=0).exists()  # a NULL cap (no cap) stays in
        )
        if not others_can_take_leads:
            return {"capacity": [f"Every rep of “{membership.team.name}” would have a cap of 0, and the rule "
                                 f"“{rule.name}” routes to that team: it could never place a lead."]}
    return {}
