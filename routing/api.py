"""Routing API: dry run, a lead's assignment history, reassignment (one lead or all of a rep's) and the
rejection taxonomy. Views call services and selectors only.

Managers, tenant admins and API keys reassign (the matrix of leadmgmt.tenancy.roles), managers only to
available reps of their teams (`routing.selectors.reassign_targets`); a lead outside the caller's scope, or
another tenant's, is the same 404 as a missing one.
"""
from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from leadmgmt.api import COMMON_ERRORS, ERRORS_RESPONSE, actor_for
from leadmgmt.tenancy.models import ApiScope, Membership, Role
from leadmgmt.tenancy.roles import LEAD_REASSIGN, LEAD_REASSIGN_BULK, ROUTING_DRY_RUN
from leads.api import LeadApiView
from leads.selectors import lead_get_for_viewer

from .models import Assignment, RejectionReason
from .selectors import assignment_history, managed_team_ids, reassign_target_refusal
from .serializers import (
    AssignmentSerializer,
    DryRunInSerializer,
    DryRunResultSerializer,
    ReassignBulkResultSerializer,
    ReassignBulkSerializer,
    ReassignSerializer,
    RejectionReasonSerializer,
)
from .services.assign import lead_reassign, leads_reassign_bulk
from .services.dry_run import route_dry_run

# --- dry run and taxonomy ---------------------------------------------------------------------------


class RoutingDryRunView(LeadApiView):
    """`POST /api/v1/routing/dry-run/`: where a real or hypothetical lead would go; writes nothing."""

    required_scopes = {"POST": ApiScope.LEADS_READ}

    @extend_schema(
        operation_id="routing_dry_run", summary="Dry-run the routing rules",
        description="Which rule would fire for a lead (`lead_id`) or hypothetical field values (`values`), "
        "which strategy, who would get it, and why each earlier rule did not match or could not place it. "
        "Nothing is assigned. Managers, admins, marketing ops and API keys.",
        request=DryRunInSerializer, responses={200: DryRunResultSerializer, **COMMON_ERRORS}, tags=["routing"])
    def post(self, request):
        viewer = self.viewer()
        if not viewer.may(ROUTING_DRY_RUN):
            raise exceptions.PermissionDenied("Dry runs are for managers, admins and marketing ops.")
        data = self.valid(DryRunInSerializer)
        lead = lead_get_for_viewer(viewer=viewer, lead_id=data["lead_id"]) if "lead_id" in data else None
        return Response(route_dry_run(tenant=request.tenant, lead=lead, values=data.get("values")))


class RejectionReasonListView(LeadApiView, ListAPIView):
    """`GET /api/v1/routing/rejection-reasons/`: the tenant's active rejection taxonomy."""

    serializer_class = RejectionReasonSerializer
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RejectionReason.objects.none()
        return RejectionReason.objects.for_tenant(self.request.tenant).filter(is_active=True).order_by(
            "position", "id")

    @extend_schema(operation_id="routing_rejection_reasons_list", summary="The rejection taxonomy",
                   description="Reasons sales may give when rejecting a lead; `nurture` ones send it back to "
                   "nurture instead of marketing.", tags=["routing"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# --- assignment history and reassignment ----------------------------------------------------------------


class LeadAssignmentsView(LeadApiView, ListAPIView):
    """`GET /api/v1/leads/{id}/assignments/`: every assignment of the lead, newest first."""

    serializer_class = AssignmentSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Assignment.objects.none()
        return assignment_history(tenant=self.request.tenant, lead=self.lead())

    @extend_schema(operation_id="leads_assignments_list", summary="Assignment history of a lead",
                   description="Each owner change with its rule, strategy, previous owner, reason, trigger, "
                   "who did it and when.", responses={200: AssignmentSerializer(many=True), 404: ERRORS_RESPONSE},
                   tags=["leads"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _require_reassigner(view, action: str) -> None:
    if not view.viewer().may(action):  # the matrix of leadmgmt.tenancy.roles
        raise exceptions.PermissionDenied("Only managers, admins and API keys reassign leads.")


def _check_target(view, to_user, lead=None) -> None:
    """`to_user` must be one of `reassign_targets` for the caller (managers: available reps of their teams), else
    400 on `to_user_id`."""
    if to_user is None or (lead is not None and to_user.pk == lead.owner_id):
        return  # through the rules; or the current owner, which the service refuses with its own message
    viewer = view.viewer()
    refusal = reassign_target_refusal(tenant=viewer.tenant, membership=viewer.membership, at=timezone.now(),
                                      to_user_id=to_user.pk, lead=lead)
    if refusal:
        raise exceptions.ValidationError({"to_user_id": [refusal]})


class LeadReassignView(LeadApiView):
    @extend_schema(
        operation_id="leads_reassign", summary="Reassign one lead (managers, admins, API keys)",
        description="To `to_user_id`, or through the routing rules without the current owner. Send "
        "`expected_owner_id` to be refused when the lead changed hands meanwhile.",
        request=ReassignSerializer, responses={200: AssignmentSerializer, **COMMON_ERRORS}, tags=["leads"])
    def post(self, request, pk):
        _require_reassigner(self, LEAD_REASSIGN)
        lead = self.lead()
        data = self.valid(ReassignSerializer)
        to_user = self.member(data["to_user_id"], "to_user_id") if data.get("to_user_id") is not None else None
        _check_target(self, to_user, lead)
        kwargs = {"expected_owner_id": data["expected_owner_id"]} if "expected_owner_id" in data else {}
        assignment = lead_reassign(lead=lead, actor=actor_for(request), to_user=to_user, reason=data["reason"],
                                   **kwargs)
        return Response(AssignmentSerializer(assignment).data)


class LeadReassignBulkView(LeadApiView):
    @extend_schema(
        operation_id="leads_reassign_bulk", summary="Move all open leads of a rep at once",
        description="A rep left or changed territory: every open lead of `from_user_id` goes to `to_user_id`, "
        "or through the rules without them, in one operation (all or none). Managers may move the leads "
        "of their own team's reps; admins and API keys anyone's.",
        request=ReassignBulkSerializer, responses={200: ReassignBulkResultSerializer, **COMMON_ERRORS},
        tags=["leads"])
    def post(self, request):
        _require_reassigner(self, LEAD_REASSIGN_BULK)
        data = self.valid(ReassignBulkSerializer)
        from_user = self.member(data["from_user_id"], "from_user_id")
        to_user = self.member(data["to_user_id"], "to_user_id") if data.get("to_user_id") is not None else None
        membership = self.viewer().membership
        if membership is not None and membership.role == Role.MANAGER and from_user.pk != membership.user_id:
            same_team = Membership.objects.for_tenant(request.tenant).filter(user=from_user,
                team_id__in=managed_team_ids(tenant=request.tenant, membership=membership)).exists()
            if not same_team:
                raise exceptions.PermissionDenied({"from_user_id": ["You can move the leads of your team's reps only."]})
        if to_user is not None and to_user.pk != from_user.pk:
            _check_target(self, to_user)
        result = leads_reassign_bulk(tenant=request.tenant, from_user=from_user, actor=actor_for(request),
                                     to_user=to_user, reason=data["reason"])
        return Response({"moved": result.count})


