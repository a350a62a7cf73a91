"""Nurture API for integrations and the UI: the tenant's sequences, a lead's enrolments, enrol by hand, stop.

Who: anyone who can see the lead (reps their own, managers their team's, admins, marketing ops and API
keys with `leads:write` for changes). A lead out of reach, or another tenant's, is the same 404 as a
missing one; another tenant's sequence is a 400 on `sequence`.
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from leadmgmt.api import COMMON_ERRORS, TextField, actor_for
from leadmgmt.tenancy.roles import LEAD_NURTURE
from leads.api import LeadApiView

from .models import Enrollment, Sequence, SequenceStatus, Step
from .selectors import lead_enrollments
from .services.enrollment import enrollment_stop, lead_enroll


class SequenceSerializer(serializers.ModelSerializer):
    steps = serializers.IntegerField(source="step_count", read_only=True)

    class Meta:
        model = Sequence
        fields = ["id", "name", "goal", "kind", "status", "auto_enroll", "priority", "ready_score", "steps"]


class EnrollmentSerializer(serializers.ModelSerializer):
    sequence = serializers.SerializerMethodField()
    next_step = serializers.SerializerMethodField()
    exit_reason_label = serializers.SerializerMethodField()

    class Meta:
        model = Enrollment
        fields = ["id", "sequence", "status", "automatic", "enrolled_by", "enrolled_at", "next_step", "next_due_at",
                  "last_sent_at", "messages_sent", "paused_reason", "exit_reason", "exit_reason_label", "exit_note",
                  "ended_at"]

    def get_sequence(self, obj) -> dict:
        return {"id": obj.sequence_id, "name": obj.sequence.name, "kind": obj.kind}

    def get_next_step(self, obj) -> dict | None:
        step: Step | None = getattr(obj, "next_step", None)
        return {"position": step.position, "subject": getattr(obj, "next_subject", "") or step.subject} if step else None

    def get_exit_reason_label(self, obj) -> str:
        return obj.get_exit_reason_display() if obj.exit_reason else ""


class EnrollSerializer(serializers.Serializer):
    sequence = serializers.IntegerField(help_text="Id of an active sequence of this tenant.")


class StopSerializer(serializers.Serializer):
    note = TextField(max_length=300, required=False, allow_blank=True, default="")


def _require_nurture(view, lead) -> None:
    """The matrix of leadmgmt.tenancy.roles: reps on their own leads, managers, admins, marketing ops, `leads:write`."""
    if not view.viewer().may_on(LEAD_NURTURE, lead):
        raise exceptions.PermissionDenied("You can enrol or stop nurture only on leads you own.")


class SequenceListView(LeadApiView, ListAPIView):
    """`GET /api/v1/nurture/sequences/`: the tenant's sequences (to enrol leads by hand)."""

    serializer_class = SequenceSerializer

    def get_queryset(self):
        from django.db.models import Count

        if getattr(self, "swagger_fake_view", False):
            return Sequence.objects.none()
        return (Sequence.objects.for_tenant(self.request.tenant)
                .exclude(status=SequenceStatus.ARCHIVED).annotate(step_count=Count("steps"))
                .order_by("priority", "name"))

    @extend_schema(operation_id="nurture_sequences_list", summary="Nurture sequences",
                   responses={200: SequenceSerializer(many=True), **COMMON_ERRORS}, tags=["nurture"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class LeadEnrollmentsView(LeadApiView):
    """`/api/v1/leads/{id}/enrollments/`: the lead's enrolments (GET) and a manual enrolment (POST)."""

    @extend_schema(operation_id="leads_enrollments_list", summary="The lead's nurture enrolments",
                   description="Newest first: status, the next step and when it is due, emails sent, exit reason.",
                   responses={200: EnrollmentSerializer(many=True), **COMMON_ERRORS}, tags=["nurture"])
    def get(self, request, pk):
        return Response(EnrollmentSerializer(lead_enrollments(lead=self.lead()), many=True).data)

    @extend_schema(operation_id="leads_enrollments_create", summary="Enrol the lead in a sequence by hand",
                   description="201 when enrolled; 200 with the enrolment when the lead already is in that sequence. "
                   "400 when it cannot be mailed (no consent, suppressed, closed) or is in another sequence of "
                   "the same kind.",
                   request=EnrollSerializer, responses={201: EnrollmentSerializer, 200: EnrollmentSerializer,
                                                        **COMMON_ERRORS}, tags=["nurture"])
    def post(self, request, pk):
        lead = self.lead()
        _require_nurture(self, lead)
        data = self.valid(EnrollSerializer)
        sequence = Sequence.objects.for_tenant(request.tenant).filter(pk=data["sequence"]).first()
        if sequence is None:
            raise exceptions.ValidationError({"sequence": ["No sequence of this tenant has this id."]})
        before = Enrollment.objects.for_tenant(request.tenant).filter(lead=lead, sequence=sequence,
                                                      status__in=["active", "paused"]).exists()
        enrollment = lead_enroll(lead=lead, sequence=sequence, actor=actor_for(request))
        [shown] = [e for e in lead_enrollments(lead=lead) if e.pk == enrollment.pk]
        return Response(EnrollmentSerializer(shown).data, status=status.HTTP_200_OK if before else status.HTTP_201_CREATED)


class LeadEnrollmentStopView(LeadApiView):
    """`POST /api/v1/leads/{id}/enrollments/{enrollment_id}/stop/`: end an enrolment by hand."""

    @extend_schema(operation_id="leads_enrollments_stop", summary="Stop a nurture enrolment",
                   description="Ends it with reason “manual” (and the note on the lead's timeline). Stopping an "
                   "ended enrolment changes nothing.",
                   request=StopSerializer, responses={200: EnrollmentSerializer, **COMMON_ERRORS}, tags=["nurture"])
    def post(self, request, pk, enrollment_id):
        lead = self.lead()
        _require_nurture(self, lead)
        data = self.valid(StopSerializer)
        enrollment = Enrollment.objects.for_tenant(request.tenant).filter(lead=lead, pk=enrollment_id).first()
        if enrollment is None:
            raise exceptions.NotFound("No such enrolment of this lead.")
        enrollment_stop(enrollment=enrollment, actor=actor_for(request), note=data["note"])
        [shown] = [e for e in lead_enrollments(lead=lead) if e.pk == enrollment.pk]
        return Response(EnrollmentSerializer(shown).data)
