"""Forms of the Team page: invite a person, edit a member, accept an invitation (choose a password)."""
from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation

from leadmgmt.tenancy.models import Role


class _TeamChoiceMixin:
    """A team select of this tenant's teams only (blank: none, or the default team for reps)."""

    def _team_field(self, teams, empty_label: str) -> None:
        self.fields["team"] = forms.ModelChoiceField(
            queryset=teams, required=False, empty_label=empty_label,
            error_messages={"invalid_choice": "Choose a team of this workspace."})


class InviteForm(_TeamChoiceMixin, forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"}),
                             error_messages={"required": "Give the email address to send the invitation to."})
    role = forms.ChoiceField(choices=Role.choices, initial=Role.SDR)
    capacity = forms.IntegerField(
        required=False, min_value=0, help_text="Most open leads; empty means no cap.",
        error_messages={"min_value": "Capacity cannot be below zero.", "invalid": "Give a whole number."})

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self._team_field(teams, "Default team (SDRs and AEs)")
        self.order_fields(["email", "role", "team", "capacity"])


class MemberForm(_TeamChoiceMixin, forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    capacity = forms.IntegerField(
        required=False, min_value=0, help_text="Most open leads this person may hold; empty means no cap.",
        error_messages={"min_value": "Capacity cannot be below zero.", "invalid": "Give a whole number."})
    is_available = forms.BooleanField(required=False, label="Available for new leads",
                                      help_text="Routing skips people who are not available.")

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self._team_field(teams, "No team")
        self.order_fields(["role", "team", "capacity", "is_available"])


class AcceptInvitationForm(forms.Form):
    """A new person's name and password (Django's password validators, with their email as context)."""

    first_name = forms.CharField(max_length=150, required=False, widget=forms.TextInput(attrs={
        "autocomplete": "given-name"}))
    last_name = forms.CharField(max_length=150, required=False, widget=forms.TextInput(attrs={
        "autocomplete": "family-name"}))
    new_password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput(attrs={
        "autocomplete": "new-password"}))
    new_password2 = forms.CharField(label="Password again", strip=False, widget=forms.PasswordInput(attrs={
        "autocomplete": "new-password"}))

    def __init__(self, *args, user, **kwargs):
        self.user = user  # unsaved: the validators compare the password with the email and names
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = " ".join(password_validation.password_validators_help_texts())

    def clean(self):
        data = super().clean()
        one, two = data.get("new_password1"), data.get("new_password2")
        if one and two and one != two:
            self.add_error("new_password2", "The two passwords don't match.")
        elif one:
            self.user.first_name, self.user.last_name = data.get("first_name", ""), data.get("last_name", "")
            try:
                password_validation.validate_password(one, self.user)
            except forms.ValidationError as exc:
                self.add_error("new_password1", exc)
        return data
