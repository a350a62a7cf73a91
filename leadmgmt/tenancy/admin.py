"""Admin for tenancy: tenants (platform superusers only), teams, memberships and API keys."""
from django.contrib import admin, messages
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record

from .admin_base import ADMIN_ROLES, TenantScopedAdmin
from .models import ApiKey, Membership, Team, Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    """Platform operators only: Django's model permissions keep tenant staff out."""

    list_display = ("name", "slug", "is_active", "created_at")
    search_fields = ("name", "slug")


@admin.register(Team)
class TeamAdmin(TenantScopedAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "role", "team", "is_available", "capacity")
    list_filter = ("role", "is_available", "team")
    search_fields = ("user__username", "user__email")
    list_select_related = ("user", "team")
    view_roles = ADMIN_ROLES | {"manager"}


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = ("name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    fields = ("name", "scopes", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        prefix, raw = ApiKey.generate_secret()
        obj.prefix = prefix
        obj.set_secret(raw)
        obj.created_by = request.user
        obj.scopes = obj.scopes or ["signals:write", "leads:read"]
        super().save_model(request, obj, form, change)
        messages.warning(request, f"Copy this API key now; it will not be shown again: {raw}")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        now = timezone.now()
        for key in queryset.filter(revoked_at__isnull=True):
            key.revoked_at = now
            key.save(update_fields=["revoked_at"])
            audit_record(tenant=key.tenant, actor=Actor.for_user(request.user), action="api_key.revoked",
                         obj=key, changes={"revoked_at": [None, now]}, metadata={"via": "admin"})
        self.message_user(request, "Revoked.")
