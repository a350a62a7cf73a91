"""Tenant-scoped Django admin: querysets, choices and permissions follow the user's active tenant.

A platform superuser sees every tenant (and a tenant column). Everyone else sees and reaches only
the rows of the tenant of their active membership, by role; another tenant's object is a 404-like
"does not exist" redirect, exactly like a missing one. Every admin save and delete is audited.
"""
from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record

from .models import Role

# Which roles may use which admin capability. Marketing ops tune the system; tenant admins run it.
ADMIN_ROLES = {Role.ADMIN}
CONFIG_ROLES = {Role.ADMIN, Role.MARKETING_OPS}


def request_role(request) -> str | None:
    membership = getattr(request, "membership", None)
    return membership.role if membership is not None else None


class TenantScopedAdmin(admin.ModelAdmin):
    """Base ModelAdmin for tenant-owned models."""

    view_roles: set[str] = CONFIG_ROLES
    change_roles: set[str] = ADMIN_ROLES
    audit_action_prefix: str | None = None

    # --- scoping -------------------------------------------------------------------------------
    def get_queryset(self, request):
        qs = self.model.objects.unscoped()
        ordering = self.get_ordering(request)
        if ordering:
            qs = qs.order_by(*ordering)
        if request.user.is_superuser and getattr(request, "tenant", None) is None:
            return qs
        tenant = getattr(request, "tenant", None)
        return qs.filter(tenant=tenant) if tenant is not None else qs.none()

    def get_list_display(self, request):
        display = list(super().get_list_display(request))
        if request.user.is_superuser and getattr(request, "tenant", None) is None and "tenant" not in display:
            display.append("tenant")
        return display

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not (request.user.is_superuser and getattr(request, "tenant", None) is None):
            exclude.append("tenant")
        return exclude

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        tenant = getattr(request, "tenant", None)
        related = db_field.related_model
        if tenant is not None:
            if related is get_user_model():
                kwargs["queryset"] = related.objects.filter(memberships__tenant=tenant).order_by("username")
            elif hasattr(related, "tenant_id") and hasattr(related.objects, "unscoped"):
                kwargs["queryset"] = related.objects.unscoped().filter(tenant=tenant)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # --- permissions by role --------------------------------------------------------------------
    def _role_allows(self, request, roles) -> bool:
        if request.user.is_superuser:
            return True
        return request_role(request) in roles

    def has_module_permission(self, request):
        return self._role_allows(request, self.view_roles | self.change_roles)

    def has_view_permission(self, request, obj=None):
        return self._role_allows(request, self.view_roles | self.change_roles)

    def has_add_permission(self, request):
        return self._role_allows(request, self.change_roles)

    def has_change_permission(self, request, obj=None):
        return self._role_allows(request, self.change_roles)

    def has_delete_permission(self, request, obj=None):
        return self._role_allows(request, self.change_roles)

    # --- writes: tenant stamped, audited -------------------------------------------------------
    def _action_name(self, verb: str) -> str:
        return f"{self.audit_action_prefix or self.model._meta.model_name}.{verb}"

    def save_model(self, request, obj, form, change):
        if not change and getattr(obj, "tenant_id", None) is None:
            obj.tenant = request.tenant
        before = {name: form.initial.get(name) for name in form.changed_data} if change else {}
        super().save_model(request, obj, form, change)
        after = {name: form.cleaned_data.get(name) for name in form.changed_data}
        audit_record(
            tenant=obj.tenant, actor=Actor.for_user(request.user),
            action=self._action_name("updated" if change else "created"), obj=obj,
            changes={k: [_plain(before.get(k)), _plain(after[k])] for k in after},
            metadata={"via": "admin"},
        )

    def delete_model(self, request, obj):
        audit_record(tenant=obj.tenant, actor=Actor.for_user(request.user), action=self._action_name("deleted"),
                     obj=obj, metadata={"via": "admin", "repr": str(obj)})
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit_record(tenant=obj.tenant, actor=Actor.for_user(request.user), action=self._action_name("deleted"),
                         obj=obj, metadata={"via": "admin", "repr": str(obj)})
        super().delete_queryset(request, queryset)


def _plain(value):
    if hasattr(value, "pk"):
        return str(value.pk)
    if isinstance(value, (list, dict, str, int, float, bool)) or value is None:
        return value
    return str(value)
