"""Read-only, tenant-scoped admin for the audit trail."""
from django.contrib import admin

from leadmgmt.tenancy.admin_base import TenantScopedAdmin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(TenantScopedAdmin):
    list_display = ("at", "actor_name", "actor_kind", "action", "object_type", "object_id")
    list_filter = ("actor_kind", "action", "object_type")
    search_fields = ("object_id", "actor_name", "action")
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
