"""Forms of the leads UI: the queue filters and the lead page's actions (each validates, then a service acts)."""
from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from leads.activity_outcomes import activity_counts_as_contact
from leads.models import OPEN_STATUSES, ActivityKind, Lead, OpportunityStage
from scoring.models import LeadClass

from .services.lifecycle import OPEN_OPPORTUNITY_STAGES

QUEUE_STATUS_CHOICES = [("", "Any status")] + [(s.value, s.label) for s in OPEN_STATUSES]


class QueueFilterForm(forms.Form):
    """GET filters of My queue; unknown values are dropped with a message, never a 500."""

    q = forms.CharField(required=False, max_length=100, label="Search",
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, email or company"}))
    status = forms.ChoiceField(required=False, choices=QUEUE_STATUS_CHOICES)
    band = forms.ChoiceField(required=False, choices=[("", "Any band")])
    lead_class = forms.ChoiceField(required=False, label="Class",
                                   choices=[("", "Any class")] + list(LeadClass.choices))
    source = forms.ChoiceField(required=False, choices=[("", "Any source")])

    def __init__(self, *args, sources=(), bands=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [("", "Any source")] + [(s, s) for s in sources]
        self.fields["band"].choices = [("", "Any band")] + [(b, b.title()) for b in bands]

    def filters(self) -> dict:
        """The valid filters only (an invalid one is ignored; its error is shown beside the field)."""
        if self.is_bound:
            self.is_valid()
        data = getattr(self, "cleaned_data", {}) or {}
        return {key: value for key, value in data.items() if value}


class ExpectedOwnerForm(forms.Form):
    """Every action carries the owner the page showed; the service refuses it if the lead changed meanwhile."""

    expected_owner_id = forms.CharField(required=False, widget=forms.HiddenInput)

    def expected_owner(self):
        value = (self.cleaned_data.get("expected_owner_id") or "").strip()
        if value in ("", "none"):
            return None
        try:
            return int(value)
        except ValueError:
            raise forms.ValidationError("The page is out of date; reload it.") from None


class ActivityForm(ExpectedOwnerForm):
    """Log a call, email, meeting or note; the outcome comes from the tenant's taxonomy, grouped by kind."""

    kind = forms.ChoiceField(choices=ActivityKind.choices, label="Type")
    outcome = forms.ChoiceField(
        required=False, choices=[], help_text="Only an outcome that reaches the person (connected, replied, meeting "
        "booked …) is first contact and stops the SLA clock; a call without one, no answer or a voicemail is an "
        "attempt.")
    subject = forms.CharField(required=False, max_length=200)
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Notes")

    GROUPS = (("call", "Calls"), ("email", "Emails"), ("meeting", "Meetings"), ("any", "Any activity"))

    def __init__(self, *args, outcomes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes = list(outcomes)
        self._labels = {o.code: o.label for o in self.outcomes}
        choices: list = [("", "No outcome")]
        for kind, label in self.GROUPS:
            group = [(o.code, o.label + (" (contact)" if o.counts_as_contact else "")) for o in outcomes
                     if o.kind == kind]
            if group:
                choices.append((label, group))
        self.fields["outcome"].choices = choices

    def outcome_label(self, code: str) -> str:
        return self._labels.get(code, code.replace("_", " "))

    def logged_message(self, activity) -> str:
        """'Call logged. No answer: counted as an attempt.' or 'Call logged. Connected: counts as contact.'"""
        kind = activity.kind
        message = f"{dict(self.fields['kind'].choices)[kind]} logged."
        if kind == ActivityKind.NOTE:
            return message
        chosen = next((o for o in self.outcomes if o.code == activity.outcome), None)
        label = self.outcome_label(activity.outcome) if activity.outcome else "No outcome"
        if activity_counts_as_contact(outcomes=self.outcomes, kind=kind, outcome=chosen):
            return f"{message} {label}: counts as contact."
        return f"{message} {label}: counted as an attempt."


class AcceptForm(ExpectedOwnerForm):
    pass


class BounceDismissForm(forms.Form):
    """Dismiss the lead's bounced-email flag (the address was checked): nothing to fill in."""


class ReasonForm(ExpectedOwnerForm):
    reason = forms.ChoiceField(choices=[])
    note = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, reasons=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].choices = [("", "Choose a reason")] + [(r.code, r.label) for r in reasons]


class QualifyForm(ExpectedOwnerForm):
    budget = forms.CharField(max_length=200)
    authority = forms.CharField(max_length=200)
    need = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
    timeline = forms.CharField(max_length=200)


class RecycleForm(ExpectedOwnerForm):
    reason = forms.CharField(max_length=200, initial="Not ready yet: back to nurture")


THROUGH_THE_RULES = "rules"


class ReassignForm(ExpectedOwnerForm):
    """Hand the lead to a rep who can take it now (the manager pages' rule), or back through the routing
    rules; the select starts empty, so nobody is picked by accident."""

    to_user = forms.ChoiceField(choices=[], label="New owner",
                                error_messages={"required": "Choose a rep, or the routing rules."})
    reason = forms.CharField(max_length=200)

    def __init__(self, *args, members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_user"].choices = [("", "Choose a rep…"), (THROUGH_THE_RULES, "Through the routing rules")] + [
            (str(m.user_id), f"{m.user.get_full_name() or m.user.get_username()} ({m.get_role_display()})")
            for m in members
        ]


class ConvertForm(ExpectedOwnerForm):
    """Convert the lead into an opportunity; the lead's open opportunity, if any, is kept (its values shown)."""

    name = forms.CharField(required=False, max_length=200, label="Opportunity name",
                           help_text="Leave blank for “company – lead name”.")
    stage = forms.ChoiceField(choices=[(s.value, s.label) for s in OPEN_OPPORTUNITY_STAGES],
                              initial=OpportunityStage.DISCOVERY, label="Opportunity stage")


class LeadEditForm(forms.Form):
    """“Edit details”: the contact and company fields. `lead_update` normalises and checks them (email
    format and uniqueness, phone, domain) and remembers them as edited; only the fields the user changed
    are sent. `expected_updated_at` is the version of the lead the page showed: an edit of a lead changed
    meanwhile is refused instead of overwriting that change."""

    FIELDS = ("first_name", "last_name", "email", "phone", "job_title", "company", "company_domain",
              "company_size", "industry", "country", "product_interest")

    first_name = forms.CharField(required=False, max_length=100, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    last_name = forms.CharField(required=False, max_length=100, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    email = forms.CharField(required=False, max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    phone = forms.CharField(required=False, max_length=40, help_text="With the country code, e.g. +1 415 555 0123.",
                            widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}))
    job_title = forms.CharField(required=False, max_length=200)
    company = forms.CharField(required=False, max_length=200)
    company_domain = forms.CharField(required=False, max_length=253, help_text="The website, e.g. acme.com.")
    company_size = forms.IntegerField(required=False, min_value=0, max_value=10_000_000, label="Company size",
                                      help_text="Employees.")
    industry = forms.CharField(required=False, max_length=100)
    country = forms.CharField(required=False, max_length=100)
    product_interest = forms.CharField(required=False, max_length=200)
    expected_updated_at = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, lead: Lead, **kwargs):
        initial = {name: getattr(lead, name) for name in self.FIELDS}
        initial["expected_updated_at"] = lead.updated_at.isoformat()
        super().__init__(*args, initial=initial, prefix="edit", **kwargs)

    def clean_expected_updated_at(self):
        value = parse_datetime((self.cleaned_data.get("expected_updated_at") or "").strip())
        if value is None:
            raise forms.ValidationError("The page is out of date; reload it.")
        return value

    def changes(self) -> dict:
        """The fields the user changed, with their cleaned values (`company_size` None when cleared)."""
        data = self.cleaned_data
        return {name: (data[name] if name == "company_size" else data[name] or "")
                for name in self.FIELDS if name in self.changed_data}


class EnrollForm(forms.Form):
    """Enrol the lead in a nurture sequence by hand (the service checks consent, suppression and kind)."""

    sequence = forms.ChoiceField(choices=[], label="Sequence")

    def __init__(self, *args, sequences=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sequence"].choices = [("", "Choose a sequence")] + [
            (str(s.pk), f"{s.name} ({s.get_kind_display()})") for s in sequences]


class StopNurtureForm(forms.Form):
    """Stop one of the lead's enrolments (reason "manual", the note on the timeline)."""

    enrollment = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    note = forms.CharField(required=False, max_length=300, label="Why (optional)")


class ImportUploadForm(forms.Form):
    """The CSV file of a new import; past IMPORT_MAX_BYTES it is refused before it is read (`too_large`: a 413)."""

    file = forms.FileField(label="CSV file", help_text="Comma, semicolon, tab or pipe separated; UTF-8 (with or "
                           "without BOM) or Latin-1; a header row is detected.",
                           widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv,text/plain"}))

    too_large = False

    def clean_file(self):
        from django.conf import settings

        upload = self.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_BYTES:
            self.too_large = True
            raise forms.ValidationError(f"The file is {upload.size:,} bytes; imports are limited to "
                                        f"{settings.IMPORT_MAX_BYTES:,} bytes.")
        return upload


class ImportUndoForm(forms.Form):
    """Undo's confirmation: a box to tick, so one click does not delete an import's leads."""

    confirm = forms.BooleanField(label="Yes, delete the leads this import created and revert its merges",
                                 error_messages={"required": "Tick the box to confirm the undo."})


def close_date_to_datetime(day):
    """The close date a person picked as a moment: now for today, else noon of that day in the tenant's time."""
    if day is None or day == timezone.localdate():
        return None  # the service's default: now
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12, 0)))


class _CloseForm(forms.Form):
    closed_on = forms.DateField(required=False, label="Close date", help_text="Leave blank for today.",
                                widget=forms.DateInput(attrs={"type": "date"}))

    def closed_at(self):
        return close_date_to_datetime(self.cleaned_data.get("closed_on"))


class CloseWonForm(_CloseForm):
    """Close the lead's deal won: the amount and its currency (the lead becomes a customer)."""

    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=0, label="Amount",
                                widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.01"}))
    currency = forms.CharField(max_length=3, min_length=3, label="Currency", help_text="ISO 4217, e.g. EUR.",
                               widget=forms.TextInput(attrs={"autocapitalize": "characters", "size": 4}))
    field_order = ["amount", "currency", "closed_on"]


class CloseLostForm(_CloseForm):
    """Close the lead's deal lost, with a reason of the tenant's lost-deal taxonomy."""

    lost_reason = forms.ChoiceField(choices=[], label="Lost reason")
    field_order = ["lost_reason", "closed_on"]

    def __init__(self, *args, reasons=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lost_reason"].choices = [("", "Choose a reason")] + [(r.code, r.label) for r in reasons]
