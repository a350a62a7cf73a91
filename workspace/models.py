"""CSV imports: the job (file, detection, mapping, state, counts, progress), its rows that were refused, the
leads it created or merged (what an undo needs), and the column mappings each tenant has used; what lead sources
cost per month (`SourceCost`, for the Source ROI), the tenant's funnel plan (`FunnelPlan`) and the feedback-loop
report's settings (`FeedbackSettings`)."""
from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from leadmgmt.tenancy.managers import TenantOwned


class ImportState(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    MAPPED = "mapped", "Mapped"
    PREVIEWING = "previewing", "Dry run in progress"
    PREVIEWED = "previewed", "Previewed"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"
    UNDONE = "undone", "Undone"


class ImportJob(TenantOwned):
    """One CSV file on its way in: uploaded → mapped → (previewing →) previewed → running → finished (or failed),
    then perhaps undone. Every step's state is here, so a page (or a reload of it) can drive and show it."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   db_index=False, related_name="+")
    created_by_name = models.CharField(max_length=200, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    content = models.BinaryField(help_text="The file as uploaded.")
    file_size = models.PositiveBigIntegerField()
    file_sha256 = models.CharField(max_length=64)
    encoding = models.CharField(max_length=16)
    delimiter = models.CharField(max_length=1)
    has_header = models.BooleanField(default=True)
    headers = models.JSONField(default=list, help_text="Column names (from the header row, or 'Column 1' …).")
    row_count = models.PositiveIntegerField(default=0, help_text="Data rows (the header and blank lines not counted).")
    # One target per column ("" = ignored): a Lead field, "attributes.<key>", "owner_email", "consent_at" …
    mapping = models.JSONField(default=list, blank=True)
    mapping_remembered = models.BooleanField(default=False, help_text="The suggestion is the tenant's last mapping "
                                             "of files with these columns.")
    state = models.CharField(max_length=16, choices=ImportState.choices, default=ImportState.UPLOADED)
    # The dry run's answer: counts and the first rows of each outcome with their reasons.
    preview = models.JSONField(null=True, blank=True)
    created = models.PositiveIntegerField(default=0)
    merged = models.PositiveIntegerField(default=0)
    possible_duplicates = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "created_at"], name="importjob_tenant_created")]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.file_name})"


class ImportRowPhase(models.TextChoices):
    PREVIEW = "preview", "Dry run"
    RUN = "run", "Run"


class ImportRowError(TenantOwned):
    """A refused row of an import's dry run or run: its line in the file, the field messages, the row as sent."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, db_index=False, related_name="row_errors")
    phase = models.CharField(max_length=8, choices=ImportRowPhase.choices)
    line = models.PositiveIntegerField()
    errors = models.JSONField(default=dict)
    raw = models.JSONField(default=list)

    class Meta:
        ordering = ["line"]
        constraints = [models.UniqueConstraint(fields=["tenant", "job", "phase", "line"],
                                               name="importrowerror_unique_line")]


class ImportLead(TenantOwned):
    """A lead an import created or merged into, with the values its merge filled as they were before: undo
    deletes the created ones and puts the before-values back on the merged ones."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, db_index=False, related_name="leads")
    lead_id = models.UUIDField()
    created = models.BooleanField()
    before = models.JSONField(default=dict, blank=True, help_text="{field: value before the merge filled it}.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "job", "lead_id"], name="importlead_unique_lead")]


class ImportMapping(TenantOwned):
    """The mapping a tenant last used for files with these columns (keyed by the normalised header list)."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    header_key = models.CharField(max_length=64, help_text="sha256 of the normalised header names.")
    headers = models.JSONField(default=list)
    mapping = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "header_key"], name="importmapping_unique_headers")]




class SourceCost(TenantOwned):
    """What a lead source (or one campaign of it) cost in a month: entered in the admin or sent to
    `POST /api/v1/costs/`, upserted by (month, source, campaign). A blank campaign is the source's cost not
    attributed to a campaign. The dashboards' Source ROI divides it by the leads, MQLs, SQLs and won deals."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    month = models.DateField(help_text="The first day of the month the money was spent in.")
    source = models.CharField(max_length=64, help_text="As leads carry it (Lead.source), e.g. paid_search.")
    campaign = models.CharField(max_length=200, blank=True, default="",
                                help_text="Blank: the whole source (spend not attributed to one campaign).")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. EUR.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-month", "source", "campaign"]
        constraints = [
            # Also the tenant-led index of "a tenant's costs by month".
            models.UniqueConstraint(fields=["tenant", "month", "source", "campaign"], name="sourcecost_unique_key",
                                    violation_error_message="This month already has a cost for this source and "
                                                            "campaign."),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="sourcecost_amount_not_negative",
                                   violation_error_message="The amount cannot be negative."),
            models.CheckConstraint(condition=models.Q(month__day=1), name="sourcecost_month_first_day",
                                   violation_error_message="Give the month as its first day."),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.source}{' / ' + self.campaign if self.campaign else ''}"


class PlanPeriod(models.TextChoices):
    MONTH = "month", "Per month"
    QUARTER = "quarter", "Per quarter"


class FunnelPlan(TenantOwned):
    """The tenant's funnel plan (seed 001, step 1): a revenue target per month or quarter, the average contract value
    and the stage rates it expects (or the ones measured over its last months); the plan page works backwards
    from it to the leads, MQLs, SALs, opportunities and won deals needed per month. One per tenant."""

    tenant = models.OneToOneField("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    revenue_target = models.DecimalField(max_digits=14, decimal_places=2)
    target_period = models.CharField(max_length=8, choices=PlanPeriod.choices, default=PlanPeriod.MONTH)
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. EUR.")
    average_contract_value = models.DecimalField(max_digits=14, decimal_places=2)
    lead_to_mql = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.15"))
    mql_to_sal = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.5"))
    sal_to_opportunity = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.4"))
    opportunity_to_won = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.25"))
    use_measured_rates = models.BooleanField(default=False, help_text="Work backwards with the rates measured over "
                                             "the last `measured_months` instead of the ones entered.")
    measured_months = models.PositiveSmallIntegerField(default=6)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(revenue_target__gt=0), name="funnelplan_target_positive",
                                   violation_error_message="The revenue target must be more than 0."),
            models.CheckConstraint(condition=models.Q(average_contract_value__gt=0), name="funnelplan_acv_positive",
                                   violation_error_message="The average contract value must be more than 0."),
            *[models.CheckConstraint(condition=models.Q(**{f"{rate}__gt": 0, f"{rate}__lte": 1}),
                                     name=f"funnelplan_{rate}_rate", violation_error_message="A rate is in (0, 1].")
              for rate in ("lead_to_mql", "mql_to_sal", "sal_to_opportunity", "opportunity_to_won")],
            models.CheckConstraint(condition=models.Q(measured_months__gte=1, measured_months__lte=24),
                                   name="funnelplan_measured_months",
                                   violation_error_message="Measure over 1 to 24 months."),
        ]

    def __str__(self) -> str:
        return f"Funnel plan: {self.revenue_target} {self.currency} {self.get_target_period_display().lower()}"


class FeedbackSettings(TenantOwned):
    """The tenant's settings of the feedback-loop report (`workspace.feedback_report`): the MQL acceptance rate
    marketing ops aim for, from which the report recommends the MQL threshold. No row: the defaults."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    mql_acceptance_target = models.PositiveSmallIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Percent of MQLs sales should accept: the report recommends the lowest score threshold whose "
                  "historical acceptance reaches it.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "feedback report settings"
        verbose_name_plural = "feedback report settings"
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="feedbacksettings_one_per_tenant",
                                    violation_error_message="This workspace already has feedback report settings."),
            models.CheckConstraint(condition=models.Q(mql_acceptance_target__gte=1, mql_acceptance_target__lte=100),
                                   name="feedbacksettings_target_percent",
                                   violation_error_message="The target is a percentage from 1 to 100."),
        ]

    def __str__(self) -> str:
        return f"MQL acceptance target {self.mql_acceptance_target} %"
