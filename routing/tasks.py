"""Celery tasks of the Routing Agent and the SLA Agent: thin, re-runnable wrappers around routing services."""
from __future__ import annotations

from .sla_tasks import *  # noqa: F401,F403  (SLA Agent tasks live there; autodiscovery imports this module)
