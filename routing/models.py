"""Routing rules, territories and round-robin state; assignments; SLA policies, clocks, escalations; notifications."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadmgmt.tenancy.managers import TenantOwned


class Strategy(models.TextChoices):
    NAMED_ACCOUNT = "named_account", "Named account (the account's owner)"
    TERRITORY = "territory", "Territory (the matching territory's team)"
    ROUND_ROBIN = "round_robin", "Round-robin"
    WEIGHTED_ROUND_ROBIN = "weighted_round_robin", "Weighted round-robin"
    CAPACITY = "capacity", "Capacity (fewest open leads)"
    DIRECT = "direct", "Specific person"
    UNASSIGNED = "unassigned", "Unassigned queue"


class RoutingRule(TenantOwned):
    """One ordered routing rule: when every condition holds, its strategy picks an owner in its target.

    `conditions` is a list of {"field", "operator", "value"} (all must hold; an empty list matches
    every lead). Fields are lead fields (`routing.conditions.FIELDS`), `score`, `account_score`, `band`,
    `lead_class`, `source`, `campaign`, `product_interest` and `attributes.<key>`.
    The target is `team` (its available reps) and/or the rule's members (people, with weights).
    """

    position = models.PositiveIntegerField(help_text="Rules run in ascending position; the first that places the lead wins.")
    name = models.CharField(max_length=120)
    is_active = models.BooleanField(default=True)
    conditions = models.JSONField(default=list, blank=True)
    strategy = models.CharField(max_length=24, choices=Strategy.choices, default=Strategy.ROUND_ROBIN)
    team = models.ForeignKey("tenancy.Team", null=True, blank=True, on_delete=models.PROTECT, db_index=False,
                             related_name="+", help_text="Target team (its available reps).")
    roles = models.JSONField(default=list, blank=True,
                             help_text="Only members with these roles are eligible (e.g. [\"sdr\"]); empty means any rep role.")
    fall_through = models.BooleanField(
        default=True, help_text="When nobody in the target can take the lead, try the next rule instead of "
                                "leaving it unassigned.")
    is_fallback = models.BooleanField(default=False, help_text="Runs after every other rule, whatever its position.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "is_fallback", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "position"], name="routingrule_unique_position",
                                    violation_error_message="Another routing rule already has this position."),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"


class RoutingRuleMember(TenantOwned):
    """A person a rule routes to, with a weight for weighted round-robin (0 pauses them)."""

    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="members", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False, related_name="+")
    weight = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["rule_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "rule", "user"], name="routingrulemember_unique_user",
                                    violation_error_message="This person is already a member of the rule."),
        ]

    def __str__(self) -> str:
        return f"{self.user} ×{self.weight}"


class Territory(TenantOwned):
    """Countries/regions, industries and a company-size range that belong to one team."""

    name = models.CharField(max_length=120)
    position = models.PositiveIntegerField(default=0, help_text="The first matching territory wins.")
    countries = models.JSONField(default=list, blank=True, help_text="Countries (a name or an ISO code; saved as ISO 3166-1 alpha-2 codes); empty means "
                                           "any.")
    regions = models.JSONField(default=list, blank=True, help_text="Regions (e.g. EMEA, APAC, NA); empty means any.")
    industries = models.JSONField(default=list, blank=True, help_text="Industries; empty means any.")
    company_size_min = models.PositiveIntegerField(null=True, blank=True)
    company_size_max = models.PositiveIntegerField(null=True, blank=True)
    team = models.ForeignKey("tenancy.Team", on_delete=models.PROTECT, db_index=False, related_name="+")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["tenant_id", "position", "id"]
        verbose_name_plural = "territories"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="territory_unique_name",
                                    violation_error_message="A territory with this name already exists."),
        ]

    def __str__(self) -> str:
        return self.name


class RoundRobinSlot(TenantOwned):
    """A rep's place in one round-robin pool: how many leads the pool gave them, and when last.

    A pool is a rule (or a rule's territory team), keyed by `pool`. The next lead goes to the
    eligible rep with the smallest `(served + 1) / weight`, then the longest wait; a rep joining
    mid-rotation starts level with the least-served member, so they neither starve nor flood.
    Rows are locked through `routing.locks` so concurrent routers rotate strictly.
    """

    pool = models.CharField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False, related_name="+")
    served = models.BigIntegerField(default=0)
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    seq = models.BigIntegerField(default=0, help_text="Pool-wide order of the last pick (tie breaker).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "pool", "user"], name="roundrobinslot_unique_user"),
        ]


class Trigger(models.TextChoices):
    CAPTURE = "capture", "New lead captured"
    SCORE_BAND = "score_band", "Score crossed a band boundary"
    MANUAL_REROUTE = "manual_reroute", "Manual re-route"
    REASSIGNMENT = "reassignment", "Reassignment"
    BULK_REASSIGNMENT = "bulk_reassignment", "Bulk reassignment"
    SLA_ESCALATION = "sla_escalation", "SLA escalation"
    HANDOFF = "handoff", "SDR → AE handoff"
    RECYCLE = "recycle", "Recycled"
    NURTURE_READY = "nurture_ready", "Ready after nurture"


class Assignment(TenantOwned):
    """One change of a lead's owner (or its landing in Unassigned), with the rule, strategy and reason."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, db_index=False, related_name="assignments")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              db_index=False, related_name="+", help_text="Empty: the lead is in Unassigned.")
    previous_owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                       db_index=False, related_name="+")
    team = models.ForeignKey("tenancy.Team", null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
                             related_name="+")
    rule = models.ForeignKey(RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
                             related_name="+")
    rule_name = models.CharField(max_length=120, blank=True)
    strategy = models.CharField(max_length=24, choices=Strategy.choices, blank=True)
    trigger = models.CharField(max_length=24, choices=Trigger.choices)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="Why earlier rules did not place the lead.")
    actor_kind = models.CharField(max_length=16)
    actor_name = models.CharField(max_length=200)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   db_index=False, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "lead", "at"], name="assignment_tenant_lead"),
            models.Index(fields=["tenant", "owner", "at"], name="assignment_tenant_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id} → {self.owner or 'Unassigned'} ({self.get_trigger_display()})"


class SlaKind(models.TextChoices):
    FIRST_CONTACT = "first_contact", "First contact"
    ACCEPTANCE = "acceptance", "Acceptance (AE accepts the SQL)"


class SlaPolicy(TenantOwned):
    """How long the owner has to act on a lead, by source, band and stage; the first matching policy applies."""

    position = models.PositiveIntegerField()
    name = models.CharField(max_length=120)
    is_active = models.BooleanField(default=True)
    kind = models.CharField(max_length=16, choices=SlaKind.choices, default=SlaKind.FIRST_CONTACT)
    sources = models.JSONField(default=list, blank=True, help_text="Lead sources; empty means any.")
    bands = models.JSONField(default=list, blank=True, help_text="Score band keys; empty means any.")
    stages = models.JSONField(default=list, blank=True, help_text="Lead stages; empty means any.")
    minutes = models.PositiveIntegerField(help_text="Time allowed from assignment.")
    business_hours_only = models.BooleanField(
        default=False, help_text="Count only the tenant's business hours, in the tenant's timezone.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tenant_id", "position", "id"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "position"], name="slapolicy_unique_position",
                                    violation_error_message="Another SLA policy already has this position."),
            models.CheckConstraint(condition=Q(minutes__gt=0), name="slapolicy_minutes_positive",
                                   violation_error_message="An SLA needs a positive number of minutes."),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.minutes} min)"


class EscalationAction(models.TextChoices):
    ALERT_MANAGER = "alert_manager", "Alert the manager (in-app and email)"
    REASSIGN = "reassign", "Reassign to the next eligible rep"


class EscalationStep(TenantOwned):
    """A rung of a policy's escalation ladder, `after_minutes` past the SLA deadline."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="steps", db_index=False)
    level = models.PositiveSmallIntegerField(help_text="1 for the first rung, 2 for the next …")
    after_minutes = models.PositiveIntegerField(default=0, help_text="Minutes after the deadline (0: at breach).")
    action = models.CharField(max_length=16, choices=EscalationAction.choices)

    class Meta:
        ordering = ["policy_id", "level"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "policy", "level"], name="escalationstep_unique_level",
                                    violation_error_message="This policy already has a step at this level."),
        ]

    def __str__(self) -> str:
        return f"{self.level}: {self.get_action_display()} +{self.after_minutes} min"


class BusinessHours(TenantOwned):
    """Opening hours of one weekday (0 = Monday) in the tenant's timezone; days without a row are closed."""

    weekday = models.PositiveSmallIntegerField(choices=[(i, d) for i, d in enumerate(
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"])])
    opens_at = models.TimeField()
    closes_at = models.TimeField()

    class Meta:
        ordering = ["tenant_id", "weekday"]
        verbose_name_plural = "business hours"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "weekday"], name="businesshours_unique_day",
                                    violation_error_message="This weekday already has business hours."),
            models.CheckConstraint(condition=Q(opens_at__lt=models.F("closes_at")), name="businesshours_order",
                                   violation_error_message="Opening time must be before closing time."),
        ]


class SlaClock(TenantOwned):
    """The running (or stopped) SLA timer of one assignment; beat scans `next_action_at`."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, db_index=False, related_name="sla_clocks")
    assignment = models.ForeignKey(Assignment, null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
                                   related_name="+")
    policy = models.ForeignKey(SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
                               related_name="+")
    policy_name = models.CharField(max_length=120, blank=True)
    kind = models.CharField(max_length=16, choices=SlaKind.choices)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              db_index=False, related_name="+")
    started_at = models.DateTimeField()
    due_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=64, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    level = models.PositiveSmallIntegerField(default=0, help_text="Escalation steps already taken.")
    next_action_at = models.DateTimeField(null=True, blank=True,
                                          help_text="When the SLA Agent must look at this clock next (breach or next step).")

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "lead"], condition=Q(stopped_at__isnull=True),
                                    name="slaclock_one_running_per_lead",
                                    violation_error_message="This lead already has a running SLA clock."),
        ]
        indexes = [
            models.Index(fields=["tenant", "lead", "started_at"], name="slaclock_tenant_lead"),
            models.Index(fields=["tenant", "next_action_at"], condition=Q(stopped_at__isnull=True),
                         name="slaclock_tenant_due"),
        ]


class Escalation(TenantOwned):
    """One escalation step taken on one clock (unique per level: a step happens once per breach)."""

    clock = models.ForeignKey(SlaClock, on_delete=models.CASCADE, db_index=False, related_name="escalations")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, db_index=False, related_name="+")
    level = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=16, choices=EscalationAction.choices)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              db_index=False, related_name="+", help_text="The owner who breached.")
    target = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               db_index=False, related_name="+", help_text="Manager alerted, or the new owner.")
    note = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "clock", "level"], name="escalation_once_per_level"),
        ]
        indexes = [models.Index(fields=["tenant", "at"], name="escalation_tenant_at")]


class RoutingSettings(TenantOwned):
    """A tenant's aging, recycling and handoff knobs (one row per tenant, created on demand)."""

    aging_flag_hours = models.PositiveIntegerField(default=48, help_text="Untouched this long: flagged as aging.")
    aging_alert_hours = models.PositiveIntegerField(default=72, help_text="Untouched this long: the manager is alerted.")
    recycle_after_attempts = models.PositiveIntegerField(
        default=6, help_text="Contact attempts with no response before the lead is recycled to nurture (0: never).")
    default_team = models.ForeignKey("tenancy.Team", null=True, blank=True, on_delete=models.SET_NULL,
                                     db_index=False, related_name="+")

    class Meta:
        verbose_name = "routing settings"
        verbose_name_plural = "routing settings"
        constraints = [models.UniqueConstraint(fields=["tenant"], name="routingsettings_one_per_tenant")]


class Notification(TenantOwned):
    """An in-app message to one user (new lead, SLA alert, aging …); hot ones are also emailed."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False, related_name="+")
    kind = models.CharField(max_length=32)
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.CASCADE, db_index=False,
                             related_name="+")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    email_due = models.BooleanField(default=False)
    emailed_at = models.DateTimeField(null=True, blank=True)
    dedup_key = models.CharField(max_length=120, blank=True,
                                 help_text="Makes a re-run of the same automated step notify once.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user", "dedup_key"], condition=~Q(dedup_key=""),
                                    name="notification_dedup"),
        ]
        indexes = [
            models.Index(fields=["tenant", "user", "created_at"], name="notification_tenant_user"),
            models.Index(fields=["tenant", "created_at"], condition=Q(email_due=True, emailed_at__isnull=True),
                         name="notification_tenant_email_due"),
            # the top bar's unread count, on every page and every poll: only the unread rows
            models.Index(fields=["tenant", "user"], condition=Q(read_at__isnull=True), name="notification_unread"),
        ]


class RejectionReason(TenantOwned):
    """One entry of the tenant's rejection taxonomy (seed 001, mistake 4): no free-form rejections."""

    code = models.SlugField(max_length=48, db_index=False)
    label = models.CharField(max_length=120)
    nurture = models.BooleanField(default=False, help_text="Leads rejected for this reason go back to nurture ('not now').")
    is_active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["tenant_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="rejectionreason_unique_code",
                                    violation_error_message="This reason code already exists."),
        ]

    def __str__(self) -> str:
        return self.label
