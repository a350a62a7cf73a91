"""Celery tasks of the SLA Agent (beat): SLA enforcement and escalation, aging, notification emails."""
from __future__ import annotations
