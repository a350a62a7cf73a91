"""Admin for tenancy: tenants (platform superusers only), teams, memberships, API keys, agent switches."""
from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record

from .admin_base import (
    ADMIN_ROLES,
    CONFIG_ROLES,
    PlatformOnlyAdmin,
    TenantScopedAdmin,
    platform_only,
)
from .models import AgentSetting, ApiKey, Membership, Team, Tenant

# Users, groups and Celery beat schedules belong to no tenant: platform superusers only, whatever Django
# permissions a tenant user was given (auth and django_celery_beat come before tenancy in INSTALLED_APPS,
# so their admins are registered by now; tests/leadmgmt/test_admin_reach.py checks every registered model).
for _model in [m for m in admin.site._registry if not any(f.name == "tenant" for f in m._meta.fields)]:
    platform_only(_model)


@admin.register(Tenant)
class TenantAdmin(PlatformOnlyAdmin):
    """Platform operators only."""

    list_display = ("name", "slug", "is_active", "created_at")
    search_fields = ("name", "slug")


@admin.register(Team)
class TeamAdmin(TenantScopedAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "role", "team", "is_available", "capacity", "is_active")
    list_filter = ("role", "is_available", "is_active", "team")
    search_fields = ("user__username", "user__email")
    list_select_related = ("user", "team")
    view_roles = ADMIN_ROLES  # managers toggle availability on their manager pages, for their teams only


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    """Integration keys: tenant admins only (a key reads and writes the tenant's leads)."""

    view_roles = ADMIN_ROLES
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


# --- agent on/off switches ------------------------------------------------------------------------


@admin.register(AgentSetting)
class AgentSettingAdmin(TenantScopedAdmin):
    """Tenant admins switch each automated agent on or off; an agent without a row here is on."""

    list_display = ("agent", "enabled", "updated_at")
    list_editable = ("enabled",)
    fields = ("agent", "enabled")
    view_roles = CONFIG_ROLES
    change_roles = ADMIN_ROLES
    audit_action_prefix = "agent_setting"
    actions = ("switch_on", "switch_off")

    def get_fields(self, request, obj=None):
        if obj is None and request.user.is_superuser and getattr(request, "tenant", None) is None:
            return ("tenant", "agent", "enabled")
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return ("agent",) if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        return False  # switching an agent off is the way; a deleted row would silently mean "on"

    def get_form(self, request, obj=None, **kwargs):
        base = super().get_form(request, obj, **kwargs)
        request_tenant = getattr(request, "tenant", None)

        class AgentSettingForm(base):
            def clean(self):
                data = super().clean()
                tenant = data.get("tenant") or request_tenant
                agent = data.get("agent")
                if obj is None and tenant is not None and agent and AgentSetting.objects.for_tenant(tenant).filter(agent=agent).exists():
                    self.add_error("agent", "This agent already has a setting: switch it on or off in the list.")
                return data

        return AgentSettingForm

    @transaction.atomic
    def _switch(self, request, queryset, enabled: bool) -> None:
        actor = Actor.for_user(request.user)
        for setting in queryset.filter(enabled=not enabled):
            setting.enabled = enabled
            setting.save(update_fields=["enabled", "updated_at"])
            audit_record(tenant=setting.tenant, actor=actor, action="agent_setting.updated", obj=setting,
                         changes={"enabled": [not enabled, enabled]}, metadata={"via": "admin"})
        self.message_user(request, f"Switched {'on' if enabled else 'off'}.")

    @admin.action(description="Switch the selected agents on")
    def switch_on(self, request, queryset):
        self._switch(request, queryset, True)

    @admin.action(description="Switch the selected agents off")
    def switch_off(self, request, queryset):
        self._switch(request, queryset, False)
