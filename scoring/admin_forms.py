"""Admin forms of scoring: the rule and band inline forms and form sets, the model form, their widgets."""
from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError
from django.forms.formsets import DELETION_FIELD_NAME
from django.forms.models import BaseInlineFormSet

from .engine import FIELDS
from .models import Operator, ScoreBand, ScoringModel, ScoringRule
from .validation import NO_VALUE_OPERATORS, bands_errors

ATTRIBUTE_CHOICE = "attributes"
SIGNAL_TYPES_DATALIST_ID = "scoring-signal-types"


class RuleFieldWidget(forms.MultiWidget):
    """A select of the lead fields a rule can read, and a box for the key of a custom form field.

    Posts `<name>_0` (the choice) and `<name>_1` (the key); the value is `job_title` or
    `attributes.<key>`. A plain `<name>` is accepted too, so scripts may post the stored form.
    """

    def __init__(self, attrs=None):
        choices = [("", "---------")]
        choices += [(name, name.replace("_", " ").capitalize()) for name in FIELDS]
        choices += [(ATTRIBUTE_CHOICE, "Custom form field (attributes.…) →")]
        super().__init__(
            [forms.Select(choices=choices), forms.TextInput(attrs={"size": 10, "placeholder": "custom field key"})],
            attrs,
        )

    def decompress(self, value):
        if not value:
            return ["", ""]
        if value in FIELDS:
            return [value, ""]
        if value.startswith(f"{ATTRIBUTE_CHOICE}."):
            return [ATTRIBUTE_CHOICE, value.split(".", 1)[1]]
        return ["", value]  # an unknown stored value stays visible (and is refused on save)

    def value_from_datadict(self, data, files, name):
        if name in data and f"{name}_0" not in data:
            return data.get(name)
        choice, key = super().value_from_datadict(data, files, name)
        choice, key = (choice or "").strip(), (key or "").strip()
        if choice == ATTRIBUTE_CHOICE:
            return f"{ATTRIBUTE_CHOICE}.{key}"
        return choice or key

    def value_omitted_from_data(self, data, files, name):
        return name not in data and super().value_omitted_from_data(data, files, name)


class ValueParts(dict):
    """What the per-operator value inputs posted: {"text", "items", "min", "max"} (inputs the editor
    disabled for the chosen operator are simply missing). Turned into the stored value by the form, which
    knows the operator."""

    def normalized(self) -> tuple:
        items = tuple(line.strip() for line in str(self.get("items") or "").splitlines() if line.strip())
        return (str(self.get("text") or "").strip(), items, str(self.get("min") or "").strip(),
                str(self.get("max") or "").strip())


VALUE_PARTS = ("text", "items", "min", "max")


def _parts_of(value) -> ValueParts:
    """The inputs showing a stored value: text, a list (one per line) or a range's bounds."""
    if isinstance(value, ValueParts):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return ValueParts(text=value)
    if isinstance(value, str):
        return ValueParts(text=value)
    if isinstance(value, list):
        return ValueParts(items="\n".join(str(v) for v in value))
    if isinstance(value, dict):
        return ValueParts({k: "" if value.get(k) is None else str(value[k]) for k in ("min", "max")})
    return ValueParts() if value is None else ValueParts(text=str(value))


class RuleValueWidget(forms.MultiWidget):
    """A rule's value as the operator needs it: a text box (equals, contains, regular expression), a list
    with one entry per line (is one of, any of these words), or a minimum and a maximum (range); nothing
    for the operators that take no value. `static/js/scoring_rule_editor.js` shows the inputs of the
    chosen operator only; without it every input shows and the operator decides which one counts.

    Posts `<name>_text`, `<name>_items`, `<name>_min` and `<name>_max`. A plain `<name>` (the stored JSON
    or plain text) is accepted too, so scripts may post the stored form."""

    template_name = "admin/scoring/widgets/rule_value.html"

    def __init__(self, attrs=None):
        super().__init__({
            "text": forms.TextInput(attrs={"size": 28, "placeholder": "text, e.g. software",
                                           "data-value-part": "text", "aria-label": "Text"}),
            "items": forms.Textarea(attrs={"rows": 3, "cols": 28, "placeholder": "one entry per line",
                                           "data-value-part": "items", "aria-label": "List, one entry per line"}),
            "min": forms.NumberInput(attrs={"step": "any", "class": "num-m", "placeholder": "min",
                                            "data-value-part": "min", "aria-label": "Minimum"}),
            "max": forms.NumberInput(attrs={"step": "any", "class": "num-m", "placeholder": "max",
                                            "data-value-part": "max", "aria-label": "Maximum"}),
        }, attrs)

    def decompress(self, value):
        parts = _parts_of(value)
        return [parts.get(key, "") for key in VALUE_PARTS]

    def value_from_datadict(self, data, files, name):
        posted = {key: data.get(f"{name}_{key}") for key in VALUE_PARTS if f"{name}_{key}" in data}
        if not posted:
            return data.get(name)
        return ValueParts({key: value or "" for key, value in posted.items()})

    def value_omitted_from_data(self, data, files, name):
        return name not in data and all(f"{name}_{key}" not in data for key in VALUE_PARTS)


class RuleValueField(forms.Field):
    """A rule's value: the per-operator inputs (made into the stored value by `ScoringRuleForm.clean`), or
    a posted plain `value`: JSON for lists and ranges, anything that is not JSON taken as plain text, so
    `software` or a regular expression like `\\.edu$` can be sent without JSON quoting."""

    widget = RuleValueWidget

    def __init__(self, *, encoder=None, decoder=None, **kwargs):  # the model's JSONField passes these
        super().__init__(**kwargs)

    def to_python(self, value):
        if isinstance(value, ValueParts) or value is None:
            return value
        value = str(value).strip()
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            return value

    def bound_data(self, data, initial):
        """A re-shown form keeps what was posted, in the per-operator inputs."""
        if data is None or isinstance(data, ValueParts):
            return data
        return _parts_of(self.to_python(data))

    def prepare_value(self, value):
        if isinstance(value, ValueParts) or value is None:
            return value if value is not None else ""
        return json.dumps(value)

    def has_changed(self, initial, data):
        if self.disabled:
            return False
        return _parts_of(self.prepare_value(initial)).normalized() != _parts_of(data).normalized()


def _number(text: str):
    value = float(text)
    return int(value) if value.is_integer() else value


def value_from_parts(parts: ValueParts, operator: str) -> tuple[object, str | None]:
    """(stored value, error) of the inputs for `operator`; the stored JSON shape is unchanged."""
    if operator in NO_VALUE_OPERATORS:
        return None, None
    if operator in {Operator.IN_LIST, Operator.KEYWORDS}:
        return list(parts.normalized()[1]), None  # an empty "is one of" matches nothing (seed 002 ships one)
    if operator == Operator.RANGE:
        bounds = {}
        for key in ("min", "max"):
            text = str(parts.get(key) or "").strip()
            if text:
                try:
                    bounds[key] = _number(text)
                except ValueError:
                    return None, f"The {'minimum' if key == 'min' else 'maximum'} must be a number."
        if not bounds:
            return None, "Give a minimum, a maximum or both."
        return bounds, None
    text = str(parts.get("text") or "")
    return (text if operator == Operator.REGEX else text.strip()), None


class ScoringRuleForm(forms.ModelForm):
    class Meta:
        model = ScoringRule
        fields = ["position", "name", "category", "field", "operator", "value", "signal_type", "points", "cap",
                  "once_per_days", "exclusive_group", "disqualifies", "is_active"]
        field_classes = {"value": RuleValueField}
        widgets = {
            "position": forms.NumberInput(attrs={"class": "num-xs"}),
            "name": forms.TextInput(attrs={"size": 24}),
            "field": RuleFieldWidget,
            "signal_type": forms.TextInput(attrs={"size": 16, "list": SIGNAL_TYPES_DATALIST_ID}),
            "points": forms.NumberInput(attrs={"class": "num-s"}),
            "cap": forms.NumberInput(attrs={"class": "num-s"}),
            "once_per_days": forms.NumberInput(attrs={"class": "num-s"}),
            "exclusive_group": forms.TextInput(attrs={"size": 8}),
        }
        error_messages = {
            "points": {"invalid": "Points must be a whole number.",
                       "required": "Give the points (a whole number; negative subtracts)."},
            "cap": {"invalid": "A cap must be a whole number.", "min_value": "A cap cannot be below zero."},
            "once_per_days": {"invalid": "Give a whole number of days.",
                              "min_value": "A period cannot be below zero days."},
        }
        help_texts = {"field": "A lead field, or a custom form field: choose the last entry and type its key.",
                      "value": "What the operator compares with: a text, a list (one entry per line), or a "
                               "minimum and/or maximum. Operators like “is true” take none."}

    class Media:
        js = ("js/scoring_rule_editor.js",)
        css = {"all": ("css/scoring_rule_editor.css",)}

    def clean(self):
        data = super().clean()
        value = data.get("value")
        if isinstance(value, ValueParts):
            operator = data.get("operator")
            if operator is None:  # the operator has its own error already; nothing to convert with
                data["value"] = None
                return data
            data["value"], error = value_from_parts(value, operator)
            if error:
                self.add_error("value", error)
        return data


class LoadedRowField(forms.ModelChoiceField):
    """The hidden id of an existing inline row, resolved from the rows the form set loaded already."""

    def __init__(self, *, rows: dict, **kwargs):
        self.rows = rows
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        row = self.rows.get(str(value))
        if row is None:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return row


class LoadedRowsFormSet(BaseInlineFormSet):
    """An inline form set whose posted row ids cost one query for the whole set, not one per row."""

    def add_fields(self, form, index):
        super().add_fields(form, index)
        name = self.model._meta.pk.name
        current = form.fields.get(name)
        if isinstance(current, forms.ModelChoiceField):
            if not hasattr(self, "_loaded_rows"):
                self._loaded_rows = {str(row.pk): row for row in self.get_queryset()}
            form.fields[name] = LoadedRowField(rows=self._loaded_rows, queryset=current.queryset,
                                               initial=current.initial, required=False, widget=current.widget)


class ScoringRuleFormSet(LoadedRowsFormSet):
    """Validates every rule against the tenant's signal type catalog, read once for the whole set."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from leads.signal_catalog import signal_type_names

        self.signal_types = signal_type_names(tenant=self.instance.tenant_id) if self.instance.tenant_id else None

    def add_fields(self, form, index):
        super().add_fields(form, index)
        if getattr(self, "signal_types", None) is not None:
            form.instance._signal_types = self.signal_types


class ScoreBandForm(forms.ModelForm):
    class Meta:
        model = ScoreBand
        fields = ["key", "name", "min_score", "max_score", "action", "auto_mql"]
        widgets = {
            "key": forms.TextInput(attrs={"size": 8}),
            "name": forms.TextInput(attrs={"size": 12}),
            "min_score": forms.NumberInput(attrs={"class": "num-s"}),
            "max_score": forms.NumberInput(attrs={"class": "num-s"}),
            "action": forms.TextInput(attrs={"size": 36}),
        }
        error_messages = {
            "min_score": {"invalid": "Give a whole score from 0 to 100.", "min_value": "Scores start at 0."},
            "max_score": {"invalid": "Give a whole score from 0 to 100.", "min_value": "Scores start at 0."},
        }


class ScoreBandFormSet(LoadedRowsFormSet):
    """The bands left after this save must cover 0–100 with no gap, no overlap and unique keys."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return  # each form's own messages first; the set is checked once they are fixed
        bands = []
        for form in self.forms:
            if self.can_delete and form.cleaned_data.get(DELETION_FIELD_NAME):
                continue
            if form.instance._state.adding and not form.has_changed():
                continue  # an untouched blank row
            bands.append(form.instance)
        problems = bands_errors(bands)
        if problems:
            raise ValidationError(problems)


class ScoringModelForm(forms.ModelForm):
    """The thresholds of a version must be in a sensible order."""

    class Meta:
        model = ScoringModel
        # The admin picks the fields; foreign keys are left out here because building their default
        # choices would need a tenant in context at import time.
        fields = ["name", "notes", "hot_threshold", "cold_threshold", "archive_after_days", "engagement_window_days",
                  "fit_high_min", "fit_medium_min", "engagement_ready_min", "engagement_some_min",
                  "account_engaged_min", "account_others_percent", "account_breadth_points", "account_breadth_cap",
                  "predictive_blend", "predictive_min_closed", "predictive_min_won"]

    def clean(self):
        data = super().clean()
        if data.get("predictive_blend") is not None and data["predictive_blend"] > 100:
            self.add_error("predictive_blend", "A blend runs from 0 (off) to 100 percent.")
        if data.get("account_engaged_min") is not None and data["account_engaged_min"] < 1:
            self.add_error("account_engaged_min", "A person counts as engaged from 1 engagement point at least.")
        if data.get("account_others_percent") is not None and data["account_others_percent"] > 100:
            self.add_error("account_others_percent", "A share runs from 0 to 100 percent.")
        pairs = [
            ("cold_threshold", "hot_threshold", "The cold threshold must be below the hot threshold."),
            ("fit_medium_min", "fit_high_min", "Medium fit must start below high fit."),
            ("engagement_some_min", "engagement_ready_min", "'Some interest' must start below 'ready now'."),
        ]
        for low, high, message in pairs:
            if data.get(low) is not None and data.get(high) is not None and data[low] >= data[high]:
                self.add_error(high, message)
        for name in ("hot_threshold", "cold_threshold"):
            if data.get(name) is not None and data[name] > 100:
                self.add_error(name, "Scores run from 0 to 100.")
        return data


class ScoringModelAddForm(forms.ModelForm):
    """Adding a model means starting a draft: a copy of the version it is based on."""

    class Meta:
        model = ScoringModel
        fields = ["name", "notes"]  # + based_on (and tenant for platform operators), added by the admin
        labels = {"based_on": "Copy rules and bands from"}
        help_texts = {"based_on": "Usually the published version. Leave empty to start with no rules."}

    def clean(self):
        data = super().clean()
        tenant = data.get("tenant")
        based_on = data.get("based_on")
        if tenant is not None and based_on is not None and based_on.tenant_id != tenant.pk:
            self.add_error("based_on", "Choose a version of the same tenant.")
        return data
