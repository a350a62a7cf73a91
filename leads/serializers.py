"""DRF serializers of the signals and leads API: input validation and response shapes."""
from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from leadmgmt.audit.models import AuditEvent
from routing.selectors import latest_assignments
from routing.serializers import AssignmentSerializer, TeamBriefSerializer
from scoring.selectors import rule_labels, score_explain

from .models import Activity, ActivityKind, Lead, LeadStage, LeadStatus, Signal, Touch
from .normalize import email_normalize
from .services.lead_edit import EDITABLE_FIELDS
from .services.signals import SignalInput, SignalStatus

# --- Signals ---------------------------------------------------------------------------------


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


class SignalInSerializer(serializers.Serializer):
    """One behavioural signal. Identify the person by `email` or by `lead_id`, not both."""

    email = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=320,
        help_text="The person's email; a signal for an email that is not a lead yet is kept and "
        "attached when the lead arrives.",
    )
    lead_id = serializers.UUIDField(required=False, allow_null=True, help_text="A lead of this tenant.")
    type = serializers.SlugField(
        max_length=64, help_text="A built-in type (pricing_page_view, email_click, demo_request …) "
        "or one of the tenant's own signal types.",
    )
    occurred_at = serializers.DateTimeField(help_text="When it happened (ISO 8601; not in the future).")
    external_id = serializers.CharField(
        required=False, allow_blank=True, max_length=200, default="",
        help_text="Your id of the event; a signal re-sent with the same external_id is a duplicate "
        "and writes nothing, which makes retries safe.",
    )
    properties = serializers.DictField(
        required=False, default=dict, help_text="A JSON object of event details (url, campaign …), bounded in size."
    )

    def validate_email(self, value):
        try:
            return email_normalize(value or "")  # the same form intake stores, so they match
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def validate_external_id(self, value):
        return value.strip()

    def validate_occurred_at(self, value):
        skew = timedelta(seconds=settings.SIGNALS_MAX_FUTURE_SKEW_SECONDS)
        if value > timezone.now() + skew:
            raise serializers.ValidationError("Must not be in the future.")
        return value

    def validate_properties(self, value):
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > settings.SIGNALS_MAX_PROPERTIES_BYTES:
            raise serializers.ValidationError(
                f"Must be at most {settings.SIGNALS_MAX_PROPERTIES_BYTES} bytes of JSON ({size} given)."
            )
        if _has_nul(value):  # PostgreSQL's jsonb cannot store U+0000
            raise serializers.ValidationError("Null characters are not allowed.")
        return value

    def validate(self, attrs):
        email, lead_id = attrs.get("email") or "", attrs.get("lead_id")
        if not email and lead_id is None:
            raise serializers.ValidationError({"email": ["Give the person's email or a lead_id."]})
        if email and lead_id is not None:
            raise serializers.ValidationError({"lead_id": ["Give either email or lead_id, not both."]})
        attrs["email"] = email
        return attrs

    def to_signal_input(self, index: int) -> SignalInput:
        data = self.validated_data
        return SignalInput(
            index=index, type=data["type"], occurred_at=data["occurred_at"], email=data["email"],
            lead_id=data.get("lead_id"), external_id=data["external_id"], properties=data["properties"],
        )


class SignalItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the signal in the request (0 for a single object).")
    status = serializers.ChoiceField(choices=SignalStatus.choices)
    id = serializers.IntegerField(required=False, help_text="The stored signal (the earlier one for a duplicate).")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="Field name → messages, for status `error`.",
    )


class SignalBatchResultSerializer(serializers.Serializer):
    results = SignalItemResultSerializer(many=True)
    accepted = serializers.IntegerField(help_text="Signals stored (pending ones included).")
    pending = serializers.IntegerField(help_text="Stored signals waiting for their lead.")
    duplicates = serializers.IntegerField()
    errors = serializers.IntegerField()


class SignalSerializer(serializers.ModelSerializer):
    class Meta:
        model = Signal
        fields = ["id", "type", "occurred_at", "external_id", "properties", "received_at", "processed_at"]
        read_only_fields = fields


# --- Leads -----------------------------------------------------------------------------------


class UserBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.SerializerMethodField()

    def get_name(self, user) -> str:
        return user.get_full_name() or user.get_username()


class AccountBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    domain = serializers.CharField()
    name = serializers.CharField()


class ScoreLineSerializer(serializers.Serializer):
    rule_key = serializers.CharField(help_text="Stable identifier of the rule across model versions.")
    rule = serializers.CharField()
    category = serializers.CharField()
    points = serializers.IntegerField()


class ScoreBreakdownSerializer(serializers.Serializer):
    score = serializers.IntegerField()
    raw_total = serializers.IntegerField(help_text="Sum of the lines' points before clamping to 0-100.")
    fit = serializers.IntegerField()
    engagement = serializers.IntegerField()
    categories = serializers.DictField(child=serializers.IntegerField())
    lines = ScoreLineSerializer(many=True)
    lead_class = serializers.CharField()
    lead_class_reason = serializers.CharField()
    model_id = serializers.IntegerField()


class ScoreChangeSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    old_score = serializers.IntegerField(allow_null=True)
    new_score = serializers.IntegerField()
    old_band = serializers.CharField()
    new_band = serializers.CharField()
    cause = serializers.CharField()
    model_version = serializers.IntegerField(source="model.version", allow_null=True, default=None)


class LeadSerializer(serializers.ModelSerializer):
    owner = UserBriefSerializer(read_only=True, allow_null=True)
    account = AccountBriefSerializer(read_only=True, allow_null=True)
    possible_duplicate_of = serializers.UUIDField(source="possible_duplicate_of_id", read_only=True, allow_null=True)
    score_breakdown = serializers.SerializerMethodField(
        help_text="Every rule's contribution (rule, category, points); the score is their sum clamped to "
        "0-100. Null until the lead is scored.")
    team = serializers.SerializerMethodField(help_text="The team whose queue the lead is in.")
    latest_assignment = serializers.SerializerMethodField(
        help_text="The last change of owner: rule, strategy, previous owner, reason (null if never routed).")

    class Meta:
        model = Lead
        fields = [
            "id", "email", "first_name", "last_name", "phone", "job_title",
            "company", "company_domain", "company_size", "industry", "country",
            "status", "stage", "owner", "account", "source",
            "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "campaign",
            "marketing_consent", "consent_at", "consent_source", "is_personal_email",
            "score", "fit_score", "engagement_score", "band", "lead_class", "lead_class_reason", "is_hot",
            "scored_at", "score_breakdown", "sla_due_at", "last_activity_at",
            "attributes", "edited_fields", "possible_duplicate_of", "created_at", "updated_at",
            # Routing and the rep's work (issue 4).
            "team", "assigned_at", "unassigned_reason", "latest_assignment", "product_interest",
            "first_contacted_at", "contact_attempts", "accepted_at", "rejection_reason", "rejection_note",
            "rejected_at", "budget", "authority", "need", "timeline",
        ]
        read_only_fields = fields


    @extend_schema_field(ScoreBreakdownSerializer(allow_null=True))
    def get_score_breakdown(self, lead):
        if lead.scoring_model_id is None:
            return None
        # One label lookup per request for all the leads of a page (published versions are cached).
        cache = self.context.setdefault("_rule_labels", {}) if isinstance(self.context, dict) else {}
        if lead.scoring_model_id not in cache:
            models = {lead.scoring_model_id}
            parent = getattr(self, "parent", None)
            instances = getattr(parent, "instance", None)
            if instances is not None and not isinstance(instances, Lead):
                models |= {item.scoring_model_id for item in instances if item.scoring_model_id}
            cache.update(rule_labels(model_ids=models - set(cache)))
        return score_explain(lead=lead, labels=cache.get(lead.scoring_model_id, {}))


    def _latest_assignments(self) -> dict:
        """{lead id: its latest Assignment} for every lead of the page, in one query per request."""
        cache = self.context.setdefault("_latest_assignments", {}) if isinstance(self.context, dict) else {}
        if "_loaded" not in cache:
            parent = getattr(self, "parent", None)
            instances = getattr(parent, "instance", None)
            leads = list(instances) if instances is not None and not isinstance(instances, Lead) else [self.instance]
            leads = [lead for lead in leads if isinstance(lead, Lead)]
            cache.update(latest_assignments(leads=leads))
            cache["_loaded"] = True
        return cache

    @extend_schema_field(AssignmentSerializer(allow_null=True))
    def get_latest_assignment(self, lead):
        assignment = self._latest_assignments().get(lead.pk)
        return AssignmentSerializer(assignment).data if assignment is not None else None

    @extend_schema_field(TeamBriefSerializer(allow_null=True))
    def get_team(self, lead):
        if lead.team_id is None:
            return None
        # lead_assign writes the lead's team and its assignment's together, so the page's one
        # assignment query has it; anything else falls back to reading the team.
        assignment = self._latest_assignments().get(lead.pk)
        team = assignment.team if assignment is not None and assignment.team_id == lead.team_id else lead.team
        return {"id": team.pk, "name": team.name}


class LeadUpdateSerializer(serializers.Serializer):
    """PATCH body: any subset of the editable fields. Other fields are refused, not ignored."""

    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=40)
    job_title = serializers.CharField(required=False, allow_blank=True, max_length=200)
    company = serializers.CharField(required=False, allow_blank=True, max_length=200)
    company_domain = serializers.CharField(required=False, allow_blank=True, max_length=253)
    company_size = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=10_000_000)
    industry = serializers.CharField(required=False, allow_blank=True, max_length=100)
    country = serializers.CharField(required=False, allow_blank=True, max_length=100)
    status = serializers.ChoiceField(required=False, choices=LeadStatus.choices)
    stage = serializers.ChoiceField(required=False, choices=LeadStage.choices, help_text="A change is recorded as a stage transition.")
    owner = serializers.IntegerField(
        required=False, allow_null=True, help_text="User id of a member of the tenant, or null. Managers, admins and API keys only."
    )
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=200, write_only=True,
        help_text="Why (kept in the audit trail and on a stage transition).",
    )

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["This field cannot be edited."] for name in unknown})
        return super().to_internal_value(data)

    def validate(self, attrs):
        if not set(attrs) & EDITABLE_FIELDS:
            raise serializers.ValidationError("Give at least one field to change.")
        return attrs


class TouchSerializer(serializers.ModelSerializer):
    form = serializers.CharField(source="form.name", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Touch
        fields = ["id", "kind", "form", "source", "payload", "filled_fields", "ip_address", "user_agent", "received_at"]
        read_only_fields = fields


class ActivitySerializer(serializers.ModelSerializer):
    actor = UserBriefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Activity
        fields = ["id", "kind", "subject", "body", "outcome", "occurred_at", "actor", "created_at"]
        read_only_fields = fields


class ActivityCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ActivityKind.choices)
    subject = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    body = serializers.CharField(required=False, allow_blank=True, max_length=20_000, default="")
    outcome = serializers.CharField(required=False, allow_blank=True, max_length=64, default="",
                                    help_text="e.g. connected, left_voicemail, no_answer, meeting_booked.")
    occurred_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None,
        help_text="When it happened (default: now). Send it to make a retried request safe.",
    )


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "at", "action", "actor_kind", "actor_name", "changes", "metadata"]
        read_only_fields = fields
