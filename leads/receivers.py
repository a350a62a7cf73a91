"""The leads app's subscriber to platform events: a new tenant gets its first lead form."""
from __future__ import annotations

from django.dispatch import receiver

from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.events import tenant_provisioned

from .models import LeadForm


@receiver(tenant_provisioned, dispatch_uid="leads.tenant_provisioned_form")
def tenant_provisioned_form(sender, *, tenant, actor, form_name: str, allowed_origins, **kwargs) -> dict:
    """One lead form (any site may post to it unless `allowed_origins` says otherwise); its key goes back."""
    form = LeadForm.objects.unscoped().create(
        tenant=tenant, name=form_name, allowed_origins=allowed_origins if allowed_origins is not None else ["*"]
    )
    audit_record(tenant=tenant, actor=actor, action="lead_form.created", obj=form, metadata={"name": form_name})
    return {"form_key": form.key}
