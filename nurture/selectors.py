"""Reads of nurture: a lead's enrolments with their next step, and the sequences a lead can be put in."""
from __future__ import annotations

from .models import Enrollment, Sequence, SequenceStatus, Step


def lead_enrollments(*, lead) -> list[Enrollment]:
    """The lead's enrolments, newest first, each with `next_step` (the Step due next, or None): two queries."""
    enrollments = list(Enrollment.objects.unscoped().filter(tenant_id=lead.tenant_id, lead=lead)
                       .select_related("sequence").order_by("-enrolled_at", "-id"))
    wanted = {(e.sequence_id, e.next_position) for e in enrollments if e.next_position is not None
              and e.status in ("active", "paused")}
    steps: dict[int, list[Step]] = {}
    if wanted:
        for step in Step.objects.unscoped().filter(tenant_id=lead.tenant_id,
                                                   sequence_id__in={s for s, _ in wanted}).order_by("position"):
            steps.setdefault(step.sequence_id, []).append(step)
    for enrollment in enrollments:
        enrollment.next_step = None
        if (enrollment.sequence_id, enrollment.next_position) in wanted:
            enrollment.next_step = next((s for s in steps.get(enrollment.sequence_id, [])
                                         if s.position >= enrollment.next_position), None)
    return enrollments


def sequences_for_manual_enrolment(*, tenant) -> list[Sequence]:
    """Active sequences, in priority order (the choices of the lead page's "Enrol in nurture")."""
    return list(Sequence.objects.unscoped().filter(tenant=tenant, status=SequenceStatus.ACTIVE)
                .order_by("priority", "name"))
