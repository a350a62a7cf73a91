"""CSV imports: the job (file, detection, mapping, state, counts, progress), its rows that were refused, the
leads it created or merged (what an undo needs), and the column mappings each tenant has used; the feedback-loop
report's settings."""
from __future__ import annotations

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
