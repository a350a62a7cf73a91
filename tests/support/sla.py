"""Helpers for the SLA Agent tests: people, policies with ladders, leads assigned with a running clock."""
from __future__ import annotations

import datetime as dt

import pytest

from leadmgmt.tenancy.models import Role
from leads.models import Lead
from routing.models import Assignment, EscalationStep, SlaPolicy, Trigger
from routing.services.sla_clocks import sla_clock_restart
from tests.support.factories import LeadFactory, MembershipFactory, TeamFactory, UserFactory

# A Monday morning, 09:00 UTC.
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def person(tenant, *, role=Role.SDR, team=None, email=None, **membership):
    user = UserFactory(**({"username": email, "email": email} if email else {}))
    MembershipFactory(tenant=tenant, user=user, role=role, team=team, **membership)
    return user


def sales_team(tenant, *, name="SDR Team", reps=2, manager=True):
    """A team with `reps` SDRs and (optionally) its manager; returns (team, manager, [reps])."""
    team = TeamFactory(tenant=tenant, name=name)
    boss = person(tenant, role=Role.MANAGER, team=team) if manager else None
    if boss is not None:
        team.manager = boss
        team.save(update_fields=["manager"])
    return team, boss, [person(tenant, team=team) for _ in range(reps)]


def sla_policy(tenant, *, position=1, minutes=5, steps=(), **fields) -> SlaPolicy:
    """A policy with its ladder: steps are (level, after_minutes, action)."""
    policy = SlaPolicy.objects.unscoped().create(tenant=tenant, position=position, name=fields.pop("name", f"P{position}"),
                                                 minutes=minutes, **fields)
    EscalationStep.objects.unscoped().bulk_create([
        EscalationStep(tenant=tenant, policy=policy, level=level, after_minutes=after, action=action)
        for level, after, action in steps
    ])
    return policy


def assign(lead: Lead, owner, *, now=T0, trigger=Trigger.CAPTURE):
    """Give the lead to `owner` the way routing does (owner, assigned_at, Assignment) and restart its clock."""
    previous = lead.owner_id
    lead.owner, lead.assigned_at = owner, now if owner else None
    Lead.objects.unscoped().filter(pk=lead.pk).update(owner=owner, assigned_at=lead.assigned_at)
    assignment = Assignment.objects.unscoped().create(
        tenant_id=lead.tenant_id, lead=lead, owner=owner, previous_owner_id=previous, trigger=trigger,
        actor_kind="agent", actor_name="Routing Agent", at=now)
    return sla_clock_restart(lead=lead, assignment=assignment, now=now)


def assigned_lead(tenant, owner, *, now=T0, **fields) -> tuple[Lead, object]:
    lead = LeadFactory(tenant=tenant, **fields)
    return lead, assign(lead, owner, now=now)


def fresh(obj):
    return type(obj).objects.unscoped().get(pk=obj.pk)


class _Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self):
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        import email

        message = email.message_from_bytes(envelope.content)
        self.messages.append({"to": list(envelope.rcpt_tos), "from": envelope.mail_from,
                              "subject": str(message["Subject"]), "body": message.get_payload()})
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server (aiosmtpd) on a free port; Django's SMTP backend points at it."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.DEFAULT_FROM_EMAIL = "leadmgmt <sla@leadmgmt.test>"
    try:
        yield inbox
    finally:
        controller.stop()
