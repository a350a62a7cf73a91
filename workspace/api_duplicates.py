"""The merge review queue's API (`/api/v1/duplicates/`): possible-duplicate pairs (same phone, or same name at the
same account) side by side, merged, dismissed, or a merge undone. Managers (the pairs whose two leads they see)
and admins; signed-in members only: merging two people is a person's decision, not an integration's."""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from leadmgmt.api import COMMON_ERRORS, ApiKeyRateThrottle, actor_for, page
from leadmgmt.tenancy.permissions import HasTenant
from leadmgmt.tenancy.roles import DUPLICATES_REVIEW
from leads.models import DuplicatePair, DuplicateStatus, DuplicateTier, Lead
from leads.selectors import LeadViewer
from leads.services.duplicates import duplicate_pair_dismiss

from .duplicate_selectors import duplicate_pair_for_viewer, duplicate_pairs_for_viewer
from .services.duplicates import (
    MERGE_FIELDS,
    duplicate_merge,
    duplicate_merge_undo,
    merge_defaults,
    survivor_default,
)


class CanReviewDuplicates(HasTenant):
    message = "Only managers and admins review possible duplicates."

    def has_permission(self, request, view) -> bool:
        return (super().has_permission(request, view) and getattr(request, "api_key", None) is None
                and LeadViewer.from_request(request).may(DUPLICATES_REVIEW))


class PairLeadSerializer(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField()

    class Meta:
        model = Lead
        fields = ["id", "email", "first_name", "last_name", "phone", "company", "job_title", "status", "score",
                  "owner", "created_at"]
        read_only_fields = fields

    def get_owner(self, lead) -> dict | None:
        owner = lead.owner
        return {"id": owner.pk, "name": owner.get_full_name() or owner.get_username()} if owner else None


class DuplicatePairSerializer(serializers.ModelSerializer):
    lead = PairLeadSerializer(read_only=True)
    other = PairLeadSerializer(read_only=True)
    reason_label = serializers.CharField(source="get_reason_display", read_only=True)

    class Meta:
        model = DuplicatePair
        fields = ["id", "reason", "reason_label", "tier", "status", "detected_at", "resolved_at", "survivor_id",
                  "lead", "other"]
        read_only_fields = fields


class DuplicatePairDetailSerializer(DuplicatePairSerializer):
    survivor_default = serializers.SerializerMethodField(help_text="The lead a merge keeps unless told otherwise.")
    fields_compared = serializers.SerializerMethodField(
        help_text="Field by field: both values and which one a merge takes by default (the richer).")

    class Meta(DuplicatePairSerializer.Meta):
        fields = [*DuplicatePairSerializer.Meta.fields, "survivor_default", "fields_compared"]
        read_only_fields = fields

    def get_survivor_default(self, pair) -> str:
        return str(survivor_default(lead=pair.lead, other=pair.other).pk)

    def get_fields_compared(self, pair) -> list[dict]:
        survivor = survivor_default(lead=pair.lead, other=pair.other)
        other = pair.other if survivor is pair.lead else pair.lead
        picks = merge_defaults(survivor=survivor, other=other)
        return [{"field": name, "label": str(Lead._meta.get_field(name).verbose_name).capitalize(),
                 "lead": getattr(pair.lead, name), "other": getattr(pair.other, name),
                 "default": "lead" if (picks[name] == "survivor") == (survivor is pair.lead) else "other"}
                for name in MERGE_FIELDS]


class PairFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[*DuplicateStatus.values, "all"], required=False,
                                     default=DuplicateStatus.OPEN)
    tier = serializers.ChoiceField(choices=DuplicateTier.values, required=False, default="")
    lead = serializers.UUIDField(required=False, help_text="Only the pairs of this lead.")

    def to_internal_value(self, data):
        # DRF reads a blank query value (`?status=`) as "not given"; a filter sent without a value is a mistake.
        blank = {name: ["Give a value or leave the filter out."] for name in self.fields if data.get(name) == ""}
        if blank:
            raise serializers.ValidationError(blank)
        return super().to_internal_value(data)


class MergeSerializer(serializers.Serializer):
    survivor_id = serializers.UUIDField(required=False, help_text="The lead to keep (default: the richer one).")
    values = serializers.DictField(child=serializers.ChoiceField(choices=["survivor", "other"]), required=False,
                                   help_text='Per field, whose value the kept lead takes: "survivor" or "other".')


class _ReviewView(GenericAPIView):
    permission_classes = [CanReviewDuplicates]
    throttle_classes = [ApiKeyRateThrottle]  # keys are refused, but every key request counts against its rate
    serializer_class = DuplicatePairSerializer
    queryset = DuplicatePair.objects.none()  # schema only: reads go through the selectors

    def viewer(self) -> LeadViewer:
        return LeadViewer.from_request(self.request)

    def pair(self) -> DuplicatePair:
        try:
            return duplicate_pair_for_viewer(viewer=self.viewer(), pair_id=self.kwargs["pair_id"])
        except DuplicatePair.DoesNotExist as exc:
            raise exceptions.NotFound("No such pair.") from exc

    def changed(self, call):
        try:
            return call()
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict) from exc


class DuplicatePairListView(_ReviewView):
    @extend_schema(summary="Possible duplicates to review (newest first)", tags=["duplicates"],
                   parameters=[OpenApiParameter("status", str, enum=[*DuplicateStatus.values, "all"]),
                               OpenApiParameter("tier", str, enum=DuplicateTier.values),
                               OpenApiParameter("lead", OpenApiTypes.UUID, description="Only the pairs of this lead.")],
                   responses={200: DuplicatePairSerializer(many=True), **COMMON_ERRORS})
    def get(self, request):
        filters = PairFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        status = None if data["status"] == "all" else data["status"]
        return page(self, duplicate_pairs_for_viewer(viewer=self.viewer(), status=status, tier=data["tier"],
                                                     lead_id=data.get("lead")), DuplicatePairSerializer)


class DuplicatePairDetailView(_ReviewView):
    @extend_schema(summary="One pair, side by side", tags=["duplicates"],
                   responses={200: DuplicatePairDetailSerializer, **COMMON_ERRORS})
    def get(self, request, pair_id: int):
        return Response(DuplicatePairDetailSerializer(self.pair()).data)


class DuplicatePairMergeView(_ReviewView):
    @extend_schema(summary="Merge the pair into one lead", tags=["duplicates"], request=MergeSerializer,
                   description="Keeps `survivor_id` (default: the richer lead) with, per field, the value `values` "
                   "names (default: the richer). Every touch, signal, activity, assignment and the rest of the other "
                   "lead's history moves to the kept lead; the other is archived; both owners are notified.",
                   responses={200: DuplicatePairSerializer, **COMMON_ERRORS})
    def post(self, request, pair_id: int):
        data = MergeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pair = self.pair()
        self.changed(lambda: duplicate_merge(pair=pair, actor=actor_for(request),
                                             survivor_id=data.validated_data.get("survivor_id"),
                                             picks=data.validated_data.get("values")))
        return Response(DuplicatePairSerializer(self.pair()).data)


class DuplicatePairDismissView(_ReviewView):
    @extend_schema(summary="Not the same person: dismiss the pair", tags=["duplicates"], request=None,
                   responses={200: DuplicatePairSerializer, **COMMON_ERRORS})
    def post(self, request, pair_id: int):
        pair = self.pair()
        if pair.status != DuplicateStatus.OPEN:
            raise exceptions.ValidationError({"pair": [f"This pair is already {pair.get_status_display().lower()}."]})
        duplicate_pair_dismiss(pair=pair, actor=actor_for(request))
        return Response(DuplicatePairSerializer(self.pair()).data)


class DuplicatePairUndoView(_ReviewView):
    @extend_schema(summary="Undo the pair's merge", tags=["duplicates"], request=None,
                   description="Puts back what the merge changed: the rows it moved, the kept lead's fields it "
                   "filled (unless edited since) and the other lead. The pair is open again.",
                   responses={200: DuplicatePairSerializer, **COMMON_ERRORS})
    def post(self, request, pair_id: int):
        pair = self.pair()
        self.changed(lambda: duplicate_merge_undo(pair=pair, actor=actor_for(request)))
        return Response(DuplicatePairSerializer(self.pair()).data)
