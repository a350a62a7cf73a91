"""Bounced addresses: a hard bounce flags every lead of the tenant with that address for review (the lead page's
banner, the manager's "Bounced addresses" list) until someone corrects the email (`lead_update` clears the flag)
or dismisses it here."""
from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_bulk, audit_event_build
from leads.models import Lead


@transaction.atomic
def leads_email_bounced_flag(*, tenant, email: str, note: str = "", actor: Actor,
                             at: datetime | None = None) -> list:
    """Flag the tenant's leads whose email is `email` (already lower-cased) as bounced at `at`, in one UPDATE,
    with one `lead.email_bounced` audit event per lead flagged. A lead already flagged keeps its first date.
    Returns the ids of the leads it flagged."""
    at = at or timezone.now()
    if not email:
        return []
    flagged = list(
        Lead.objects.for_tenant(tenant).filter(email=email, email_bounced_at__isnull=True)
        .values_list("pk", flat=True)
    )
    if not flagged:
        return []
    Lead.objects.for_tenant(tenant).filter(pk__in=flagged, email_bounced_at__isnull=True).update(
        email_bounced_at=at, email_bounce_note=note[:300], updated_at=timezone.now())
    audit_bulk(events=[
        audit_event_build(tenant=tenant, actor=actor, action="lead.email_bounced", object_type="leads.lead",
                          object_id=lead_id, metadata={"email": email, "note": note[:300], "bounced_at": at})
        for lead_id in flagged
    ])
    return flagged


@transaction.atomic
def lead_email_bounce_dismiss(*, lead: Lead, actor: Actor) -> bool:
    """Clear the lead's bounce flag (the address was checked and is kept). Audited as
    `lead.email_bounce_dismissed`; False, and nothing written, when it was not flagged (a repeated click)."""
    before = (Lead.objects.for_tenant(lead.tenant_id).filter(pk=lead.pk, email_bounced_at__isnull=False)
              .values_list("email_bounced_at", flat=True).first())
    if before is None:
        return False
    cleared = Lead.objects.for_tenant(lead.tenant_id).filter(pk=lead.pk, email_bounced_at=before).update(
        email_bounced_at=None, email_bounce_note="", updated_at=timezone.now())
    if not cleared:
        return False
    audit_bulk(events=[audit_event_build(
        tenant=lead.tenant, actor=actor, action="lead.email_bounce_dismissed", obj=lead,
        changes={"email_bounced_at": [before, None]}, metadata={"email": lead.email})])
    lead.email_bounced_at, lead.email_bounce_note = None, ""
    return True
