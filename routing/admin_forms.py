"""Admin forms of routing: every form validates against its tenant through `routing.validation`,
so bad input is a message on the field and nothing is written (never an IntegrityError page)."""
from __future__ import annotations

import copy
import json

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.text import capfirst

from leadmgmt.tenancy.models import Membership, Tenant
from leads.models import Lead

from .conditions import conditions_canonicalize
from .models import (
    BusinessHours,
    EscalationStep,
    RejectionReason,
    RoutingRule,
    RoutingRuleMember,
    RoutingSettings,
    SlaPolicy,
    Strategy,
    Territory,
)
from .validation import (
    business_hours_errors,
    escalation_steps_errors,
    membership_capacity_errors,
    rejection_reason_errors,
    routing_rule_errors,
    routing_settings_errors,
    rule_member_errors,
    rule_target_errors,
    sla_policy_errors,
    territory_canonicalize,
    territory_errors,
)


def _apply(form: forms.Form, errors: dict[str, list[str]]) -> None:
    for name, messages in errors.items():
        for message in messages:
            form.add_error(name if name in form.fields else None, message)


def _unscoped_formfield(db_field, **kwargs):
    """Build FK fields without the tenant-scoped manager (no tenant at import time); the admin's own
    callback replaces this one and gives the request tenant's rows as choices."""
    related = getattr(db_field, "related_model", None)
    if db_field.many_to_one and related is not None and hasattr(related.objects, "unscoped"):
        # ForeignKey.formfield() would evaluate the scoped default manager first, so build it here.
        return forms.ModelChoiceField(queryset=related.objects.none(), required=not db_field.blank,
                                      label=capfirst(db_field.verbose_name), help_text=db_field.help_text)
    return db_field.formfield(**kwargs)


class TenantMeta:
    formfield_callback = staticmethod(_unscoped_formfield)


class TenantModelForm(forms.ModelForm):
    """A ModelForm that knows its tenant (set by the admin) and checks the unsaved object against it."""

    tenant: Tenant | None = None
    validator = None  # (obj, tenant) -> errors

    def form_tenant(self) -> Tenant | None:
        if self.cleaned_data.get("tenant") is not None:  # a platform superuser picking the tenant
            return self.cleaned_data["tenant"]
        if self.tenant is not None:
            return self.tenant
        return self.instance.tenant if self.instance.tenant_id else None

    def candidate(self):
        """The instance as it would be saved (the form's instance itself is untouched until then)."""
        obj = copy.copy(self.instance)
        names = {f.name for f in obj._meta.fields}
        for name, value in self.cleaned_data.items():
            if name in names:
                setattr(obj, name, value)
        return obj

    def clean(self):
        data = super().clean()
        tenant = self.form_tenant()
        if tenant is not None and type(self).validator is not None:
            _apply(self, type(self).validator(self.candidate(), tenant))
        return data


class PositiveMinutesField(forms.IntegerField):
    """Minutes as a whole number; zero or less is refused with a message that says why."""

    def validate(self, value):
        super().validate(value)
        if value is not None and value <= 0:
            raise ValidationError("An SLA needs a positive number of minutes (at least 1).")


class NonNegativeField(forms.IntegerField):
    def __init__(self, *args, message: str, **kwargs):
        self.message = message
        super().__init__(*args, **kwargs)

    def validate(self, value):
        super().validate(value)
        if value is not None and value < 0:
            raise ValidationError(self.message)


# --- routing rules and their people ----------------------------------------------------------------


class RoutingRuleForm(TenantModelForm):
    class Meta(TenantMeta):
        model = RoutingRule
        fields = ["tenant", "position", "name", "is_active", "conditions", "strategy", "team", "roles", "fall_through",
                  "is_fallback"]
        widgets = {"conditions": forms.Textarea(attrs={"rows": 4, "cols": 80}),
                   "roles": forms.Textarea(attrs={"rows": 1, "cols": 40})}
        help_texts = {
            "conditions": 'A JSON list, all must hold: [{"field": "country", "operator": "in_list", "value": '
                          '["Germany", "FR"]}, {"field": "score", "operator": "range", "value": {"min": 80}}]; [] '
                          "matches every lead. Countries are saved as ISO codes (Germany → DE). "
                          '"account_score" reads the score of the lead\'s account.',
        }

    validator = staticmethod(lambda rule, tenant: routing_rule_errors(rule=rule, tenant=tenant))

    def clean_conditions(self):
        return conditions_canonicalize(self.cleaned_data.get("conditions"))


class RoutingRuleMemberForm(TenantModelForm):
    weight = NonNegativeField(initial=1, message="A weight cannot be below zero (0 pauses the person).")

    class Meta(TenantMeta):
        model = RoutingRuleMember
        fields = ["user", "weight"]

    validator = staticmethod(lambda member, tenant: rule_member_errors(
        tenant=tenant, user=member.user if member.user_id else None, weight=member.weight))


class TenantInlineFormSet(BaseInlineFormSet):
    """Hands the tenant (the admin's request tenant, else the parent's) to each form."""

    tenant: Tenant | None = None

    def form_tenant(self) -> Tenant | None:
        if self.tenant is not None:
            return self.tenant
        return self.instance.tenant if getattr(self.instance, "tenant_id", None) else None

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.tenant = self.form_tenant()
        return form

    @property
    def empty_form(self):
        form = super().empty_form
        form.tenant = self.form_tenant()
        return form

    def kept_forms(self) -> list[forms.Form]:
        return [f for f in self.forms if getattr(f, "cleaned_data", None) and not self._should_delete_form(f)]


class RoutingRuleMemberFormSet(TenantInlineFormSet):
    def clean(self):
        super().clean()
        kept = self.kept_forms()
        users = [f.cleaned_data.get("user") for f in kept if f.cleaned_data.get("user") is not None]
        if len(set(users)) != len(users):
            raise ValidationError("The same person is listed twice.")
        rule = self.instance
        errors = rule_target_errors(rule=rule, team=rule.team if rule.team_id else None, member_count=len(users))
        if rule.strategy == Strategy.WEIGHTED_ROUND_ROBIN and users and rule.team_id is None and all(
                (f.cleaned_data.get("weight") or 0) == 0 for f in kept):
            errors.setdefault("weight", []).append("Every person has weight 0: nobody would get a lead.")
        messages = [message for msgs in errors.values() for message in msgs]
        if messages:
            raise ValidationError(messages)


# --- SLA policies and their ladders ----------------------------------------------------------------


class SlaPolicyForm(TenantModelForm):
    minutes = PositiveMinutesField(help_text="Time allowed from assignment (at least 1 minute).")

    class Meta(TenantMeta):
        model = SlaPolicy
        fields = ["tenant", "position", "name", "is_active", "kind", "sources", "bands", "stages", "minutes",
                  "business_hours_only"]
        widgets = {name: forms.Textarea(attrs={"rows": 1, "cols": 50}) for name in ("sources", "bands", "stages")}

    validator = staticmethod(lambda policy, tenant: sla_policy_errors(policy=policy, tenant=tenant))


class EscalationStepForm(TenantModelForm):
    after_minutes = NonNegativeField(initial=0, message="Minutes after the deadline cannot be below zero.")

    class Meta(TenantMeta):
        model = EscalationStep
        fields = ["level", "after_minutes", "action"]


class EscalationStepFormSet(TenantInlineFormSet):
    def clean(self):
        super().clean()
        kept = [f for f in self.kept_forms() if f.cleaned_data.get("level") is not None
                and f.cleaned_data.get("after_minutes") is not None]
        steps = [{"level": f.cleaned_data["level"], "after_minutes": f.cleaned_data["after_minutes"], "form": f}
                 for f in kept]
        errors = escalation_steps_errors(steps)
        if "level" in errors:
            raise ValidationError(errors["level"])
        if "after_minutes" in errors:
            by_level = sorted(steps, key=lambda step: step["level"])
            for before, after in zip(by_level, by_level[1:], strict=False):
                if after["after_minutes"] <= before["after_minutes"]:
                    after["form"].add_error("after_minutes", f"Must be later than step {before['level']} "
                                                             f"(+{before['after_minutes']} min).")
            raise ValidationError(errors["after_minutes"])


# --- the other configuration ------------------------------------------------------------------------


class TerritoryForm(TenantModelForm):
    class Meta(TenantMeta):
        model = Territory
        fields = ["tenant", "name", "position", "countries", "regions", "industries", "company_size_min", "company_size_max",
                  "team", "is_active"]

        help_texts = {
            "countries": 'A JSON list of country names or ISO codes, e.g. ["United States", "CA"]; saved as ISO '
                         "codes ([] for any).",
            "regions": 'A JSON list of sales regions: NA, LATAM, EMEA, APAC (e.g. ["EMEA"]); a lead\'s region is '
                       "its country's ([] for any).",
        }

    validator = staticmethod(lambda territory, tenant: territory_errors(territory=territory, tenant=tenant))

    def clean(self):
        data = super().clean()
        countries, regions = territory_canonicalize(countries=data.get("countries"), regions=data.get("regions"))
        if "countries" in data and not self.has_error("countries"):
            data["countries"] = countries
        if "regions" in data and not self.has_error("regions"):
            data["regions"] = regions
        return data


class BusinessHoursForm(TenantModelForm):
    class Meta(TenantMeta):
        model = BusinessHours
        fields = ["tenant", "weekday", "opens_at", "closes_at"]

    validator = staticmethod(lambda hours, tenant: business_hours_errors(hours=hours, tenant=tenant))


class RoutingSettingsForm(TenantModelForm):
    class Meta(TenantMeta):
        model = RoutingSettings
        fields = ["tenant", "default_team", "aging_flag_hours", "aging_alert_hours", "recycle_after_attempts"]

    validator = staticmethod(lambda obj, tenant: routing_settings_errors(routing_settings=obj, tenant=tenant))


def reason_use_count(*, tenant: Tenant, code: str) -> int:
    """Leads rejected or disqualified with this reason code (they keep the code, not a link)."""
    return Lead.objects.for_tenant(tenant).filter(rejection_reason=code).count()


class RejectionReasonForm(TenantModelForm):
    """One reason of the taxonomy reps pick from when they reject or disqualify a lead."""

    class Meta(TenantMeta):
        model = RejectionReason
        fields = ["tenant", "code", "label", "nurture", "is_active", "position"]
        help_texts = {
            "code": "Short and stable, e.g. bad_fit: leads keep it, dashboards group by it. It cannot change once "
                    "a lead uses it.",
            "label": "What reps see in the reject and disqualify menus.",
            "is_active": "Inactive reasons leave the menus; leads that used them keep them.",
        }

    @staticmethod
    def validator(reason, tenant):
        errors = rejection_reason_errors(reason=reason, tenant=tenant)
        if not reason.pk:
            return errors
        saved = RejectionReason.objects.for_tenant(reason.tenant_id).get(pk=reason.pk)
        if reason.code != saved.code:
            used = reason_use_count(tenant=tenant, code=saved.code)
            if used:
                errors.setdefault("code", []).append(
                    f"{used} lead(s) were rejected or disqualified as “{saved.code}”: renaming the code would cut "
                    "them off from this reason. Change the label, or deactivate this reason and add a new one.")
        if saved.is_active and not reason.is_active and not RejectionReason.objects.for_tenant(tenant).filter(is_active=True).exclude(pk=reason.pk).exists():
            errors.setdefault("is_active", []).append(
                "This is the last active reason: reps could no longer reject or disqualify a lead.")
        return errors


class MembershipCapacityForm(TenantModelForm):
    """The tenancy admin's membership form, refusing a cap of 0 on the last rep a rule can route to."""

    @staticmethod
    def validator(membership, tenant):
        membership.tenant = tenant
        return membership_capacity_errors(membership=membership)

    class Meta(TenantMeta):
        model = Membership
        fields = ["tenant", "user", "role", "team", "is_available", "capacity", "unavailable_from",
                  "unavailable_until", "routing_weight", "is_senior"]


# --- dry run ------------------------------------------------------------------------------------------


class DryRunForm(forms.Form):
    lead_id = forms.UUIDField(required=False, label="Lead id", help_text="A lead of this tenant …")
    values = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6, "cols": 80}), label="… or hypothetical values",
        help_text='A JSON object of lead fields, e.g. {"country": "Germany", "score": 85, "source": "web_form", '
                  '"company_domain": "acme.com"}.')

    def __init__(self, *args, tenant: Tenant, **kwargs):
        self.tenant = tenant
        super().__init__(*args, **kwargs)

    def clean_values(self):
        raw = (self.cleaned_data.get("values") or "").strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ValidationError(f"Not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ValidationError("Give a JSON object of lead fields.")
        return value

    def clean(self):
        data = super().clean()
        lead_id, values = data.get("lead_id"), data.get("values")
        if self.errors:
            return data
        if (lead_id is None) == (values is None):
            raise ValidationError("Give either a lead id or hypothetical values.")
        if lead_id is not None:
            data["lead"] = Lead.objects.for_tenant(self.tenant).filter(pk=lead_id).first()
            if data["lead"] is None:
                self.add_error("lead_id", "No lead of this tenant has this id.")
        return data
