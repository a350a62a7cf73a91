"""Nurture's subscribers: a new tenant gets the default nurture set-up (`tenant_provisioned`), and a
nurtured lead whose score crosses a band boundary is re-checked for readiness (after the scoring
transaction commits, in a worker)."""
from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from leadmgmt.tenancy.events import tenant_provisioned
from scoring.events import lead_band_changed

from .defaults import nurture_defaults_create
from .models import LIVE_ENROLLMENT_STATUSES, Enrollment


@receiver(lead_band_changed, dispatch_uid="nurture.lead_band_changed_readiness")
def lead_band_changed_readiness(sender, *, tenant, lead_id, from_band, to_band, score, **kwargs) -> None:
    from .tasks import nurture_readiness_task

    if score is None:
        return
    ready = Enrollment.objects.for_tenant(tenant).filter(lead_id=lead_id, status__in=LIVE_ENROLLMENT_STATUSES, sequence__ready_score__isnull=False,
        sequence__ready_score__lte=score).exists()
    if ready:
        tenant_id, lead_id = tenant.pk, str(lead_id)
        transaction.on_commit(lambda: nurture_readiness_task.delay(tenant_id=tenant_id, lead_id=lead_id))


@receiver(tenant_provisioned, dispatch_uid="nurture.tenant_provisioned_defaults")
def tenant_provisioned_defaults(sender, *, tenant, actor, **kwargs) -> None:
    """Nurture settings, the exit signal types and seed 002's five sequences."""
    nurture_defaults_create(tenant=tenant, actor=actor)
