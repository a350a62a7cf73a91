"""Routing API: dry run, a lead's assignment history, reassignment (one lead or all of a rep's), the rep's
accept / reject / qualify actions and the rejection taxonomy. Views call services and selectors only.

Who may act: reps (SDR, AE) on the leads they own; managers on the leads they see (their team's,
their own and Unassigned); tenant admins on every lead; marketing ops read but do not act. A lead
outside the caller's scope, or another tenant's, is the same 404 as a missing one.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from leadmgmt.tenancy.models import ApiScope, Membership, Role
from leads.api import ERRORS_RESPONSE, ApiKeyRateThrottle, actor_for
from leads.models import Lead
from leads.selectors import LeadViewer, lead_get_for_viewer
from leads.serializers import LeadSerializer
from leads.services.lifecycle import lead_accept, lead_convert, lead_qualify, lead_reject

from .models import Assignment, RejectionReason
from .selectors import assignment_history
from .serializers import (
    AssignmentSerializer,
    ConvertSerializer,
    DryRunInSerializer,
    DryRunResultSerializer,
    ExpectedOwnerSerializer,
    OpportunitySerializer,
    QualifySerializer,
    ReassignBulkResultSerializer,
    ReassignBulkSerializer,
    ReassignSerializer,
    RejectionReasonSerializer,
    RejectSerializer,
)
from .services.assign import lead_reassign, leads_reassign_bulk
from .services.dry_run import route_dry_run

ACTING_ROLES = {Role.SDR, Role.AE, Role.MANAGER, Role.ADMIN}
COMMON_ERRORS = {400: ERRORS_RESPONSE, 401: ERRORS_RESPONSE, 403: ERRORS_RESPONSE, 404: ERRORS_RESPONSE}


class RoutingView(APIView):
    """Base: tenant API key (with the method's scope) or a signed-in member, JSON in and out."""

    parser_classes = [JSONParser]
    throttle_classes = [ApiKeyRateThrottle]
    required_scopes = {"POST": ApiScope.LEADS_WRITE, "*": ApiScope.LEADS_READ}

    def viewer(self) -> LeadViewer:
        return LeadViewer.from_request(self.request)

    def lead(self) -> Lead:
        return lead_get_for_viewer(viewer=self.viewer(), lead_id=self.kwargs["pk"])

    def valid(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def member(self, user_id: int, field: str):
        """A user of this tenant by id, or a 400 on `field` (another tenant's people are not there)."""
        user = get_user_model().objects.filter(
            pk=user_id, memberships__tenant=self.request.tenant).first() if user_id is not None else None
        if user is None:
            raise exceptions.ValidationError({field: ["No member of this tenant has this id."]})
        return user


def _lead_response(view, lead: Lead) -> Response:
    fresh = Lead.objects.unscoped().select_related("owner", "account").get(tenant_id=lead.tenant_id, pk=lead.pk)
    return Response(LeadSerializer(fresh, context={"request": view.request}).data)


class LeadActionView(RoutingView):
    """A rep's action on a lead: signed-in members who work leads; reps only on their own leads."""

    def acting_lead(self) -> Lead:
        if getattr(self.request, "api_key", None) is not None:
            raise exceptions.PermissionDenied("Accept, reject and qualify are done by signed-in members, not API keys.")
        lead = self.lead()  # 404 first: a lead out of reach is never confirmed to exist
        membership = self.request.membership
        if membership.role not in ACTING_ROLES:
            raise exceptions.PermissionDenied("Only sales reps, their managers and tenant admins act on leads.")
        if membership.role in {Role.SDR, Role.AE} and lead.owner_id != membership.user_id:
            raise exceptions.PermissionDenied("You can act only on leads you own.")
        return lead


# --- dry run and taxonomy ---------------------------------------------------------------------------


class RoutingDryRunView(RoutingView):
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
        if viewer.membership is not None and viewer.membership.role not in {Role.MANAGER, Role.ADMIN,
                                                                             Role.MARKETING_OPS}:
            raise exceptions.PermissionDenied("Dry runs are for managers, admins and marketing ops.")
        data = self.valid(DryRunInSerializer)
        lead = lead_get_for_viewer(viewer=viewer, lead_id=data["lead_id"]) if "lead_id" in data else None
        return Response(route_dry_run(tenant=request.tenant, lead=lead, values=data.get("values")))


class RejectionReasonListView(RoutingView, ListAPIView):
    """`GET /api/v1/routing/rejection-reasons/`: the tenant's active rejection taxonomy."""

    serializer_class = RejectionReasonSerializer
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RejectionReason.objects.unscoped().none()
        return RejectionReason.objects.unscoped().filter(tenant=self.request.tenant, is_active=True).order_by(
            "position", "id")

    @extend_schema(operation_id="routing_rejection_reasons_list", summary="The rejection taxonomy",
                   description="Reasons sales may give when rejecting a lead; `nurture` ones send it back to "
                   "nurture instead of marketing.", tags=["routing"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# --- assignment history and reassignment ----------------------------------------------------------------


class LeadAssignmentsView(RoutingView, ListAPIView):
    """`GET /api/v1/leads/{id}/assignments/`: every assignment of the lead, newest first."""

    serializer_class = AssignmentSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Assignment.objects.unscoped().none()
        return assignment_history(tenant=self.request.tenant, lead=self.lead())

    @extend_schema(operation_id="leads_assignments_list", summary="Assignment history of a lead",
                   description="Each owner change with its rule, strategy, previous owner, reason, trigger, "
                   "who did it and when.", responses={200: AssignmentSerializer(many=True), 404: ERRORS_RESPONSE},
                   tags=["leads"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _require_reassigner(view) -> None:
    if not view.viewer().can_reassign:
        raise exceptions.PermissionDenied("Only managers, admins and API keys reassign leads.")


class LeadReassignView(RoutingView):
    @extend_schema(
        operation_id="leads_reassign", summary="Reassign one lead (managers, admins, API keys)",
        description="To `to_user_id`, or through the routing rules without the current owner. Send "
        "`expected_owner_id` to be refused when the lead changed hands meanwhile.",
        request=ReassignSerializer, responses={200: AssignmentSerializer, **COMMON_ERRORS}, tags=["leads"])
    def post(self, request, pk):
        _require_reassigner(self)
        lead = self.lead()
        data = self.valid(ReassignSerializer)
        to_user = self.member(data["to_user_id"], "to_user_id") if data.get("to_user_id") is not None else None
        kwargs = {"expected_owner_id": data["expected_owner_id"]} if "expected_owner_id" in data else {}
        assignment = lead_reassign(lead=lead, actor=actor_for(request), to_user=to_user, reason=data["reason"],
                                   **kwargs)
        return Response(AssignmentSerializer(assignment).data)


class LeadReassignBulkView(RoutingView):
    @extend_schema(
        operation_id="leads_reassign_bulk", summary="Move all open leads of a rep at once",
        description="A rep left or changed territory: every open lead of `from_user_id` goes to `to_user_id`, "
        "or through the rules without them, in one operation (all or none). Managers may move the leads "
        "of their own team's reps; admins and API keys anyone's.",
        request=ReassignBulkSerializer, responses={200: ReassignBulkResultSerializer, **COMMON_ERRORS},
        tags=["leads"])
    def post(self, request):
        _require_reassigner(self)
        data = self.valid(ReassignBulkSerializer)
        from_user = self.member(data["from_user_id"], "from_user_id")
        to_user = self.member(data["to_user_id"], "to_user_id") if data.get("to_user_id") is not None else None
        membership = self.viewer().membership
        if membership is not None and membership.role == Role.MANAGER and from_user.pk != membership.user_id:
            same_team = membership.team_id is not None and Membership.objects.unscoped().filter(
                tenant=request.tenant, user=from_user, team_id=membership.team_id).exists()
            if not same_team:
                raise exceptions.PermissionDenied({"from_user_id": ["You can move the leads of your team's reps only."]})
        moved = leads_reassign_bulk(tenant=request.tenant, from_user=from_user, actor=actor_for(request),
                                    to_user=to_user, reason=data["reason"])
        return Response({"moved": moved})


# --- accept, reject, qualify ---------------------------------------------------------------------------


def _expected(data: dict) -> dict:
    return {"expected_owner_id": data["expected_owner_id"]} if "expected_owner_id" in data else {}


class LeadAcceptView(LeadActionView):
    @extend_schema(operation_id="leads_accept", summary="Accept the lead (its owner)",
                   description="An MQL becomes a SAL; an AE accepting an SQL converts it. Stops the SLA clock.",
                   request=ExpectedOwnerSerializer, responses={200: LeadSerializer, **COMMON_ERRORS}, tags=["leads"])
    def post(self, request, pk):
        lead = self.acting_lead()
        data = self.valid(ExpectedOwnerSerializer)
        return _lead_response(self, lead_accept(lead=lead, actor=actor_for(request), **_expected(data)))


class LeadRejectView(LeadActionView):
    @extend_schema(operation_id="leads_reject", summary="Reject the lead back to marketing with a reason",
                   description="`reason` is a code of the rejection taxonomy; nurture reasons (\"not now\") "
                   "recycle the lead to nurture. The owner is cleared and the SLA clock stops.",
                   request=RejectSerializer, responses={200: LeadSerializer, **COMMON_ERRORS}, tags=["leads"])
    def post(self, request, pk):
        lead = self.acting_lead()
        data = self.valid(RejectSerializer)
        lead = lead_reject(lead=lead, actor=actor_for(request), reason_code=data["reason"], note=data["note"],
                           **_expected(data))
        return _lead_response(self, lead)


class QualifyResultSerializer(serializers.Serializer):
    lead = LeadSerializer()
    opportunity = OpportunitySerializer()


class LeadQualifyView(LeadActionView):
    @extend_schema(operation_id="leads_qualify", summary="Qualify the lead (BANT) and hand it off to an AE",
                   description="All four BANT fields are required. The lead becomes an SQL with an Opportunity "
                   "owned by the AE of its named account or territory, who must accept it within the acceptance "
                   "SLA. Qualifying again returns the same open opportunity.",
                   request=QualifySerializer, responses={200: QualifyResultSerializer, **COMMON_ERRORS},
                   tags=["leads"])
    def post(self, request, pk):
        lead = self.acting_lead()
        data = self.valid(QualifySerializer)
        opportunity = lead_qualify(lead=lead, actor=actor_for(request), budget=data["budget"],
                                   authority=data["authority"], need=data["need"], timeline=data["timeline"],
                                   **_expected(data))
        return Response({"lead": _lead_response(self, lead).data,
                         "opportunity": OpportunitySerializer(opportunity).data}, status=status.HTTP_200_OK)



class LeadConvertView(LeadActionView):
    @extend_schema(operation_id="leads_convert", summary="Convert the lead to an opportunity",
                   description="The lead's owner (or a manager or admin for them). Accepts the lead's open "
                   "opportunity if it has one (an SQL handed off to an AE), else opens one owned by the lead's owner "
                   "and linked to its account. The lead becomes converted and leaves the queue; its SLA clock stops. "
                   "Converting again returns the same opportunity. Closed, recycled and unassigned leads: 400.",
                   request=ConvertSerializer, responses={200: QualifyResultSerializer, **COMMON_ERRORS},
                   tags=["leads"])
    def post(self, request, pk):
        lead = self.acting_lead()
        data = self.valid(ConvertSerializer)
        opportunity = lead_convert(lead=lead, actor=actor_for(request), name=data["name"], stage=data["stage"],
                                   **_expected(data))
        return Response({"lead": _lead_response(self, lead).data,
                         "opportunity": OpportunitySerializer(opportunity).data}, status=status.HTTP_200_OK)
