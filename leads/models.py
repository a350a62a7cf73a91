"""Accounts, leads and everything that happens to a lead: touches, signals, activities, stages."""
from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leadmgmt.tenancy.managers import TenantOwned


class LeadForm(TenantOwned):
    """A public capture form: its key is embedded in web pages that POST to the intake endpoint."""

    name = models.CharField(max_length=100)
    # Looked up before the tenant is known, so this unique index cannot start with tenant_id.
    key = models.CharField(max_length=40, unique=True, editable=False)
    default_source = models.CharField(max_length=64, default="web_form")
    allowed_origins = models.JSONField(
        default=list, blank=True,
        help_text='Origins allowed to post from a browser, e.g. ["https://www.example.com"]; '
        '["*"] allows any. Requests without an Origin header (server to server) are always allowed.',
    )
    success_url = models.URLField(blank=True, help_text="Where a plain HTML form post is redirected (303).")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"], name="leadform_unique_name_per_tenant",
                violation_error_message="A form with this name already exists.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.key:
            self.key = f"lf_{secrets.token_urlsafe(24)}"
        super().save(*args, **kwargs)

    def origin_allowed(self, origin: str | None) -> bool:
        if not origin:
            return True
        allowed = [o.rstrip("/").lower() for o in (self.allowed_origins or [])]
        return "*" in allowed or origin.rstrip("/").lower() in allowed


class Account(TenantOwned):
    """A company in the tenant's CRM data, keyed by its canonical domain (acme.com)."""

    domain = models.CharField(max_length=253)
    name = models.CharField(max_length=200, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # The account score and its parts: written by scoring (`scoring.account_scores`) from the account's leads'
    # fit and engagement scores whenever they are scored, never by hand. Null until its leads are scored.
    score = models.PositiveSmallIntegerField(
        null=True, blank=True, editable=False,
        help_text="0–100: best fit + best engagement + a share of the other engaged people's + a breadth bonus.")
    scored_leads = models.PositiveIntegerField(default=0, db_default=0, editable=False,
                                               help_text="Scored leads at the account (erased people left out).")
    engaged_leads = models.PositiveIntegerField(
        default=0, db_default=0, editable=False,
        help_text="Leads whose engagement score reaches the scoring model's 'engaged person' threshold.")
    fit_max = models.SmallIntegerField(null=True, blank=True, editable=False, help_text="Best fit score of its leads.")
    fit_avg = models.SmallIntegerField(null=True, blank=True, editable=False,
                                       help_text="Average fit score of its leads (rounded).")
    engagement_max = models.SmallIntegerField(null=True, blank=True, editable=False,
                                              help_text="Best engagement score of its leads.")
    engagement_sum = models.IntegerField(default=0, db_default=0, editable=False,
                                         help_text="Sum of the engaged leads' engagement scores.")
    others_points = models.SmallIntegerField(
        default=0, db_default=0, editable=False,
        help_text="Points from the other engaged people's engagement (a share of it, beyond the best one's).")
    breadth_bonus = models.SmallIntegerField(default=0, db_default=0, editable=False,
                                             help_text="Points for each engaged person beyond the first, capped.")
    last_engaged_at = models.DateTimeField(null=True, blank=True, editable=False,
                                           help_text="Latest activity of an engaged lead.")
    scored_at = models.DateTimeField(null=True, blank=True, editable=False,
                                     help_text="When the score or one of its parts last changed.")

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "domain"], name="account_unique_domain_per_tenant",
                violation_error_message="An account with this domain already exists.",
            )
        ]
        indexes = [models.Index(fields=["tenant", "owner"], name="account_tenant_owner"),
                   models.Index(fields=["tenant", "-score"], name="account_tenant_score")]

    def __str__(self) -> str:
        return self.name or self.domain

    @property
    def score_summary(self) -> str:
        """"Account score 72 · 4 engaged people", or "" before its leads are scored."""
        if self.score is None:
            return ""
        people = "person" if self.engaged_leads == 1 else "people"
        return f"Account score {self.score} · {self.engaged_leads} engaged {people}"

    @property
    def score_explanation(self) -> str:
        """The sum the score is, part by part (clamped to 0–100)."""
        if self.score is None:
            return ""
        return (f"best fit {self.fit_max or 0} + best engagement {self.engagement_max or 0} + "
                f"other engaged people {self.others_points} + breadth bonus {self.breadth_bonus} "
                f"= {self.score} (0–100)")


class LeadStatus(models.TextChoices):
    NEW = "new", "New"
    CONTACTED = "contacted", "Contacted"
    QUALIFIED = "qualified", "Qualified"
    UNQUALIFIED = "unqualified", "Unqualified"
    CONVERTED = "converted", "Converted"
    RECYCLED = "recycled", "Recycled"
    REJECTED = "rejected", "Rejected by sales"
    ARCHIVED = "archived", "Archived"


# Statuses of a lead someone is (or should be) working: in queues, capacity counts, SLAs and aging.
OPEN_STATUSES = (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED)


class LeadStage(models.TextChoices):
    RAW = "raw", "Raw lead"
    MQL = "mql", "MQL"
    SAL = "sal", "SAL"
    SQL = "sql", "SQL"
    OPPORTUNITY = "opportunity", "Opportunity"
    CUSTOMER = "customer", "Customer"


class Lead(TenantOwned):
    """A person who showed interest; unique per tenant by (lower-cased) email."""

    # No index of its own: every composite index below starts with tenant_id, and each index
    # less is one write less per re-scored lead.
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.CharField(max_length=254, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=40, blank=True, help_text="E.164 when it could be parsed.")
    job_title = models.CharField(max_length=200, blank=True)
    company = models.CharField(max_length=200, blank=True)
    company_domain = models.CharField(max_length=253, blank=True)
    company_size = models.PositiveIntegerField(null=True, blank=True, help_text="Employees.")
    industry = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=100, blank=True)
    source = models.CharField(max_length=64, blank=True)
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    utm_term = models.CharField(max_length=200, blank=True)
    utm_content = models.CharField(max_length=200, blank=True)
    campaign = models.CharField(max_length=200, blank=True)
    marketing_consent = models.BooleanField(default=False)
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_source = models.CharField(max_length=200, blank=True)
    is_personal_email = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=LeadStatus.choices, default=LeadStatus.NEW)
    stage = models.CharField(max_length=16, choices=LeadStage.choices, default=LeadStage.RAW)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
        related_name="+",
    )
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, db_index=False, related_name="leads"
    )
    form = models.ForeignKey(
        LeadForm, null=True, blank=True, on_delete=models.SET_NULL, db_index=False, related_name="+"
    )
    possible_duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, db_index=False, related_name="+",
        help_text="Set when another lead has the same phone number.",
    )
    attributes = models.JSONField(default=dict, blank=True, help_text="Extra form fields.")
    # Fields a person edited by hand: later captures fill blanks but never overwrite these.
    edited_fields = models.JSONField(default=list, blank=True, editable=False)
    # Filled by scoring and routing (later issues); null until then.
    score = models.IntegerField(null=True, blank=True)
    fit_score = models.IntegerField(null=True, blank=True)
    engagement_score = models.IntegerField(null=True, blank=True)
    band = models.CharField(max_length=16, blank=True)
    lead_class = models.CharField(max_length=16, blank=True)
    lead_class_reason = models.CharField(max_length=300, blank=True)
    # {"<rule id>": points} of the scoring model in `scoring_model`: the score is the sum of
    # these points clamped to 0–100 (the API expands it into named, categorised lines).
    score_breakdown = models.JSONField(null=True, blank=True)
    scoring_model = models.ForeignKey(
        "scoring.ScoringModel", null=True, blank=True, on_delete=models.SET_NULL, db_index=False, related_name="+"
    )
    scored_at = models.DateTimeField(null=True, blank=True)
    # The tenant's learned model (scoring.predictive), written by the scoring statement: null until one exists.
    conversion_probability = models.FloatField(null=True, blank=True, editable=False,
                                               help_text="Calibrated probability (0–1) that the lead is won.")
    predictive_score = models.SmallIntegerField(null=True, blank=True, editable=False,
                                                help_text="The conversion probability as 0–100.")
    predictive_reasons = models.JSONField(null=True, blank=True, editable=False,
                                          help_text="Top contributions: [{label, effect (percentage points)}].")
    is_hot = models.BooleanField(default=False, help_text="At or above the hot threshold: in the manager queue.")
    cold_since = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    archive_reason = models.CharField(max_length=200, blank=True)
    sla_due_at = models.DateTimeField(null=True, blank=True)
    # Routing and the rep's work (issue 4).
    product_interest = models.CharField(max_length=200, blank=True, db_default="")
    team = models.ForeignKey("tenancy.Team", null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
                             related_name="+", help_text="The team whose queue the lead is in.")
    assigned_at = models.DateTimeField(null=True, blank=True)
    unassigned_reason = models.CharField(max_length=300, blank=True, db_default="")
    first_contacted_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    contact_attempts = models.PositiveIntegerField(default=0, db_default=0)
    aging_flagged_at = models.DateTimeField(null=True, blank=True)
    aging_alerted_at = models.DateTimeField(null=True, blank=True)
    budget = models.CharField(max_length=200, blank=True, db_default="")
    authority = models.CharField(max_length=200, blank=True, db_default="")
    need = models.CharField(max_length=500, blank=True, db_default="")
    timeline = models.CharField(max_length=200, blank=True, db_default="")
    rejection_reason = models.CharField(max_length=48, blank=True, db_default="")
    rejection_note = models.CharField(max_length=500, blank=True, db_default="")
    rejected_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    # The capture pipeline's outbox: set in the capture's own INSERT, cleared by the worker in the
    # transaction that scored and routed the lead. A lead still pending after a few seconds had its task
    # lost (worker killed, Redis down) and the pipeline sweep hands it to a worker again.
    pipeline_pending_since = models.DateTimeField(null=True, blank=True, editable=False)
    # The record's id in the system it came from (a CRM export's row id), unique per tenant when given: a CSV
    # import that names it finds the lead again.
    external_id = models.CharField(max_length=200, blank=True, db_default="")
    # Set when the person was erased at their request (workspace.services.privacy): the row stays for the
    # dashboards' counts (stage, status, score, source, dates) with every personal field blanked.
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A hard bounce of the lead's address (nurture's bounce callback or any hard-bounce suppression) flags the
    # lead for review until someone corrects the email (which clears it) or dismisses the flag.
    email_bounced_at = models.DateTimeField(null=True, blank=True, editable=False)
    email_bounce_note = models.CharField(max_length=300, blank=True, db_default="", editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "email"], condition=~Q(email=""), name="lead_unique_email_per_tenant",
                violation_error_message="A lead with this email already exists.",
            ),
            models.UniqueConstraint(
                fields=["tenant", "external_id"], condition=~Q(external_id=""), name="lead_unique_external_id_per_tenant",
                violation_error_message="A lead with this external id already exists.",
            ),
            models.CheckConstraint(
                condition=~(Q(email="") & Q(phone="")) | Q(erased_at__isnull=False), name="lead_has_email_or_phone",
                violation_error_message="A lead needs an email or a phone number.",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="lead_tenant_created"),
            models.Index(fields=["tenant", "owner", "status"], name="lead_tenant_owner_status"),
            models.Index(fields=["tenant", "status", "stage"], name="lead_tenant_status_stage"),
            models.Index(fields=["tenant", "phone"], name="lead_tenant_phone"),
            models.Index(fields=["tenant", "company_domain"], name="lead_tenant_domain"),
            models.Index(fields=["tenant", "account"], name="lead_tenant_account"),
            models.Index(fields=["tenant", "sla_due_at"], name="lead_tenant_sla_due"),
            # Possible duplicates by phone (`leads.services.duplicates`): only leads with a phone. Statistics taken
            # while a tenant's leads had no phones make `phone = x` look like the whole table on the full index,
            # where this one's predicate looks as small as it is, so the look-up stays an index probe.
            models.Index(fields=["tenant", "phone"], condition=~Q(phone=""), name="lead_tenant_phone_given"),
            # Keyed on columns scoring never writes: a re-score that changes no indexed column is a
            # HOT update (no index writes at all), which the table's fillfactor leaves room for.
            models.Index(fields=["tenant", "created_at"], condition=Q(is_hot=True), name="lead_tenant_hot"),
            models.Index(fields=["tenant", "pipeline_pending_since"], condition=Q(pipeline_pending_since__isnull=False),
                         name="lead_tenant_pipeline_pending"),
            # The manager's "Bounced addresses" list: only the flagged few are in it.
            models.Index(fields=["tenant", "-email_bounced_at"], condition=Q(email_bounced_at__isnull=False),
                         name="lead_tenant_email_bounced"),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.phone or ("Erased person" if self.erased_at else "")

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class TouchKind(models.TextChoices):
    CREATED = "created", "Created the lead"
    DUPLICATE = "duplicate", "Duplicate submission, merged"


class Touch(TenantOwned):
    """One capture of a lead (a form post, an import row), duplicates included, with the raw payload."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="touches", db_index=False)
    kind = models.CharField(max_length=16, choices=TouchKind.choices)
    form = models.ForeignKey(LeadForm, null=True, blank=True, on_delete=models.SET_NULL, db_index=False, related_name="+")
    source = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict)
    filled_fields = models.JSONField(default=list, blank=True, help_text="Blank lead fields this touch filled.")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["tenant", "lead", "received_at"], name="touch_tenant_lead")]


class SignalType(TenantOwned):
    """A tenant-defined behavioural signal type, beyond the built-in catalog."""

    name = models.SlugField(max_length=64, db_index=False)
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="signaltype_unique_name_per_tenant",
                                    violation_error_message="This signal type already exists.")
        ]

    def __str__(self) -> str:
        return self.label or self.name


class Signal(TenantOwned):
    """A behavioural event (page view, email click, webinar…) for a lead, or for an email not yet a lead."""

    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="signals", db_index=False)
    email = models.CharField(max_length=254, blank=True, help_text="Kept to attach the signal when the lead arrives.")
    type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    external_id = models.CharField(max_length=200, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    api_key = models.ForeignKey("tenancy.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, db_index=False, related_name="+")
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_id"], condition=~Q(external_id=""),
                name="signal_unique_external_id_per_tenant",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "lead", "occurred_at"], name="signal_tenant_lead"),
            models.Index(fields=["tenant", "email"], condition=Q(lead__isnull=True), name="signal_tenant_pending_email"),
            models.Index(fields=["tenant", "received_at"], condition=Q(processed_at__isnull=True), name="signal_tenant_unprocessed"),
        ]


class ActivityKind(models.TextChoices):
    CALL = "call", "Call"
    EMAIL = "email", "Email"
    MEETING = "meeting", "Meeting"
    NOTE = "note", "Note"


class Activity(TenantOwned):
    """Something a rep did with a lead: a call, an email, a meeting or a note."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="activities", db_index=False)
    kind = models.CharField(max_length=16, choices=ActivityKind.choices)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    outcome = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at"]
        verbose_name_plural = "activities"
        indexes = [models.Index(fields=["tenant", "lead", "occurred_at"], name="activity_tenant_lead")]


class StageTransition(TenantOwned):
    """A lead moving from one stage to another, by whom and when."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="stage_transitions", db_index=False)
    from_stage = models.CharField(max_length=16, choices=LeadStage.choices, blank=True)
    to_stage = models.CharField(max_length=16, choices=LeadStage.choices)
    at = models.DateTimeField(default=timezone.now)
    actor_name = models.CharField(max_length=200)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False, related_name="+")
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["tenant", "lead", "at"], name="stagetransition_tenant_lead"),
                   # "The leads that became MQLs in a period" (the feedback report's MQL acceptance).
                   models.Index(fields=["tenant", "to_stage", "at"], name="stagetransition_tenant_to")]


class IdempotencyRecord(TenantOwned):
    """The first answer to an intake request with an Idempotency-Key, replayed for 24 hours. A key is scoped to
    what sent it: a form's submission (`form`) or an integration's batch (`api_key`), never both, so a form's
    key and a batch's key cannot collide."""

    form = models.ForeignKey(LeadForm, null=True, blank=True, on_delete=models.CASCADE, db_index=False,
                             related_name="+")
    api_key = models.ForeignKey("tenancy.ApiKey", null=True, blank=True, on_delete=models.CASCADE, db_index=False,
                                related_name="+")
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "form", "key"], name="idempotency_unique_key_per_form"),
            models.UniqueConstraint(fields=["tenant", "api_key", "key"], name="idempotency_unique_key_per_api_key"),
            models.CheckConstraint(
                condition=models.Q(form__isnull=False, api_key__isnull=True)
                | models.Q(form__isnull=True, api_key__isnull=False),
                name="idempotency_form_or_api_key",
                violation_error_message="An idempotency record belongs to a form or to an API key, not both.",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "created_at"], name="idempotency_tenant_created")]


class OpportunityStage(models.TextChoices):
    DISCOVERY = "discovery", "Discovery"
    DEMO = "demo", "Demo"
    PROPOSAL = "proposal", "Proposal"
    NEGOTIATION = "negotiation", "Negotiation"
    WON = "won", "Closed won"
    LOST = "lost", "Closed lost"


class LostReason(TenantOwned):
    """One reason of the tenant's taxonomy of lost deals (price, competitor, no decision …): a lost opportunity names
    one, and the tenant's closed history groups by it. Seeded with `leads.lost_reasons.DEFAULT_LOST_REASONS`."""

    # No index of its own: the unique (tenant, code) index starts with tenant_id and serves every read.
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    code = models.SlugField(max_length=48, db_index=False,
                            help_text="Short and stable, e.g. price: outcomes keep it, reports group by it.")
    label = models.CharField(max_length=100, help_text="What people pick when they close a deal lost.")
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True, help_text="Inactive reasons leave the menus; closed deals keep them.")

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="lostreason_unique_code",
                                    violation_error_message="A lost reason with this code already exists."),
        ]

    def __str__(self) -> str:
        return self.label


class Opportunity(TenantOwned):
    """A deal opened when an SDR qualifies a lead (BANT); owned by the AE matched by territory or named account.
    Closing it won or lost (amount, currency, close date, lost reason) records the lead's `Outcome`."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, db_index=False, related_name="opportunities")
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
                                related_name="opportunities")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              db_index=False, related_name="+")
    name = models.CharField(max_length=200)
    stage = models.CharField(max_length=16, choices=OpportunityStage.choices, default=OpportunityStage.DISCOVERY)
    budget = models.CharField(max_length=200, blank=True)
    authority = models.CharField(max_length=200, blank=True)
    need = models.CharField(max_length=500, blank=True)
    timeline = models.CharField(max_length=200, blank=True)
    qualified_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     db_index=False, related_name="+")
    accepted_at = models.DateTimeField(null=True, blank=True)
    # The deal's value (expected while open, booked when won) in `currency` (ISO 4217), and how it closed.
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, db_default="", help_text="ISO 4217, e.g. EUR.")
    closed_at = models.DateTimeField(null=True, blank=True)
    lost_reason = models.ForeignKey(LostReason, null=True, blank=True, on_delete=models.PROTECT, db_index=False,
                                    related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "opportunities"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "lead"], condition=~Q(stage__in=["won", "lost"]),
                                    name="opportunity_one_open_per_lead",
                                    violation_error_message="This lead already has an open opportunity."),
            models.CheckConstraint(condition=Q(amount__isnull=True) | Q(amount__gte=0),
                                   name="opportunity_amount_not_negative",
                                   violation_error_message="The amount cannot be negative."),
        ]
        indexes = [
            models.Index(fields=["tenant", "owner", "stage"], name="opportunity_tenant_owner"),
            models.Index(fields=["tenant", "lead"], name="opportunity_tenant_lead"),
            models.Index(fields=["tenant", "-closed_at"], condition=Q(closed_at__isnull=False),
                         name="opportunity_tenant_closed"),
            models.Index(fields=["tenant", "lost_reason"], condition=Q(lost_reason__isnull=False),
                         name="opportunity_tenant_lost_reason"),
        ]

    def __str__(self) -> str:
        return self.name


class OutcomeResult(models.TextChoices):
    WON = "won", "Won"
    LOST = "lost", "Lost"
    DISQUALIFIED = "disqualified", "Disqualified"


class OutcomeSource(models.TextChoices):
    """Where an outcome was recorded."""

    OPPORTUNITY = "opportunity", "Opportunity API"
    SYNC = "sync", "Outcome sync (another CRM)"
    UI = "ui", "Lead page"
    ADMIN = "admin", "Admin"


class Outcome(TenantOwned):
    """How a lead ended: won (amount, currency), lost (with a reason of the tenant's taxonomy) or disqualified, and
    when. One current outcome per lead, the one place "the tenant's closed history" is read from: a changed outcome
    updates this row, and the lead's audit trail (`lead.outcome`) keeps every version. Written by
    `workspace.services.outcomes` only (closing an opportunity, the outcome sync), in the transaction that also
    converts or closes the lead."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, db_index=False, related_name="+")
    result = models.CharField(max_length=16, choices=OutcomeResult.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="", help_text="ISO 4217, e.g. EUR.")
    closed_at = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True, default="",
                              help_text="Free text: why it was lost or disqualified, as told.")
    lost_reason = models.ForeignKey(LostReason, null=True, blank=True, on_delete=models.PROTECT, db_index=False,
                                    related_name="+")
    source = models.CharField(max_length=16, choices=OutcomeSource.choices)
    opportunity = models.ForeignKey(Opportunity, null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
                                    related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-closed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "lead"], name="outcome_one_per_lead",
                                    violation_error_message="This lead already has an outcome."),
            models.CheckConstraint(condition=Q(amount__isnull=True) | Q(amount__gte=0),
                                   name="outcome_amount_not_negative",
                                   violation_error_message="The amount cannot be negative."),
            models.CheckConstraint(condition=Q(amount__isnull=True) | ~Q(currency=""),
                                   name="outcome_amount_has_currency",
                                   violation_error_message="An amount needs its currency."),
        ]
        indexes = [
            # "The closed leads of a tenant by close date" (reports, the model later issues train).
            models.Index(fields=["tenant", "closed_at"], name="outcome_tenant_closed"),
            models.Index(fields=["tenant", "result", "closed_at"], name="outcome_tenant_result_closed"),
            models.Index(fields=["tenant", "lost_reason"], condition=Q(lost_reason__isnull=False),
                         name="outcome_tenant_lost_reason"),
            models.Index(fields=["tenant", "opportunity"], condition=Q(opportunity__isnull=False),
                         name="outcome_tenant_opportunity"),
        ]

    def __str__(self) -> str:
        return f"{self.get_result_display()} {self.closed_at:%Y-%m-%d}"


class OutcomeKind(models.TextChoices):
    CALL = "call", "Calls"
    EMAIL = "email", "Emails"
    MEETING = "meeting", "Meetings"
    ANY = "any", "Any activity"


class ActivityOutcome(TenantOwned):
    """One outcome of the tenant's call/email/meeting taxonomy. Logging an activity with an outcome that
    counts as contact is the first contact (the first-contact SLA clock stops); any other is an attempt."""

    # No index of its own: the unique (tenant, code) index starts with tenant_id and serves every read.
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    code = models.SlugField(max_length=48, db_index=False,
                            help_text="Short and stable, e.g. no_answer: activities keep it, dashboards group by it.")
    label = models.CharField(max_length=100, help_text="What reps pick from in the log-activity form.")
    kind = models.CharField(max_length=8, choices=OutcomeKind.choices, default=OutcomeKind.ANY,
                            help_text="The activities it is offered for.")
    counts_as_contact = models.BooleanField(
        default=False, help_text="The rep reached the person: stops the first-contact SLA clock and resets the "
                                 "count of unanswered attempts. Otherwise it is an attempt.")
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True, help_text="Inactive outcomes leave the menus; activities keep them.")

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="activityoutcome_unique_code",
                                    violation_error_message="An outcome with this code already exists."),
        ]

    def __str__(self) -> str:
        return self.label

    def fits(self, kind: str) -> bool:
        return self.kind in (OutcomeKind.ANY, kind)


class DuplicateReason(models.TextChoices):
    PHONE = "phone", "Same phone number"
    NAME_ACCOUNT = "name_account", "Same name at the same account"


class DuplicateTier(models.TextChoices):
    """How sure the match is: high = same phone and same name; medium = same phone, or same name at the same
    account. An exact email is never a pair: intake merges it automatically."""

    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"


class DuplicateStatus(models.TextChoices):
    OPEN = "open", "Open"
    MERGED = "merged", "Merged"
    DISMISSED = "dismissed", "Dismissed"


class DuplicatePair(TenantOwned):
    """Two leads that look like one person, for a manager to merge or dismiss (the merge review queue). Stored
    once per pair: `lead` is the one whose id sorts first."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, db_index=False, related_name="+")
    other = models.ForeignKey(Lead, on_delete=models.CASCADE, db_index=False, related_name="+")
    reason = models.CharField(max_length=16, choices=DuplicateReason.choices)
    tier = models.CharField(max_length=8, choices=DuplicateTier.choices)
    status = models.CharField(max_length=12, choices=DuplicateStatus.choices, default=DuplicateStatus.OPEN)
    detected_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    db_index=False, related_name="+")
    # A merge: the lead kept, and what the merge changed (fields, moved rows), which its undo puts back.
    survivor = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
                                 related_name="+")
    merge_record = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-detected_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "lead", "other"], name="duplicatepair_once"),
            models.CheckConstraint(condition=models.Q(lead__lt=models.F("other")), name="duplicatepair_ordered",
                                   violation_error_message="A pair names its lead with the lower id first."),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "tier", "detected_at"], name="duplicatepair_queue"),
            models.Index(fields=["tenant", "other"], name="duplicatepair_other"),
        ]

    @property
    def why(self) -> str:
        """The reason in words, with the name when it matched too (what makes the tier high)."""
        if self.reason == DuplicateReason.PHONE and self.tier == DuplicateTier.HIGH:
            return "Same phone number and name"
        return self.get_reason_display()

    def __str__(self) -> str:
        return f"{self.lead_id} ~ {self.other_id} ({self.get_reason_display()}, {self.tier})"
class ErasedContact(TenantOwned):
    """A person erased at their request, remembered only by a peppered hash of their normalised email
    (`leads.erasure.email_hash`): batch intake refuses them and nurture never mails them again."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    email_hash = models.CharField(max_length=64, help_text="sha256 (hex) of PRIVACY_HASH_PEPPER + the normalised email.")
    erased_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "email_hash"], name="erasedcontact_unique_hash_per_tenant",
                                    violation_error_message="This person is already erased."),
        ]

    def __str__(self) -> str:
        return f"erased {self.email_hash[:12]}…"
