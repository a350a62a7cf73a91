"""Routing test helpers: a fixed clock (NOW), teams, reps, rules and leads, leads owned through routing's writer, the running SLA clock."""
from __future__ import annotations

from datetime import UTC, datetime

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.tenancy.models import Membership, Role
from leads.models import Lead, LeadStage
from routing.models import RoutingRule, RoutingRuleMember, SlaClock, Strategy, Trigger
from routing.services.assign import lead_assign
from tests.support.factories import LeadFactory, MembershipFactory, TeamFactory, UserFactory

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


def owned(tenant, owner, **fields):
    fields.setdefault("stage", LeadStage.MQL)
    fields.setdefault("band", "mql")
    fields.setdefault("source", "web_form")
    new = lead(tenant, **fields)
    lead_assign(lead=new, owner=owner, actor=SYSTEM, trigger=Trigger.CAPTURE, now=NOW)
    return fresh(new)


def running(lead_) -> SlaClock | None:
    return SlaClock.objects.unscoped().filter(lead=lead_, stopped_at__isnull=True).first()


def as_user(user) -> Actor:
    return Actor.for_user(user)
