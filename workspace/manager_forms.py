"""Forms of the manager pages: reassign one lead (its page, or one click on a row), a rep's availability,
bulk reassignment."""
from __future__ import annotations

from django import forms

from leadmgmt.api import aware_utc, is_ascii_digits
from leads.models import OPEN_STATUSES, LeadStatus

CHOOSE = ""  # the placeholder every "Reassign to" select starts on: not a valid choice
THROUGH_THE_RULES = "rules"
CHOOSE_LABEL = "Choose a rep…"


def _rep_choices(reps, blank_label: str | None) -> list[tuple[str, str]]:
    choices = [("", blank_label)] if blank_label is not None else []
    for membership in reps:
        label = membership.user.get_full_name() or membership.user.get_username()
        if membership.team is not None:
            label = f"{label} ({membership.team.name})"
        choices.append((str(membership.user_id), label))
    return choices


def _target_choices(reps, rules_label: str | None) -> list[tuple[str, str]]:
    """A "to whom" select: the placeholder first (refused when submitted), then the routing rules (if
    offered), then the reps."""
    rules = [(THROUGH_THE_RULES, rules_label)] if rules_label else []
    return [(CHOOSE, CHOOSE_LABEL), *rules, *_rep_choices(reps, None)]


class TargetField(forms.ChoiceField):
    """A rep's user id (int) or None for "through the routing rules"; the placeholder is a field error."""

    def __init__(self, **kwargs):
        kwargs.setdefault("error_messages", {"required": "Choose a rep, or the routing rules."})
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        return None if value == THROUGH_THE_RULES else int(value)


class QueueFilterForm(forms.Form):
    """Team-queue filters; an unknown rep or status is ignored rather than an error page."""

    rep = forms.ChoiceField(required=False, label="Rep")
    status = forms.ChoiceField(required=False, label="Status",
                               choices=[("", "Any open status")] + [(s, LeadStatus(s).label) for s in OPEN_STATUSES])

    def __init__(self, *args, reps=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rep"].choices = _rep_choices(reps, "Every rep")

    def value(self, name: str) -> str:
        return self.cleaned_data.get(name, "") if self.is_valid() else ""


class _LeadMoveForm(forms.Form):
    """A lead to a named rep (`to_user`: a user id) or through the rules ("rules"); the select starts on
    "Choose a rep…", which is refused; `reps` are the reps who can take the lead now. `expected_owner_id` is the owner the
    manager saw, so a lead that changed hands meanwhile is refused; `next` is where to go back to."""

    to_user = TargetField(label="Assign to")
    expected_owner_id = forms.CharField(required=False, widget=forms.HiddenInput)
    next = forms.CharField(required=False, widget=forms.HiddenInput)
    rules_label = "Route again through the rules"

    def __init__(self, *args, reps=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_user"].choices = _target_choices(reps, self.rules_label)

    def clean_expected_owner_id(self):
        value = (self.cleaned_data.get("expected_owner_id") or "").strip()
        if value and not is_ascii_digits(value):
            raise forms.ValidationError("Reload the page and try again.")
        return int(value) if value else None


class ReassignForm(_LeadMoveForm):
    """The reassign page: one lead to a rep of the scope or through the rules, with a reason."""

    reason = forms.CharField(max_length=500, required=False, label="Reason",
                             widget=forms.TextInput(attrs={"placeholder": "Why (kept in the history)"}))
    field_order = ["to_user", "reason"]

    def __init__(self, *args, default_reason: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.default_reason = default_reason

    def clean_reason(self):
        return (self.cleaned_data.get("reason") or "").strip() or self.default_reason


# The manager lists with a one-click reassign on each row, and the reason each writes into the history.
ROW_LISTS = {
    "queue": "Reassigned from the team queue",
    "unassigned": "Assigned from Unassigned",
    "escalations": "Reassigned from Escalations (SLA breached)",
    "aging": "Reassigned from Aging",
    "hot": "Reassigned from the Hot list",
}


class RowReassignForm(_LeadMoveForm):
    """The "Reassign to [rep] [Go]" control of a row on a manager list: the choices are the reps the
    manager may hand a lead to now (available members of their teams; admins: the whole tenant).
    `row` names the list, which decides the row sent back and the reason kept in the history."""

    row = forms.ChoiceField(choices=[(name, name) for name in ROW_LISTS], widget=forms.HiddenInput)

    def row_name(self) -> str:
        """The list the row belongs to, even when the form is invalid (the team queue if unknown)."""
        posted = self.data.get("row") if self.is_bound else None
        return posted if posted in ROW_LISTS else "queue"

    def reason(self) -> str:
        row = self.row_name()
        if self.cleaned_data.get("to_user") is not None:
            return ROW_LISTS[row]
        page = {"queue": "the team queue", "hot": "the Hot list"}.get(row, row.capitalize())
        return f"Routed again from {page}"


class AvailabilityForm(forms.Form):
    """Available flag and an out-of-office range (empty dates clear it), in the tenant's local time."""

    is_available = forms.BooleanField(required=False, label="Available for new leads")
    unavailable_from = forms.DateTimeField(required=False, label="Out of office from",
                                           widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                      format="%Y-%m-%dT%H:%M"))
    unavailable_until = forms.DateTimeField(required=False, label="Out of office until",
                                            widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                       format="%Y-%m-%dT%H:%M"))

    def clean_unavailable_from(self):
        return aware_utc(self.cleaned_data.get("unavailable_from"))  # PostgreSQL refuses offsets past ±15:59

    def clean_unavailable_until(self):
        return aware_utc(self.cleaned_data.get("unavailable_until"))

    def clean(self):
        data = super().clean()
        start, end = data.get("unavailable_from"), data.get("unavailable_until")
        if start and end and end <= start:
            self.add_error("unavailable_until", "The out-of-office range must end after it starts.")
        return data


class QuickAvailabilityForm(forms.Form):
    """The one-click toggle on the reps page: out of office now, or back now."""

    out_of_office = forms.TypedChoiceField(choices=[("1", "out of office"), ("0", "available")],
                                           coerce=lambda v: v == "1")


class BulkReassignForm(forms.Form):
    """Every open lead of one rep of the scope to another rep who can take leads now, or through the rules.
    `confirm` and `token` come back from the preview: without them the view only previews the move."""

    from_user = forms.ChoiceField(label="Move the open leads of",
                                  error_messages={"required": "Choose the rep whose leads move."})
    to_user = TargetField(label="To")
    reason = forms.CharField(max_length=500, label="Reason",
                             error_messages={"required": "Give a reason for the reassignment (kept in the history)."},
                             widget=forms.TextInput(attrs={"placeholder": "e.g. left the company"}))
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)
    token = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def __init__(self, *args, reps=(), targets=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from_user"].choices = _rep_choices(reps, CHOOSE_LABEL)
        self.fields["to_user"].choices = _target_choices(reps if targets is None else targets,
                                                         "Through the routing rules")

    def clean_from_user(self):
        return int(self.cleaned_data["from_user"])

    def clean(self):
        data = super().clean()
        if data.get("from_user") is not None and data.get("to_user") is not None and data["from_user"] == data["to_user"]:
            self.add_error("to_user", "Pick someone other than the rep whose leads are moving.")
        return data
