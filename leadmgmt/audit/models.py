"""The audit trail: one row per write, with who, what, which object, before/after and when."""
from django.conf import settings
from django.db import models
from django.utils import timezone

from leadmgmt.tenancy.managers import TenantOwned


class AuditEvent(TenantOwned):
    """An immutable record of one change made by a person, an API key, a form or an agent."""

    at = models.DateTimeField(default=timezone.now)
    actor_kind = models.CharField(max_length=16)
    actor_name = models.CharField(max_length=200)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        db_index=False, related_name="+",
    )
    actor_api_key = models.ForeignKey(
        "tenancy.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
        related_name="+",
    )
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "object_type", "object_id", "at"], name="audit_tenant_object"),
            models.Index(fields=["tenant", "at"], name="audit_tenant_at"),
            models.Index(fields=["tenant", "action", "at"], name="audit_tenant_action"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.object_type}:{self.object_id}"
