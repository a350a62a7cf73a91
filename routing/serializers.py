"""DRF serializers of the routing API: assignments, dry run, reassignment, taxonomy."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from leadmgmt.api import TextField, text_problem

from .models import Assignment, RejectionReason, Strategy


class PersonSerializer(serializers.Serializer):
    """A person named in routing history (owner, previous owner, who acted)."""

    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.SerializerMethodField()

    def get_name(self, user) -> str:
        return user.get_full_name() or user.get_username()


class TeamBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class AssignmentSerializer(serializers.ModelSerializer):
    """One change of a lead's owner: rule, strategy, previous owner, reason, trigger, who and when."""

    owner = PersonSerializer(read_only=True, allow_null=True, help_text="Null: the lead went to Unassigned.")
    previous_owner = PersonSerializer(read_only=True, allow_null=True)
    team = TeamBriefSerializer(read_only=True, allow_null=True)
    rule = serializers.SerializerMethodField(help_text="The rule that placed the lead (its name is kept if the "
                                                       "rule was deleted since).")
    actor = serializers.SerializerMethodField()
    strategy = serializers.ChoiceField(
        choices=Strategy.choices, allow_blank=True, read_only=True,
        help_text="How the owner was picked; blank when no rule or strategy placed the lead (a lead assigned by "
        "hand at capture or by an import).")

    class Meta:
        model = Assignment
        fields = ["id", "at", "owner", "previous_owner", "team", "rule", "strategy", "trigger", "reason", "details",
                  "actor"]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "nullable": True, "properties": {
        "id": {"type": "integer", "nullable": True}, "name": {"type": "string"}}})
    def get_rule(self, assignment):
        if not assignment.rule_id and not assignment.rule_name:
            return None
        return {"id": assignment.rule_id, "name": assignment.rule_name}

    @extend_schema_field({"type": "object", "properties": {
        "kind": {"type": "string"}, "name": {"type": "string"}, "user_id": {"type": "integer", "nullable": True}}})
    def get_actor(self, assignment):
        return {"kind": assignment.actor_kind, "name": assignment.actor_name, "user_id": assignment.actor_user_id}


class DryRunInSerializer(serializers.Serializer):
    one_of_required = (("lead_id",), ("values",))  # documented as a `oneOf`: one of them, not both

    lead_id = serializers.UUIDField(required=False, help_text="A lead of this tenant …")
    values = serializers.DictField(required=False, help_text="… or hypothetical lead fields, e.g. "
                                   '{"country": "Germany", "score": 85, "source": "web_form"}.')

    def validate_values(self, value):
        problem = text_problem(value)  # a lone surrogate or NUL, in a key or a value
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate(self, attrs):
        if ("lead_id" in attrs) == ("values" in attrs):
            raise serializers.ValidationError({"lead_id": ["Give either lead_id or values, not both and not neither."]})
        return attrs


class DryRunRuleSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    name = serializers.CharField()
    matched = serializers.BooleanField()
    placed = serializers.BooleanField()
    why = serializers.CharField()


class DryRunResultSerializer(serializers.Serializer):
    rule = serializers.DictField(allow_null=True, help_text="The rule that would fire: id, name, position.")
    strategy = serializers.CharField(allow_blank=True)
    owner = serializers.DictField(allow_null=True, help_text="Who would get the lead (id, email); null: Unassigned.")
    team = serializers.DictField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    rules = DryRunRuleSerializer(many=True, help_text="Every rule in order, with why it did not place the lead.")


class ReassignSerializer(serializers.Serializer):
    to_user_id = serializers.IntegerField(required=False, allow_null=True,
                                          help_text="A member of the tenant; omitted or null: through the rules, "
                                                    "excluding the current owner.")
    reason = TextField(max_length=500)
    expected_owner_id = serializers.IntegerField(required=False, allow_null=True,
                                                 help_text="The owner you saw; refused if the lead changed hands.")


class ReassignBulkSerializer(serializers.Serializer):
    from_user_id = serializers.IntegerField(help_text="The rep whose open leads all move.")
    to_user_id = serializers.IntegerField(required=False, allow_null=True,
                                          help_text="Omitted or null: each lead goes through the rules.")
    reason = TextField(max_length=500)


class ReassignBulkResultSerializer(serializers.Serializer):
    moved = serializers.IntegerField()


class RejectionReasonSerializer(serializers.ModelSerializer):
    class Meta:
        model = RejectionReason
        fields = ["code", "label", "nurture"]
        read_only_fields = fields
