"""Admin forms of nurture: sequences (audience ticked from the tenant's values), steps and their form set
(checked against each other), settings and suppressions. Model checks live in `nurture.validation`; these
forms put every message beside its field and never let a bad row reach the database."""
from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from leads.models import LeadStage, LeadStatus
from scoring.models import LeadClass

from .models import NurtureSettings, Sequence, SequenceStatus, Step, Suppression, SuppressionReason
from .validation import (
    NO_STEPS_MESSAGE,
    SIBLINGS_CHECKED,
    published_band_choices,
    step_sibling_problems,
)


class AudienceField(forms.MultipleChoiceField):
    """Ticked values; a value outside the choices (a band of an older scoring model) is kept for
    `nurture.validation` to name it beside the field."""

    widget = forms.CheckboxSelectMultiple

    def valid_value(self, value):
        return True


class SequenceForm(forms.ModelForm):
    audience_classes = AudienceField(required=False, label="Lead classes")
    audience_bands = AudienceField(required=False, label="Score bands")
    audience_stages = AudienceField(required=False, label="Stages")
    audience_statuses = AudienceField(required=False, label="Statuses")
    audience_rejection_reasons = AudienceField(required=False, label="Rejection reasons")

    tenant = None  # set by the admin: the request's tenant

    class Meta:
        model = Sequence
        fields = ["name", "goal", "kind", "status", "auto_enroll", "priority", "ready_score", "audience_classes",
                  "audience_bands", "audience_stages", "audience_statuses", "audience_sources",
                  "audience_rejection_reasons", "audience_opportunity_lost"]
        help_texts = {"audience_sources": "Comma-separated lead sources, e.g. webinar,content (empty: any)."}
        labels = {"audience_sources": "Sources", "audience_opportunity_lost": "Only leads with a lost opportunity"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.tenant_id is None and self.tenant is not None:
            self.instance.tenant = self.tenant  # so the audience and name are checked against it before saving
        tenant_id = self.instance.tenant_id
        choices = {
            "audience_classes": list(LeadClass.choices), "audience_stages": list(LeadStage.choices),
            "audience_statuses": list(LeadStatus.choices), "audience_bands": [], "audience_rejection_reasons": [],
        }
        if tenant_id is not None:
            from routing.models import RejectionReason

            choices["audience_bands"] = published_band_choices(tenant=tenant_id)
            choices["audience_rejection_reasons"] = list(
                RejectionReason.objects.for_tenant(tenant_id).order_by("position", "id")
                .values_list("code", "label"))
        for name, options in choices.items():
            known = {value for value, _label in options}
            stored = [v for v in (self.initial.get(name) or []) if v not in known]
            self.fields[name].choices = options + [(v, f"{v} (unknown)") for v in stored]
            self.fields[name].help_text = "None ticked: any."

    def _post_clean(self):
        setattr(self.instance, SIBLINGS_CHECKED, True)  # the steps are checked by the step form set
        super()._post_clean()


class StepForm(forms.ModelForm):
    class Meta:
        model = Step
        fields = ["position", "delay_days", "delay_hours", "subject", "body", "condition", "condition_score",
                  "when_false", "goto_position"]
        widgets = {"subject": forms.TextInput(attrs={"size": 90}),
                   "body": forms.Textarea(attrs={"rows": 12, "cols": 90})}

    def _post_clean(self):
        setattr(self.instance, SIBLINGS_CHECKED, True)  # the form set checks it against the other steps
        super()._post_clean()


class StepFormSet(BaseInlineFormSet):
    """The steps as they will be saved: one position each, "go to" targets that exist, no "previous
    email" condition on the first step, and at least one step in an active sequence."""

    def clean(self):
        super().clean()
        kept = [f for f in self.forms if getattr(f, "cleaned_data", None) and not self._should_delete_form(f)]
        positions = [f.cleaned_data["position"] for f in kept if f.cleaned_data.get("position") is not None]
        seen: set[int] = set()
        for form in kept:
            position = form.cleaned_data.get("position")
            if position in seen:
                form.add_error("position", f"Another step already has position {position}.")
            seen.add(position)
        for form in kept:
            for field, problems in step_sibling_problems(form.instance, positions=positions).items():
                for problem in problems:
                    form.add_error(field, problem)
        if self.instance.status == SequenceStatus.ACTIVE and not kept:
            raise ValidationError(NO_STEPS_MESSAGE)


class NurtureSettingsForm(forms.ModelForm):
    class Meta:
        model = NurtureSettings
        fields = ["from_name", "from_email", "reply_to", "postal_address", "max_per_minute", "quiet_hours_start",
                  "quiet_hours_end", "working_pause_days"]
        widgets = {"postal_address": forms.Textarea(attrs={"rows": 3, "cols": 60})}

    def clean(self):
        data = super().clean()
        start, end = data.get("quiet_hours_start"), data.get("quiet_hours_end")
        if (start is None) != (end is None):
            self.add_error("quiet_hours_end" if start is not None else "quiet_hours_start",
                           "Enter both ends of the quiet hours, or neither.")
        elif start is not None and start == end:
            self.add_error("quiet_hours_end", "Quiet hours that start and end at the same time are empty; "
                                              "clear both instead.")
        return data


class SuppressionForm(forms.ModelForm):
    email = forms.EmailField(max_length=254)
    tenant = None

    class Meta:
        model = Suppression
        fields = ["email", "reason", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "reason" in self.fields:  # by hand: an address someone asked to drop, or a complaint received
            self.fields["reason"].choices = [(v, label) for v, label in SuppressionReason.choices
                                             if v in (SuppressionReason.MANUAL, SuppressionReason.COMPLAINT)]

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        tenant_id = self.tenant.pk if self.tenant is not None else self.instance.tenant_id
        taken = Suppression.objects.for_tenant(tenant_id).filter(email=email)
        if self.instance.pk is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if tenant_id is not None and taken.exists():
            raise ValidationError("This address is already suppressed.")
        return email
