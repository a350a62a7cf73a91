"""Helpers of the workspace tests: members by role, and leads owned the way routing gives them (an Assignment and a running SLA clock)."""
from __future__ import annotations

import datetime as dt

from django.test import Client
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.middleware import SESSION_TENANT_KEY
from leadmgmt.tenancy.models import Role
from leads.models import Lead, LeadStage
from routing.models import SlaClock, Trigger
from routing.services.assign import lead_assign
from tests.support.factories import LeadFactory, MembershipFactory, UserFactory

PASSWORD = "pw-for-tests-123"


def signed_in_client(user, tenant=None, *, enforce_csrf_checks=False) -> Client:
    """A Django test client signed in as `user`, with `tenant` (if given) chosen as the active workspace."""
    client = Client(enforce_csrf_checks=enforce_csrf_checks)
    client.force_login(user)
    if tenant is not None:
        session = client.session
        session[SESSION_TENANT_KEY] = tenant.pk
        session.save()
    return client


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
