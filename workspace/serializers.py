"""DRF serializers of the workspace API: a lead with its score breakdown, owner, assignments and SLA;
its edit, parts and history; and the rep's actions on it (accept, reject, qualify, convert)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from leadmgmt.api import TextField
from leadmgmt.audit.models import AuditEvent
from leads.models import (
    Activity,
    ActivityKind,
    Lead,
    LeadStage,
    LeadStatus,
    OpportunityStage,
    Touch,
)
from leads.services.lead_edit import EDITABLE_FIELDS
from routing.selectors import latest_assignments
from routing.serializers import AssignmentSerializer, PersonSerializer, TeamBriefSerializer
from scoring.predictive.compiled import contribution_text
from scoring.selectors import rule_labels, score_explain

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
    score = serializers.IntegerField(
        allow_null=True, help_text="Account score 0-100 from its leads' fit and engagement (null until scored).")
    engaged_leads = serializers.IntegerField(help_text="Leads of the account counting as engaged people.")


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


class PredictiveContributionSerializer(serializers.Serializer):
    label = serializers.CharField()
    effect = serializers.IntegerField(help_text="Percentage points of conversion probability it adds (or takes).")
    text = serializers.CharField()


class LeadSerializer(serializers.ModelSerializer):
    owner = UserBriefSerializer(read_only=True, allow_null=True)
    account = AccountBriefSerializer(read_only=True, allow_null=True)
    account_score = serializers.IntegerField(
        source="account.score", read_only=True, allow_null=True, default=None,
        help_text="The score of the lead's account (0-100: best fit + best engagement of its leads, more for "
        "several engaged people); null without an account or before it is scored.")
    possible_duplicate_of = serializers.UUIDField(source="possible_duplicate_of_id", read_only=True, allow_null=True)
    score_breakdown = serializers.SerializerMethodField(
        help_text="Every rule's contribution (rule, category, points); the score is their sum clamped to "
        "0-100. Null until the lead is scored.")
    team = serializers.SerializerMethodField(help_text="The team whose queue the lead is in.")
    conversion_probability = serializers.FloatField(
        read_only=True, allow_null=True,
        help_text="Calibrated probability (0-1) that the lead is won, from the tenant's learned model; null until "
        "a model is trained.")
    predictive_score = serializers.IntegerField(read_only=True, allow_null=True,
                                                help_text="The conversion probability as 0-100.")
    predictive_contributions = serializers.SerializerMethodField(
        help_text="The learned model's top contributions for this lead: label, effect in percentage points, and "
        'the words ("Industry: Healthcare +18 %").')
    latest_assignment = serializers.SerializerMethodField(
        help_text="The last change of owner: rule, strategy, previous owner, reason (null if never routed).")

    class Meta:
        model = Lead
        fields = [
            "id", "email", "first_name", "last_name", "phone", "job_title",
            "company", "company_domain", "company_size", "industry", "country",
            "status", "stage", "owner", "account", "account_score", "source",
            "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "campaign",
            "marketing_consent", "consent_at", "consent_source", "is_personal_email",
            "score", "fit_score", "engagement_score", "band", "lead_class", "lead_class_reason", "is_hot",
            "scored_at", "score_breakdown", "sla_due_at", "last_activity_at",
            # The tenant's learned model (issue 16): null until one is trained.
            "conversion_probability", "predictive_score", "predictive_contributions",
            "attributes", "edited_fields", "possible_duplicate_of", "created_at", "updated_at",
            # Routing and the rep's work (issue 4).
            "team", "assigned_at", "unassigned_reason", "latest_assignment", "product_interest",
            "first_contacted_at", "contact_attempts", "accepted_at", "rejection_reason", "rejection_note",
            "rejected_at", "budget", "authority", "need", "timeline",
            # A hard bounce of the address, until the email is corrected or the flag dismissed (issue 15).
            "email_bounced_at", "email_bounce_note",
        ]
        read_only_fields = fields


    @extend_schema_field(PredictiveContributionSerializer(many=True))
    def get_predictive_contributions(self, lead) -> list[dict]:
        return [{"label": r.get("label", ""), "effect": int(r.get("effect") or 0), "text": contribution_text(r)}
                for r in (lead.predictive_reasons or [])]

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
            cache.update(rule_labels(tenant=lead.tenant_id, model_ids=models - set(cache)))
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

    refuses_unknown_fields = True  # documented as `additionalProperties: false`

    email = TextField(required=False, allow_blank=True, max_length=254)
    first_name = TextField(required=False, allow_blank=True, max_length=100)
    last_name = TextField(required=False, allow_blank=True, max_length=100)
    phone = TextField(required=False, allow_blank=True, max_length=40)
    job_title = TextField(required=False, allow_blank=True, max_length=200)
    company = TextField(required=False, allow_blank=True, max_length=200)
    company_domain = TextField(required=False, allow_blank=True, max_length=253)
    company_size = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=10_000_000)
    industry = TextField(required=False, allow_blank=True, max_length=100)
    country = TextField(required=False, allow_blank=True, max_length=100)
    status = serializers.ChoiceField(required=False, choices=LeadStatus.choices)
    stage = serializers.ChoiceField(required=False, choices=LeadStage.choices, help_text="A change is recorded as a stage transition.")
    owner = serializers.IntegerField(
        required=False, allow_null=True, help_text="User id of a member of the tenant, or null. Managers, admins and API keys only."
    )
    reason = TextField(
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
    subject = TextField(required=False, allow_blank=True, max_length=200, default="")
    body = TextField(required=False, allow_blank=True, max_length=20_000, default="")
    outcome = TextField(
        required=False, allow_blank=True, max_length=64, default="",
        help_text="A code of the tenant's outcome taxonomy that fits the kind (defaults: connected, voicemail, "
        "no_answer, busy, wrong_number for calls; sent, replied, bounced for emails; held, no_show for meetings; "
        "meeting_booked, not_interested for any). Blank is allowed; an unknown code is a 400 on `outcome`. Only "
        "an outcome that counts as contact (connected, replied, held, meeting_booked …) stops the first-contact "
        "SLA clock; the others, and a call without an outcome, are attempts.")
    occurred_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None,
        help_text="When it happened (default: now). Send it to make a retried request safe.",
    )


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "at", "action", "actor_kind", "actor_name", "changes", "metadata"]
        read_only_fields = fields


# --- The rep's actions ----------------------------------------------------------------------------


class ExpectedOwnerSerializer(serializers.Serializer):
    expected_owner_id = serializers.IntegerField(required=False, allow_null=True,
                                                 help_text="The owner you saw; refused if the lead changed hands.")


class RejectSerializer(ExpectedOwnerSerializer):
    reason = TextField(max_length=48, help_text="A code from /api/v1/routing/rejection-reasons/.")
    note = TextField(max_length=500, required=False, allow_blank=True, default="")


class QualifySerializer(ExpectedOwnerSerializer):
    budget = TextField(max_length=200, help_text="Can they afford it?")
    authority = TextField(max_length=200, help_text="Is this the decision maker?")
    need = TextField(max_length=500, help_text="The pain they need solved.")
    timeline = TextField(max_length=200, help_text="When they need it solved.")


class ConvertSerializer(ExpectedOwnerSerializer):
    name = TextField(max_length=200, required=False, allow_blank=True, default="",
                                 help_text="The opportunity's name (default: “<company> – <lead name>”).")
    stage = serializers.ChoiceField(choices=[s for s in OpportunityStage.choices if s[0] not in ("won", "lost")],
                                    required=False, allow_blank=True, default="",
                                    help_text="An open opportunity stage (default: discovery).")


class HandoffSerializer(serializers.Serializer):
    """Where qualifying sent the lead: to an AE (`placed`), or to the Unassigned queue with the reason."""

    placed = serializers.BooleanField(help_text="True: an AE owns the lead and its opportunity now.")
    reason = serializers.CharField(help_text="Why this AE, or why no AE matches (then the lead waits in the "
                                             "Unassigned queue and the SDR's manager is notified).")
    message = serializers.CharField(help_text="The sentence the lead page shows the SDR.")


class OpportunitySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    stage = serializers.CharField()
    owner = PersonSerializer(allow_null=True)
    account_id = serializers.IntegerField(allow_null=True)
    budget = serializers.CharField()
    authority = serializers.CharField()
    need = serializers.CharField()
    timeline = serializers.CharField()
    accepted_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
