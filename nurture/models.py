"""Nurture: sequences of timed emails that keep not-ready leads warm, and hand them back when ready.

A Sequence (per tenant, edited by marketing ops) has an audience, ordered Steps (delay, subject and
body templates with merge fields, an optional condition) and a readiness score. An Enrollment is
one lead's way through one sequence: its status, the position of the next step and when it is due
(a database column the Nurture Agent scans every minute). A Message is one email of one step to one
lead, written before it is sent: the unique (enrollment, step position) row is what makes sending
at most once. Suppression holds addresses that must never be mailed again (unsubscribed, hard
bounce, complaint, added by hand). NurtureSettings holds the tenant's sender, postal address, rate
limit, quiet hours and the bounce-callback secret.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadmgmt.tenancy.managers import TenantOwned


def bounce_secret_hash(raw: str) -> str:
    """What is stored of a bounce secret: its SHA-256 (hex). The secret is a random 32-byte token, so a
    fast hash is enough; the raw value is shown once when generated and never stored."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def is_bounce_secret_hash(value: str) -> bool:
    return bool(_HASH_RE.fullmatch(value or ""))


_HASH_RE = re.compile(r"[0-9a-f]{64}")


def _bounce_secret() -> str:
    """A fresh row's secret: the hash of a random token nobody is shown (generate one to use the callback)."""
    return bounce_secret_hash(secrets.token_urlsafe(32))


class NurtureSettings(TenantOwned):
    """The tenant's nurture set-up: one row per tenant (created with the tenant's defaults)."""

    from_name = models.CharField(max_length=100, blank=True, help_text="Sender name; the tenant's name when blank.")
    from_email = models.EmailField(blank=True, help_text="Sender address; the server default when blank.")
    reply_to = models.EmailField(blank=True, help_text="Replies go here (e.g. the marketing inbox).")
    postal_address = models.TextField(
        blank=True, help_text="Shown in every email's footer (anti-spam laws require it). Nothing is sent while blank.")
    max_per_minute = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="Most nurture emails this tenant sends per minute.")
    quiet_hours_start = models.TimeField(null=True, blank=True,
                                         help_text="No emails from this local time of the lead (e.g. 20:00)…")
    quiet_hours_end = models.TimeField(null=True, blank=True, help_text="…until this local time (e.g. 08:00).")
    working_pause_days = models.PositiveSmallIntegerField(
        default=14, validators=[MaxValueValidator(365)],
        help_text="A lead a rep contacted within this many days (or with an open opportunity) is not mailed: its "
                  "sequence pauses.")
    bounce_secret = models.CharField(max_length=64, default=_bounce_secret,
                                     help_text="SHA-256 of the secret your email provider sends with bounce callbacks.")
    updated_at = models.DateTimeField(auto_now=True)

    def bounce_secret_generate(self) -> str:
        """Replace the secret with a new random one (the caller saves); returns the raw value to show once."""
        raw = secrets.token_urlsafe(32)
        self.bounce_secret = bounce_secret_hash(raw)
        return raw

    def bounce_secret_matches(self, raw: str) -> bool:
        """Constant-time comparison of `raw`'s hash with the stored one."""
        return bool(self.bounce_secret) and hmac.compare_digest(bounce_secret_hash(raw), self.bounce_secret)

    class Meta:
        verbose_name = "nurture settings"
        verbose_name_plural = "nurture settings"
        constraints = [models.UniqueConstraint(fields=["tenant"], name="nurturesettings_one_per_tenant")]

    def __str__(self) -> str:
        return "Nurture settings"


class SequenceKind(models.TextChoices):
    NEW_LEAD = "new_lead", "New lead"
    MQL_NURTURE = "mql_nurture", "MQL nurture"
    RE_ENGAGEMENT = "re_engagement", "Re-engagement"
    POST_DEMO = "post_demo", "Post-demo"
    LOST_DEAL = "lost_deal", "Lost deal"
    OTHER = "other", "Other"


class SequenceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ARCHIVED = "archived", "Archived"


class Sequence(TenantOwned):
    """A nurture sequence: who it is for (audience), its steps, and when a lead is ready to leave it."""

    name = models.CharField(max_length=120)
    goal = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=20, choices=SequenceKind.choices, default=SequenceKind.OTHER,
                            help_text="A lead is in at most one active sequence of each kind.")
    status = models.CharField(max_length=10, choices=SequenceStatus.choices, default=SequenceStatus.DRAFT)
    auto_enroll = models.BooleanField(default=False, help_text="Enrol matching leads automatically.")
    priority = models.PositiveSmallIntegerField(
        default=100, help_text="When a lead matches several automatic sequences, the lowest number wins.")
    # Audience: an empty list means "any". A lead matches when it matches every non-empty list.
    audience_classes = ArrayField(models.CharField(max_length=16), default=list, blank=True,
                                  help_text="Lead classes, e.g. nurture, future_fit.")
    audience_bands = ArrayField(models.CharField(max_length=20), default=list, blank=True,
                                help_text="Score band keys, e.g. cold, warm.")
    audience_stages = ArrayField(models.CharField(max_length=16), default=list, blank=True,
                                 help_text="Lifecycle stages, e.g. raw, mql.")
    audience_statuses = ArrayField(models.CharField(max_length=16), default=list, blank=True,
                                   help_text="Lead statuses, e.g. new, recycled.")
    audience_sources = ArrayField(models.CharField(max_length=64), default=list, blank=True,
                                  help_text="Lead sources, e.g. webinar, content.")
    audience_rejection_reasons = ArrayField(models.CharField(max_length=48), default=list, blank=True,
                                            help_text="Codes of the reasons sales rejected the lead for, e.g. not_now.")
    audience_opportunity_lost = models.BooleanField(default=False,
                                                    help_text="Only leads whose opportunity was lost.")
    ready_score = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(100)],
        help_text="A lead whose score reaches this leaves the sequence and is routed to a rep (empty: never).")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="sequence_unique_name",
                                    violation_error_message="A sequence with this name already exists."),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="sequence_tenant_status")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Audience values known to the tenant, and an active sequence has steps (nurture.validation)."""
        from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

        from .validation import SIBLINGS_CHECKED, sequence_problems, sequence_steps

        steps = None if getattr(self, SIBLINGS_CHECKED, False) else sequence_steps(self)
        problems = sequence_problems(self, steps)
        if "steps" in problems:
            problems[NON_FIELD_ERRORS] = problems.pop("steps")
        if problems:
            raise ValidationError(problems)


class StepCondition(models.TextChoices):
    ALWAYS = "always", "Always send"
    OPENED_PREVIOUS = "opened_previous", "Previous email was opened"
    CLICKED_PREVIOUS = "clicked_previous", "Previous email was clicked"
    NOT_OPENED_PREVIOUS = "not_opened_previous", "Previous email was not opened"
    NOT_CLICKED_PREVIOUS = "not_clicked_previous", "Previous email was not clicked"
    SCORE_AT_LEAST = "score_at_least", "Score is at least N"


class WhenFalse(models.TextChoices):
    SKIP = "skip", "Skip to the next step"
    GOTO = "goto", "Go to a later step"
    EXIT = "exit", "End the sequence"


class Step(TenantOwned):
    """One email of a sequence, sent `delay` after the previous one (or after enrolment for the first)."""

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps", db_index=False)
    position = models.PositiveSmallIntegerField(help_text="Order in the sequence: 1, 2, 3…")
    delay_days = models.IntegerField(default=0, help_text="Days after the previous email (or the enrolment).")
    delay_hours = models.IntegerField(default=0, help_text="Plus this many hours.")
    subject = models.CharField(max_length=300, help_text="Merge fields: {{ first_name }}, {{ company }}…")
    body = models.TextField(help_text="Plain text; links are tracked; the footer with the unsubscribe link is added.")
    condition = models.CharField(max_length=24, choices=StepCondition.choices, default=StepCondition.ALWAYS)
    condition_score = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(100)],
                                                       help_text="N for “Score is at least N”.")
    when_false = models.CharField(max_length=8, choices=WhenFalse.choices, default=WhenFalse.SKIP,
                                  help_text="What happens when the condition does not hold.")
    goto_position = models.PositiveSmallIntegerField(null=True, blank=True,
                                                     help_text="The later step to go to (with “Go to a later step”).")

    class Meta:
        ordering = ["sequence_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "sequence", "position"], name="step_unique_position",
                                    violation_error_message="Two steps of a sequence cannot share a position."),
            models.CheckConstraint(condition=Q(delay_days__gte=0) & Q(delay_hours__gte=0), name="step_delay_not_negative",
                                   violation_error_message="A delay cannot be negative."),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.subject}"

    def clean(self) -> None:
        """Templates, delays and condition settings, and checks against the sequence's other steps (nurture.validation)."""
        from django.core.exceptions import ValidationError

        from .validation import SIBLINGS_CHECKED, step_problems

        positions = None
        if not getattr(self, SIBLINGS_CHECKED, False) and self.sequence_id is not None:
            tenant_id = self.tenant_id or self.sequence.tenant_id
            others = Step.objects.for_tenant(tenant_id).filter(sequence_id=self.sequence_id).exclude(pk=self.pk)
            positions = [*others.values_list("position", flat=True), self.position]
        problems = step_problems(self, positions=positions)
        if problems:
            raise ValidationError(problems)

    @property
    def delay(self):
        from datetime import timedelta

        return timedelta(days=self.delay_days, hours=self.delay_hours)


class EnrollmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    EXITED = "exited", "Exited"


LIVE_ENROLLMENT_STATUSES = (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)


class ExitReason(models.TextChoices):
    REPLIED = "replied", "Replied"
    MEETING_BOOKED = "meeting_booked", "Meeting booked"
    QUALIFIED = "qualified", "Qualified"
    CONVERTED = "converted", "Converted"
    READY = "ready", "Ready: score reached the sequence's threshold, routed to a rep"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Hard bounce"
    NO_CONSENT = "no_consent", "Marketing consent withdrawn"
    CLOSED = "closed", "Lead closed (disqualified, rejected or archived)"
    CONDITION = "condition", "A step's condition ended the sequence"
    MANUAL = "manual", "Stopped by hand"


class PauseReason(models.TextChoices):
    REP_WORKING = "rep_working", "A rep is working the lead"
    MANUAL = "manual", "Paused by hand"
    SEQUENCE_PAUSED = "sequence_paused", "The sequence is paused"


class Enrollment(TenantOwned):
    """One lead in one sequence: where it is, when its next email is due, and how it ended."""

    sequence = models.ForeignKey(Sequence, on_delete=models.PROTECT, related_name="enrollments", db_index=False)
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="enrollments", db_index=False)
    kind = models.CharField(max_length=20, choices=SequenceKind.choices)
    status = models.CharField(max_length=10, choices=EnrollmentStatus.choices, default=EnrollmentStatus.ACTIVE)
    automatic = models.BooleanField(default=True, help_text="Enrolled by the audience rules (else by a person).")
    enrolled_by = models.CharField(max_length=200, blank=True)
    enrolled_at = models.DateTimeField(default=timezone.now)
    next_position = models.PositiveSmallIntegerField(null=True, blank=True,
                                                     help_text="Position of the next step to consider.")
    next_due_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    messages_sent = models.PositiveIntegerField(default=0)
    paused_reason = models.CharField(max_length=20, choices=PauseReason.choices, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=20, choices=ExitReason.choices, blank=True)
    exit_note = models.CharField(max_length=300, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-enrolled_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "lead", "kind"], condition=Q(status__in=["active", "paused"]),
                                    name="enrollment_one_live_per_kind",
                                    violation_error_message="This lead is already in a sequence of this kind."),
        ]
        indexes = [
            models.Index(fields=["tenant", "next_due_at"], condition=Q(status="active"), name="enrollment_tenant_due"),
            models.Index(fields=["tenant", "lead"], name="enrollment_tenant_lead"),
            models.Index(fields=["tenant", "sequence", "status"], name="enrollment_tenant_sequence"),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id} in {self.sequence_id} ({self.status})"


class MessageStatus(models.TextChoices):
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    BOUNCED = "bounced", "Bounced"


class Message(TenantOwned):
    """One nurture email: written (status "sending") in the transaction that advances the enrolment,
    then handed to SMTP. Its id is the token of its open pixel, click links and unsubscribe link."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="messages", db_index=False)
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+", db_index=False)
    sequence = models.ForeignKey(Sequence, on_delete=models.PROTECT, related_name="+", db_index=False)
    step = models.ForeignKey(Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    step_position = models.PositiveSmallIntegerField()
    to_email = models.CharField(max_length=254)
    subject = models.CharField(max_length=998)
    body_text = models.TextField()
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.SENDING)
    claimed_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    smtp_message_id = models.CharField(max_length=300, blank=True)
    error = models.CharField(max_length=500, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    open_count = models.PositiveIntegerField(default=0)
    clicked_at = models.DateTimeField(null=True, blank=True)
    click_count = models.PositiveIntegerField(default=0)
    bounced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-claimed_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "enrollment", "step_position"], name="message_once_per_step",
                                    violation_error_message="This step was already sent to this lead."),
        ]
        indexes = [
            models.Index(fields=["tenant", "lead", "claimed_at"], name="message_tenant_lead"),
            models.Index(fields=["tenant", "claimed_at"], name="message_tenant_claimed"),
            models.Index(fields=["tenant", "claimed_at"], condition=Q(status="sending"), name="message_tenant_sending"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to_email}"


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    COMPLAINT = "complaint", "Spam complaint"
    MANUAL = "manual", "Added by hand"


class Suppression(TenantOwned):
    """An address the tenant must never send nurture email to again."""

    email = models.CharField(max_length=254, help_text="Lower-cased.")
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices, default=SuppressionReason.MANUAL)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "email"], name="suppression_unique_email",
                                    violation_error_message="This address is already suppressed."),
        ]

    def __str__(self) -> str:
        return self.email
