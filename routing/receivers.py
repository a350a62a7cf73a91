"""Routing's subscribers: a new tenant gets the default routing set-up (`tenant_provisioned`), and a
score that crosses a band boundary may re-route the lead (scoring's `lead_band_changed`).

Conservative by design. The receiver only enqueues `lead_route_task(trigger="score_band")` after
the scoring transaction commits; the task then re-routes when
  * the lead is unassigned (a better band may now match a rule with somebody to take it), or
  * nobody has worked it yet (no first contact, not accepted, still "new") and the new band sends
    it to a different rule whose eligible reps do not include the current owner (e.g. it jumped to
    SQL and score >= 80 goes to senior AEs).
A lead a rep already contacted stays with that rep: taking it away would break a conversation in
progress and restart their SLA, and a rising score is good news for its owner. Leads that are
closed (converted, rejected, archived …) are never touched. The decision itself lives in
`routing.services.assign.lead_route_auto`, with the lead row locked.

A band change also re-evaluates the SLA (`lead_band_changed_sla`): when the lead has a running
first-contact clock, `sla_clock_tighten_task` runs after the commit and moves the clock to the policy
that matches now if that one is tighter (a warm lead's 1 hour becomes the hot 5 minutes from that
moment, never later than the old deadline); a cooler band never loosens a clock.
"""
from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from leadmgmt.tenancy.events import tenant_provisioned
from leadmgmt.webhooks.events import webhook_endpoint_disabled
from scoring.events import lead_band_changed

from .defaults import routing_defaults_create
from .models import SlaClock, SlaKind, Trigger


@receiver(lead_band_changed, dispatch_uid="routing.lead_band_changed_reroute")
def lead_band_changed_reroute(sender, *, tenant, lead_id, from_band, to_band, score, **kwargs) -> None:
    from .tasks import lead_route_task

    if not from_band:
        return  # a new lead's first score: the capture task routes it right after scoring it
    tenant_id, lead_id = tenant.pk, str(lead_id)
    transaction.on_commit(lambda: lead_route_task.delay(tenant_id=tenant_id, lead_id=lead_id,
                                                        trigger=Trigger.SCORE_BAND.value))


@receiver(lead_band_changed, dispatch_uid="routing.lead_band_changed_sla")
def lead_band_changed_sla(sender, *, tenant, lead_id, from_band, to_band, score, **kwargs) -> None:
    """Only a lead with a running first-contact clock gets the task (one indexed read here, no message for
    the many leads without a clock in a bulk re-score); the task decides with the lead row locked."""
    from .tasks import sla_clock_tighten_task

    if not from_band:
        # A new lead's first score: the capture pipeline scores a lead before routing it, so its clock
        # started on the policy of this band already (no task per new lead in a burst).
        return
    running = SlaClock.objects.for_tenant(tenant.pk).filter(lead_id=lead_id, stopped_at__isnull=True,
                                                 kind=SlaKind.FIRST_CONTACT)
    if not running.exists():
        return
    tenant_id, lead_id = tenant.pk, str(lead_id)
    transaction.on_commit(lambda: sla_clock_tighten_task.delay(tenant_id=tenant_id, lead_id=lead_id))


@receiver(tenant_provisioned, dispatch_uid="routing.tenant_provisioned_defaults")
def tenant_provisioned_defaults(sender, *, tenant, actor, **kwargs) -> None:
    """Default rules, seed SLA policies with their escalation ladders, the rejection taxonomy, business hours."""
    routing_defaults_create(tenant=tenant, actor=actor)


@receiver(webhook_endpoint_disabled, dispatch_uid="routing.webhook_endpoint_disabled_notify")
def webhook_endpoint_disabled_notify(sender, *, tenant, endpoint, admin_ids, reason, **kwargs) -> None:
    """A webhook endpoint disabled for failing too long: each tenant admin gets an in-app notification,
    emailed right after the commit (the notification machinery's own task and sweep)."""
    from .notifications import notify

    for user_id in admin_ids:
        notify(tenant=tenant, user=user_id, kind="webhook_disabled", email=True,
               dedup_key=f"webhook:{endpoint.pk}:disabled:{endpoint.disabled_at:%Y%m%d%H%M%S}",
               title=f"Webhook disabled: {endpoint.url}"[:200],
               body=f"{reason}\n\nFix the receiver, then switch the endpoint back on (API: PATCH "
                    f"/api/v1/webhooks/{endpoint.pk}/ with is_active=true, or the admin). Deliveries given up can "
                    "be sent again from the delivery log.")
