"""The workspace's subscriber to the lead core's events: a new lead goes through the capture pipeline."""
from __future__ import annotations

from django.db import connection, transaction
from django.dispatch import receiver

from leads.events import lead_captured


@receiver(lead_captured, dispatch_uid="workspace.lead_captured_pipeline")
def lead_captured_pipeline(sender, *, tenant, lead, created, **kwargs) -> None:
    """After commit, one worker task per tenant and transaction runs the capture pipeline
    (`lead_captured_task`: score, then route, in batches), so a batch of 1,000 leads is one unit.

    The lead itself is the outbox: capture marked it pending in its INSERT. If the task is lost, the
    pipeline sweep finds the lead still pending and enqueues the task again.
    """
    from .tasks import lead_captured_enqueue

    if not created:
        return
    tenant_id = tenant.pk
    for _savepoints, callback, _robust in connection.run_on_commit:
        if getattr(callback, "pipeline_tenant_id", None) == tenant_id:
            return  # this transaction already hands its new leads of the tenant to one task

    def enqueue() -> None:
        lead_captured_enqueue(tenant_id=tenant_id)

    enqueue.pipeline_tenant_id = tenant_id
    # robust: the leads are committed; a broker that is down must not turn their answer into an error
    # (the pipeline sweep finds them pending and enqueues the task once Redis is back).
    transaction.on_commit(enqueue, robust=True)
