"""Celery tasks of the SLA Agent (beat): SLA enforcement and escalation, aging, notification emails.

Thin and re-runnable: each calls one service that scans database columns (`next_action_at`,
aging flags, `email_due`) with status guards, so a duplicate or concurrent run does nothing twice.
`now` (an ISO datetime) is for tests and replays; beat sends none.
"""
from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import OperationalError

__all__ = ["aging_check_task", "notification_emails_task", "sla_enforce_task"]


def _when(now: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(now) if now else None


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def sla_enforce_task(now: str | None = None) -> dict:
    """Beat, every minute: breach due SLA clocks and take each due escalation step once."""
    from .services.sla import sla_enforce

    return sla_enforce(now=_when(now))


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def aging_check_task(now: str | None = None) -> dict:
    """Beat, every 15 minutes: flag leads untouched 48 h, alert managers at 72 h."""
    from .services.aging import leads_aging_check

    return leads_aging_check(now=_when(now))


@shared_task(acks_late=True)
def notification_emails_task(now: str | None = None) -> int:
    """Beat, every minute: email the notifications that are due, each once."""
    from .notifications import notification_emails_send

    return notification_emails_send(now=_when(now))
