"""Celery tasks that exist for tests only; a real worker loads them with `include=("tests.support.tasks",)`."""
from __future__ import annotations

import time

from celery import shared_task


@shared_task(name="tests.support.tasks.sleep_task", acks_late=True)
def sleep_task(seconds: float) -> None:
    """Stand-in for a slow-ish default-queue task (a capture pipeline run): only takes time."""
    time.sleep(seconds)
