"""Builders shared by the routing engine tests: teams, reps, rules and leads of one tenant, fixed time."""
from __future__ import annotations

from datetime import UTC, datetime

from leadmgmt.tenancy.models import Membership, Role
from leads.models import Lead
from routing.models import RoutingRule, RoutingRuleMember, Strategy

from ..factories import LeadFactory, MembershipFactory, TeamFactory, UserFactory

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday morning


def team(tenant, name="SDR Team", **kwargs):
    return TeamFactory(tenant=tenant, name=name, **kwargs)


def rep(tenant, team=None, role=Role.SDR, username=None, **kwargs):
    user = UserFactory(**({"username": username} if username else {}))
    MembershipFactory(tenant=tenant, user=user, role=role, team=team, **kwargs)
    return user


def membership(tenant, user) -> Membership:
    return Membership.objects.unscoped().get(tenant=tenant, user=user)


def rule(tenant, position, strategy=Strategy.ROUND_ROBIN, *, team=None, conditions=None, members=(), name=None,
         **kwargs) -> RoutingRule:
    created = RoutingRule.objects.unscoped().create(
        tenant=tenant, position=position, name=name or f"Rule {position}", strategy=strategy, team=team,
        conditions=conditions or [], **kwargs)
    for member in members:
        user, weight = member if isinstance(member, tuple) else (member, 1)
        RoutingRuleMember.objects.unscoped().create(tenant=tenant, rule=created, user=user, weight=weight)
    return created


def lead(tenant, **kwargs) -> Lead:
    return LeadFactory(tenant=tenant, **kwargs)


def fresh(obj):
    return type(obj).objects.unscoped().get(pk=obj.pk)


def owners(leads) -> dict:
    counts: dict = {}
    for row in Lead.objects.unscoped().filter(pk__in=[x.pk for x in leads]).values_list("owner_id", flat=True):
        counts[row] = counts.get(row, 0) + 1
    return counts
