"""Tenants, teams, memberships (user ↔ tenant with a role) and API keys."""
from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from .managers import TenantOwned


class Tenant(models.Model):
    """One customer organisation using leadmgmt: the isolation boundary of all data."""

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Team(TenantOwned):
    """A group of reps (e.g. 'SDR EMEA') that routing targets and a manager leads."""

    name = models.CharField(max_length=100)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
        related_name="+", help_text="Receives SLA escalations and aging alerts for the team's leads.",
    )
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                name="team_unique_name_per_tenant",
                violation_error_message="A team with this name already exists.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    SDR = "sdr", "SDR"
    AE = "ae", "Account executive"
    MANAGER = "manager", "Sales manager"
    MARKETING_OPS = "marketing_ops", "Marketing ops"
    ADMIN = "admin", "Tenant admin"


class Membership(TenantOwned):
    """A user's place in a tenant: role, team, availability and lead capacity."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.SDR)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, db_index=False)
    is_available = models.BooleanField(default=True)
    capacity = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most open leads this rep may hold; empty means no cap."
    )
    unavailable_from = models.DateTimeField(null=True, blank=True, help_text="Out of office from (inclusive).")
    unavailable_until = models.DateTimeField(null=True, blank=True, help_text="Out of office until (exclusive).")
    routing_weight = models.PositiveIntegerField(default=1, help_text="Share in weighted round-robin (0 pauses).")
    is_senior = models.BooleanField(default=False, help_text="Takes high-value leads in skill-based rules.")
    is_active = models.BooleanField(
        default=True, help_text="A deactivated member cannot use this tenant and gets no leads (history is kept).")
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["tenant_id", "user_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "user"],
                name="membership_unique_user_per_tenant",
                violation_error_message="This user is already a member of the tenant.",
            )
        ]
        indexes = [models.Index(fields=["tenant", "team"], name="membership_tenant_team")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant_id} ({self.role})"

    def is_out_of_office(self, at) -> bool:
        if self.unavailable_from is None and self.unavailable_until is None:
            return False
        starts = self.unavailable_from is None or self.unavailable_from <= at
        ends = self.unavailable_until is None or at < self.unavailable_until
        return starts and ends

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def sees_all_leads(self) -> bool:
        return self.role in {Role.ADMIN, Role.MARKETING_OPS}


INVITATION_TOKEN_BYTES = 32


class Invitation(TenantOwned):
    """An emailed, single-use, expiring invitation to join a tenant with a role, team and capacity.

    Only a hash of the link's token is stored; re-sending replaces the hash, so the older link stops
    working. An invitation is pending until it is accepted, revoked or past `expires_at`."""

    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.SDR)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, db_index=False, related_name="+")
    capacity = models.PositiveIntegerField(null=True, blank=True)
    # Looked up from the link before the tenant is known, so this unique index cannot start with tenant_id.
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   db_index=False, related_name="+")
    created_at = models.DateTimeField(default=dj_timezone.now)
    sent_at = models.DateTimeField(default=dj_timezone.now)
    send_count = models.PositiveIntegerField(default=1)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    db_index=False, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "email"], condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
                violation_error_message="This person already has an open invitation: re-send it instead.",
            )
        ]

    def __str__(self) -> str:
        return f"Invitation of {self.email} ({self.role})"

    @staticmethod
    def new_token() -> tuple[str, str]:
        """(raw token for the link, its hash for the row)."""
        raw = secrets.token_urlsafe(INVITATION_TOKEN_BYTES)
        return raw, _hash_key(raw)

    @staticmethod
    def hash_token(raw: str) -> str:
        return _hash_key(raw)

    def state(self, at) -> str:
        """"accepted", "revoked", "expired" or "pending" at `at`."""
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= at:
            return "expired"
        return "pending"


class ApiScope(models.TextChoices):
    SIGNALS_WRITE = "signals:write", "Send signals"
    LEADS_READ = "leads:read", "Read leads"
    LEADS_WRITE = "leads:write", "Update leads"
    OUTCOMES_WRITE = "outcomes:write", "Send deal outcomes (won, lost, disqualified)"
    PREDICTIVE_READ = "predictive:read", "Read the learned scoring model"
    PREDICTIVE_TRAIN = "predictive:train", "Train the learned scoring model"
    COSTS_READ = "costs:read", "Read source and campaign costs"
    COSTS_WRITE = "costs:write", "Send source and campaign costs"
    PLAN_READ = "plan:read", "Read the funnel plan"
    PLAN_WRITE = "plan:write", "Change the funnel plan"


API_KEY_PREFIX_LEN = 12


def _hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKey(TenantOwned):
    """A tenant API key for integrations. The secret is shown once and stored only as a hash."""

    name = models.CharField(max_length=100)
    # Looked up before the tenant is known, so this unique index cannot start with tenant_id.
    prefix = models.CharField(max_length=API_KEY_PREFIX_LEN, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
        related_name="+",
    )
    created_at = models.DateTimeField(default=dj_timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def generate_secret() -> tuple[str, str]:
        """Return (prefix, raw key). The raw key is `lm_<prefix>_<secret>`."""
        prefix = secrets.token_hex(API_KEY_PREFIX_LEN // 2)
        return prefix, f"lm_{prefix}_{secrets.token_urlsafe(32)}"

    def set_secret(self, raw: str) -> None:
        self.key_hash = _hash_key(raw)

    def check_secret(self, raw: str) -> bool:
        return secrets.compare_digest(self.key_hash, _hash_key(raw))

    @staticmethod
    def parse(raw: str) -> str | None:
        """The prefix of a raw key, or None when it is not shaped like one of ours."""
        parts = raw.split("_", 2)
        if len(parts) != 3 or parts[0] != "lm" or len(parts[1]) != API_KEY_PREFIX_LEN:
            return None
        return parts[1]

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class Agent(models.TextChoices):
    SCORING = "scoring", "Scoring Agent"
    ROUTING = "routing", "Routing Agent"
    SLA = "sla", "SLA Agent"
    NURTURE = "nurture", "Nurture Agent"


class AgentSetting(TenantOwned):
    """A tenant's on/off switch for one automated agent (agents are on unless switched off)."""

    agent = models.CharField(max_length=16, choices=Agent.choices)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "agent"], name="agentsetting_unique_agent",
                                    violation_error_message="This agent already has a setting.")
        ]

    def __str__(self) -> str:
        return f"{self.get_agent_display()}: {'on' if self.enabled else 'off'}"


def agent_enabled(*, tenant, agent: str) -> bool:
    """Agents run unless the tenant switched them off."""
    setting = AgentSetting.objects.for_tenant(tenant).filter(agent=agent).values_list("enabled", flat=True).first()
    return True if setting is None else bool(setting)
