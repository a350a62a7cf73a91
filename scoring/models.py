"""Scoring models (versioned per tenant), their rules and bands, and each lead's score history."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadmgmt.tenancy.managers import TenantOwned


class ModelStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published (active)"
    RETIRED = "retired", "Retired"


class ScoringModel(TenantOwned):
    """One version of a tenant's definition of a good lead. Drafts are edited; exactly one
    version is published (active); published and retired versions are read-only forever."""

    name = models.CharField(max_length=100, default="Lead score")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=ModelStatus.choices, default=ModelStatus.DRAFT)
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
                                 related_name="+")
    notes = models.TextField(blank=True)
    engagement_window_days = models.PositiveIntegerField(
        default=90, help_text="Decay: a signal older than this many days no longer scores.")
    hot_threshold = models.PositiveSmallIntegerField(
        default=75, help_text="A lead at or above this score is flagged for the manager queue.")
    cold_threshold = models.PositiveSmallIntegerField(
        default=20, help_text="A lead at or below this score counts as cold.")
    archive_after_days = models.PositiveIntegerField(
        default=14, help_text="Archive leads that stay cold this many days (0: never).")
    fit_high_min = models.SmallIntegerField(default=40, help_text="Fit score from which fit is high.")
    fit_medium_min = models.SmallIntegerField(default=20, help_text="Fit score from which fit is medium.")
    engagement_ready_min = models.SmallIntegerField(
        default=30, help_text="Engagement score from which a lead shows buying intent now.")
    engagement_some_min = models.SmallIntegerField(
        default=1, help_text="Engagement score from which a lead shows some interest.")
    # Account score (scoring.account_scores): best fit + best engagement + a share of the other engaged
    # people's engagement + a bonus per engaged person beyond the first, clamped to 0–100.
    account_engaged_min = models.PositiveSmallIntegerField(
        default=10, help_text="Account score: a lead counts as an engaged person of its account from this "
                              "engagement score (at least 1).")
    account_others_percent = models.PositiveSmallIntegerField(
        default=50, help_text="Account score: percent of the other engaged people's engagement added to the "
                              "best one's (0–100).")
    account_breadth_points = models.PositiveSmallIntegerField(
        default=10, help_text="Account score: points for each engaged person beyond the first.")
    account_breadth_cap = models.PositiveSmallIntegerField(
        default=30, help_text="Account score: most points the breadth bonus gives.")
    # The learned model (scoring.predictive): how much of the composite score the predictive score takes, and
    # how much closed history training needs. `predictive_model` names the tenant's current learned model, so
    # compiling this version knows without a query whether there is one.
    predictive_blend = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)],
        help_text="Percent of the composite score taken from the learned model's predictive score (0: off, 100: "
                  "the predictive score alone).")
    predictive_min_closed = models.PositiveIntegerField(
        default=200, validators=[MinValueValidator(20)],
        help_text="The learned model trains only from this many closed leads (won, lost or disqualified) on.")
    predictive_min_won = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(5)],
        help_text="The learned model trains only from this many won leads on.")
    predictive_model = models.ForeignKey("PredictiveModel", null=True, blank=True, on_delete=models.SET_NULL,
                                         db_index=False, related_name="+", editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   db_index=False, related_name="+")
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     db_index=False, related_name="+")

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "version"], name="scoringmodel_unique_version",
                                    violation_error_message="This version number is already used."),
            models.UniqueConstraint(fields=["tenant"], condition=Q(status="published"),
                                    name="scoringmodel_one_published_per_tenant",
                                    violation_error_message="Only one version can be published at a time."),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.get_status_display()})"

    @property
    def is_editable(self) -> bool:
        return self.status == ModelStatus.DRAFT


class Category(models.TextChoices):
    DEMOGRAPHIC = "demographic", "Demographic"
    FIRMOGRAPHIC = "firmographic", "Firmographic"
    BEHAVIORAL = "behavioral", "Behavioral"
    ENGAGEMENT = "engagement", "Engagement"


FIT_CATEGORIES = (Category.DEMOGRAPHIC, Category.FIRMOGRAPHIC)
ENGAGEMENT_CATEGORIES = (Category.BEHAVIORAL, Category.ENGAGEMENT)


class Operator(models.TextChoices):
    EQUALS = "equals", "equals (case-insensitive)"
    IN_LIST = "in_list", "is one of (case-insensitive)"
    CONTAINS = "contains", "contains (case-insensitive)"
    KEYWORDS = "keywords", "contains any of these words"
    REGEX = "regex", "matches regular expression (case-insensitive)"
    RANGE = "range", "numeric range (min/max, inclusive)"
    IS_TRUE = "is_true", "is true"
    NOT_BLANK = "not_blank", "is not blank"
    SIGNAL = "signal", "behavioural signal received"


def new_rule_key() -> str:
    return uuid.uuid4().hex[:12]


class ScoringRule(TenantOwned):
    """One line of the scoring table: a condition on the lead (fit, negative) or a signal type
    (engagement), its points, and where those points roll up."""

    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="rules", db_index=False)
    # Stable across versions (a draft copies it): lead breakdowns are keyed by it, so publishing a
    # version only rewrites the leads whose points actually change.
    key = models.CharField(max_length=32, default=new_rule_key, editable=False)
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=100)
    category = models.CharField(max_length=16, choices=Category.choices)
    field = models.CharField(max_length=80, blank=True,
                             help_text="Lead field the condition reads (not used by signal rules).")
    operator = models.CharField(max_length=16, choices=Operator.choices)
    value = models.JSONField(default=None, null=True, blank=True,
                             help_text='equals/contains/regex: "text"; in_list/keywords: ["a", "b"]; '
                                       'range: {"min": 100, "max": 499}; is_true/not_blank/signal: empty.')
    signal_type = models.CharField(max_length=64, blank=True)
    points = models.IntegerField()
    cap = models.PositiveIntegerField(null=True, blank=True,
                                      help_text="Signal rules: most points this rule can give (absolute).")
    once_per_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Signal rules: count at most once per period of this many days.")
    exclusive_group = models.CharField(
        max_length=40, blank=True,
        help_text="Rules sharing a group are alternatives: only the first matching one (by position) scores.")
    disqualifies = models.BooleanField(
        default=False, help_text="A lead matching this rule is classed low-fit/reject whatever its score.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["tenant", "model", "position"], name="scoringrule_tenant_model")]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "model", "key"], name="scoringrule_unique_key",
                                    violation_error_message="Two rules of one version share a key."),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.points:+d})" if isinstance(self.points, int) else self.name

    def signal_type_catalog(self) -> frozenset[str]:
        """Signal type names this rule may use: the built-in catalog plus its tenant's own types.

        A form set validating many rules of one model sets `_signal_types` once for all of them.
        """
        cached = getattr(self, "_signal_types", None)
        if cached is None:
            from leads.signal_catalog import signal_type_names

            tenant_id = self.tenant_id or (self.model.tenant_id if self.model_id else None)
            cached = self._signal_types = signal_type_names(tenant=tenant_id)
        return cached

    def clean(self) -> None:
        from .validation import raise_if, rule_errors, rule_value_canonical

        self.value = rule_value_canonical(self)  # countries saved as ISO codes ("United States" → "US")
        errors = rule_errors(self, signal_types=self.signal_type_catalog())
        if self.points is None:
            errors.pop("points", None)  # clean_fields() already says the field is required
        raise_if(errors)


class ScoreBand(TenantOwned):
    """A score range (seed 002: Cold, Warm, MQL, SAL, SQL) and the action it implies."""

    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="bands", db_index=False)
    key = models.SlugField(max_length=20, db_index=False)
    name = models.CharField(max_length=40)
    min_score = models.PositiveSmallIntegerField()
    max_score = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=200, blank=True)
    auto_mql = models.BooleanField(
        default=False, help_text="Entering this band moves a raw lead to MQL (never further: SAL/SQL are human).")

    class Meta:
        ordering = ["min_score"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "model", "key"], name="scoreband_unique_key"),
            models.CheckConstraint(condition=Q(min_score__lte=models.F("max_score")) & Q(max_score__lte=100),
                                   name="scoreband_valid_range",
                                   violation_error_message="A band runs from min to max within 0–100."),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.min_score}–{self.max_score}"

    def clean(self) -> None:
        """Field-level messages for one band; the band set as a whole is checked by `bands_errors`."""
        errors: dict[str, list[str]] = {}
        if self.max_score is not None and self.max_score > 100:
            errors["max_score"] = ["Scores run from 0 to 100: a band ends at 100 at most."]
        if self.min_score is not None and self.max_score is not None and self.min_score > self.max_score:
            errors.setdefault("max_score", []).append(
                f"The band ends below where it starts ({self.min_score}).")
        if errors:
            raise ValidationError(errors)


class LeadClass(models.TextChoices):
    HIGH_FIT = "high_fit", "High-fit"
    NURTURE = "nurture", "Nurture (medium fit)"
    FUTURE_FIT = "future_fit", "Future-fit"
    LOW_FIT = "low_fit", "Low-fit / reject"


class ScoreCause(models.TextChoices):
    CAPTURE = "capture", "Lead captured"
    SIGNAL = "signal", "New signal"
    FIELD_EDIT = "field_edit", "Field edited"
    MODEL_PUBLISH = "model_publish", "Scoring model published"
    DECAY = "decay", "Decay / inactivity"
    MANUAL = "manual", "Manual re-score"
    PREDICTIVE = "predictive", "Learned model trained"


class ScoreChange(TenantOwned):
    """One change of a lead's score: old and new score and band, and why."""

    # Only composite indexes that start with tenant_id: a tenant_id index of its own would be one
    # more write per row on a full re-score (hundreds of thousands of rows) and serve no query.
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="score_changes", db_index=False)
    at = models.DateTimeField(default=timezone.now)
    old_score = models.IntegerField(null=True, blank=True)
    new_score = models.IntegerField()
    old_band = models.CharField(max_length=20, blank=True)
    new_band = models.CharField(max_length=20, blank=True)
    cause = models.CharField(max_length=16, choices=ScoreCause.choices)
    model = models.ForeignKey(ScoringModel, null=True, on_delete=models.SET_NULL, db_index=False, related_name="+")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["tenant", "lead", "at"], name="scorechange_tenant_lead")]


class ScoreEventKind(models.TextChoices):
    BAND_CHANGED = "band_changed", "Band changed"
    BECAME_HOT = "became_hot", "Became hot"


class ScoreEvent(TenantOwned):
    """Outbox of scoring events (band crossed, became hot) that routing, escalation and nurture consume."""

    # Only composite indexes that start with tenant_id: a tenant_id index of its own would be one
    # more write per row on a full re-score (hundreds of thousands of rows) and serve no query.
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=16, choices=ScoreEventKind.choices)
    from_band = models.CharField(max_length=20, blank=True)
    to_band = models.CharField(max_length=20, blank=True)
    score = models.IntegerField()
    at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["tenant", "lead", "at"], name="scoreevent_tenant_lead"),
            models.Index(fields=["tenant", "at"], condition=Q(dispatched_at__isnull=True),
                         name="scoreevent_tenant_pending"),
        ]


class PredictiveStatus(models.TextChoices):
    TRAINING = "training", "Training"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused (too little closed history)"


class PredictiveModel(TenantOwned):
    """One training of a tenant's learned model (a calibrated logistic regression over its closed leads): the row is
    also the training job. Stored as data: intercept, Platt calibration and `PredictiveFeature` weights, which the
    scoring SQL compiles; held-out metrics from a time-ordered split. One is current per tenant."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=PredictiveStatus.choices, default=PredictiveStatus.TRAINING)
    is_current = models.BooleanField(default=False)
    requested_at = models.DateTimeField(default=timezone.now)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     db_index=False, related_name="+")
    trained_at = models.DateTimeField(null=True, blank=True)
    closed_count = models.PositiveIntegerField(default=0, help_text="Closed leads it was trained on.")
    won_count = models.PositiveIntegerField(default=0, help_text="Won leads among them.")
    metrics = models.JSONField(default=dict, blank=True,
                               help_text="Held-out metrics (AUC, log-loss, Brier, calibration error), time-ordered split.")
    intercept = models.FloatField(default=0.0)
    platt_a = models.FloatField(default=1.0, help_text="Platt calibration: p = sigmoid(a * logit + b).")
    platt_b = models.FloatField(default=0.0)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "version"], name="predictivemodel_unique_version"),
            models.UniqueConstraint(fields=["tenant"], condition=Q(is_current=True),
                                    name="predictivemodel_one_current"),
            models.UniqueConstraint(fields=["tenant"], condition=Q(status="training"),
                                    name="predictivemodel_one_training"),
        ]

    def __str__(self) -> str:
        return f"Learned model v{self.version} ({self.get_status_display()})"


class FeatureKind(models.TextChoices):
    CATEGORY = "category", "Field value"
    NUMBER = "number", "Number (scaled)"
    FLAG = "flag", "Flag"
    SIGNAL = "signal", "Signal count (log)"


class PredictiveFeature(TenantOwned):
    """One weight of a learned model: a field value (one-hot), a scaled number, a flag or a signal count."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    model = models.ForeignKey(PredictiveModel, on_delete=models.CASCADE, related_name="features", db_index=False)
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=FeatureKind.choices)
    key = models.CharField(max_length=100, help_text="Field (industry, attributes.plan …) or signal type.")
    value = models.CharField(max_length=200, blank=True, help_text="Field value (lower case) or signal recency.")
    weight = models.FloatField()
    mean = models.FloatField(default=0.0)
    scale = models.FloatField(default=1.0)
    label = models.CharField(max_length=300)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["tenant", "model", "position"], name="predictivefeature_tenant_model")]

    def __str__(self) -> str:
        return f"{self.label} ({self.weight:+.3f})"
