"""Reads of nurture: a lead's enrolments with their next step, and the sequences a lead can be put in."""
from __future__ import annotations

from leadmgmt.tenancy.cross_tenant import cross_tenant

from .models import Enrollment, Message, Sequence, SequenceStatus, Step
from .templating import template_render


def lead_enrollments(*, lead) -> list[Enrollment]:
    """The lead's enrolments, newest first, each with `next_step` (the Step due next, or None): two queries."""
    enrollments = list(Enrollment.objects.for_tenant(lead.tenant_id).filter(lead=lead)
                       .select_related("sequence").order_by("-enrolled_at", "-id"))
    wanted = {(e.sequence_id, e.next_position) for e in enrollments if e.next_position is not None
              and e.status in ("active", "paused")}
    steps: dict[int, list[Step]] = {}
    if wanted:
        for step in Step.objects.for_tenant(lead.tenant_id).filter(
                                                   sequence_id__in={s for s, _ in wanted}).order_by("position"):
            steps.setdefault(step.sequence_id, []).append(step)
    context = None
    for enrollment in enrollments:
        enrollment.next_step = None
        enrollment.next_subject = ""
        if (enrollment.sequence_id, enrollment.next_position) in wanted:
            enrollment.next_step = next((s for s in steps.get(enrollment.sequence_id, [])
                                         if s.position >= enrollment.next_position), None)
        if enrollment.next_step is not None:
            context = context if context is not None else subject_preview_context(lead=lead)
            enrollment.next_subject = template_render(enrollment.next_step.subject, context)
    return enrollments


def subject_preview_context(*, lead) -> dict[str, str]:
    """Merge fields of a step's subject as this lead would get it (a subject shown in the app must read
    "Thanks for your interest in Acme", never the raw `{{ tenant_name }}`)."""
    owner = lead.owner
    return {
        "first_name": lead.first_name, "last_name": lead.last_name, "full_name": lead.full_name,
        "email": lead.email, "company": lead.company, "job_title": lead.job_title,
        "owner_name": (owner.get_full_name() or owner.get_username()) if owner else "",
        "owner_email": owner.email if owner else "", "tenant_name": lead.tenant.name, "unsubscribe_url": "",
    }


def sequences_for_manual_enrolment(*, tenant) -> list[Sequence]:
    """Active sequences, in priority order (the choices of the lead page's "Enrol in nurture")."""
    return list(Sequence.objects.for_tenant(tenant).filter(status=SequenceStatus.ACTIVE)
                .order_by("priority", "name"))


def message_for_link(*, message_id) -> Message | None:
    """The message (with its tenant) of a signed public link or a provider callback: read before the tenant
    is known, the `public_link` path of cross_tenant.py. The work that follows runs in the message's tenant."""
    with cross_tenant("public_link"):
        return Message.objects.unscoped().select_related("tenant").filter(pk=message_id).first()
