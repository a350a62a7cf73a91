"""The leads app's subscriber to platform events: a new tenant gets its first lead form and the activity
outcome and lost-deal taxonomies."""
from __future__ import annotations

from django.dispatch import receiver

from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.events import tenant_provisioned

from .activity_outcomes import activity_outcomes_seed
from .lost_reasons import lost_reasons_seed
from .models import LeadForm


@receiver(tenant_provisioned, dispatch_uid="leads.tenant_provisioned_form")
def tenant_provisioned_form(sender, *, tenant, actor, form_name: str, allowed_origins, **kwargs) -> dict:
    """One lead form (any site may post to it unless `allowed_origins` says otherwise), its key sent back; and
    the default call/email/meeting outcomes (one receiver per app: the floors answer in order)."""
    form = LeadForm.objects.create(
        tenant=tenant, name=form_name, allowed_origins=allowed_origins if allowed_origins is not None else ["*"]
    )
    audit_record(tenant=tenant, actor=actor, action="lead_form.created", obj=form, metadata={"name": form_name})
    codes = activity_outcomes_seed(tenant_id=tenant.pk)
    audit_record(tenant=tenant, actor=actor, action="activity_outcomes.defaults_created", obj=tenant,
                 metadata={"codes": codes})
    lost = lost_reasons_seed(tenant_id=tenant.pk)
    audit_record(tenant=tenant, actor=actor, action="lost_reasons.defaults_created", obj=tenant,
                 metadata={"codes": lost})
    return {"form_key": form.key}
