"""The workspace's subscriber to the lead core's events: a new lead goes through the capture pipeline."""
from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from leads.events import lead_captured


@receiver(lead_captured, dispatch_uid="workspace.lead_captured_pipeline")
def lead_captured_pipeline(sender, *, tenant, lead, created, **kwargs) -> None:
    """After commit, one worker task scores the new lead and then routes it (`lead_captured_task`).

    One task, in that order: score-based rules see the score at capture, and the lead costs one
    task instead of a score task, a route task and a re-route when its first band arrives.
    """
    from .tasks import lead_captured_task

    if not created:
        return
    tenant_id, lead_id = tenant.pk, str(lead.pk)
    transaction.on_commit(lambda: lead_captured_task.delay(tenant_id=tenant_id, lead_id=lead_id))
