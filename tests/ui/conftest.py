"""Fixtures of the UI tests: a tenant with the routing defaults (rejection taxonomy, SLA policies), reps,
and leads owned the way routing gives them (an Assignment and a running SLA clock)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.middleware import SESSION_TENANT_KEY
from leadmgmt.tenancy.models import Role
from leads.models import Lead, LeadStage
from routing.defaults import routing_defaults_create
from routing.models import SlaClock, Trigger
from routing.services.assign import lead_assign

from ..factories import LeadFactory, MembershipFactory, TeamFactory, UserFactory

PASSWORD = "pw-for-tests-123"


def person(tenant, *, role=Role.SDR, team=None, username=None, **membership):
    user = UserFactory(**({"username": username, "email": username} if username else {}))
    MembershipFactory(tenant=tenant, user=user, role=role, team=team, **membership)
    return user


def owned_lead(tenant, owner, *, due_in: dt.timedelta | None = None, now=None, **fields) -> Lead:
    """A lead assigned to `owner` through routing's writer (clock started); `due_in` pins its SLA due time."""
    fields.setdefault("stage", LeadStage.MQL)
    fields.setdefault("band", "mql")
    lead = LeadFactory(tenant=tenant, **fields)
    lead_assign(lead=lead, owner=owner, actor=SYSTEM, trigger=Trigger.CAPTURE, now=now or timezone.now())
    if due_in is not None:  # test set-up: a known order of deadlines (the clock and the lead's mirror of it)
        due = timezone.now() + due_in
        SlaClock.objects.unscoped().filter(lead=lead, stopped_at__isnull=True).update(due_at=due)
        Lead.objects.unscoped().filter(pk=lead.pk).update(sla_due_at=due)
    return Lead.objects.unscoped().get(pk=lead.pk)


@pytest.fixture
def org(tenant):
    """Routing defaults of the tenant, an SDR team with its manager and two SDRs."""
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    sdrs = TeamFactory(tenant=tenant, name="SDRs")
    manager = person(tenant, role=Role.MANAGER, team=sdrs, username="manager@acme.test")
    return {
        "team": sdrs,
        "manager": manager,
        "rep": person(tenant, team=sdrs, username="rep@acme.test"),
        "rep2": person(tenant, team=sdrs, username="rep2@acme.test"),
    }


@pytest.fixture
def signed_in():
    """A Django test client signed in as `user`, with `tenant` (if given) chosen as the active workspace."""

    def _client(user, tenant=None, *, enforce_csrf_checks=False) -> Client:
        client = Client(enforce_csrf_checks=enforce_csrf_checks)
        client.force_login(user)
        if tenant is not None:
            session = client.session
            session[SESSION_TENANT_KEY] = tenant.pk
            session.save()
        return client

    return _client
