"""Tenant-scoped Django admin: querysets, choices and permissions follow the user's active tenant.

A platform superuser sees every tenant (and a tenant column). Everyone else sees and reaches only
the rows of the tenant of their active membership, by role; another tenant's object is a 404-like
"does not exist" redirect, exactly like a missing one. Every admin save and delete is audited.
"""
from __future__ import annotations

from contextlib import contextmanager

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record

from .context import get_current_tenant, tenant_scope
from .models import Tenant
from .roles import CONFIG_EDIT, TEAM_MANAGE, roles_for

# Which roles may use which admin capability (read from the matrix in roles.py). Marketing ops tune the system;
# tenant admins run it.
ADMIN_ROLES = set(roles_for(TEAM_MANAGE))
CONFIG_ROLES = set(roles_for(CONFIG_EDIT))


def request_role(request) -> str | None:
    membership = getattr(request, "membership", None)
    return membership.role if membership is not None else None


def platform_view(request) -> bool:
    """A platform superuser with no active tenant: works across tenants."""
    return request.user.is_superuser and getattr(request, "tenant", None) is None


def admin_rows(model, request):
    """The rows of tenant-owned `model` an admin page may show: the request tenant's; every tenant's for a
    platform superuser with no tenant (the `platform_admin` path of cross_tenant.py); none otherwise."""
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        return model.objects.for_tenant(tenant)
    return model.objects.unscoped() if platform_view(request) else model.objects.none()


def tenant_choices(related, request):
    """The rows a form may offer from `related`: the active tenant's (people: its members); every
    tenant's for a platform superuser; none for anyone else. None when `related` is not tenant-owned."""
    tenant = getattr(request, "tenant", None)
    if tenant is None and platform_view(request):
        tenant = get_current_tenant()  # the tenant of the object being edited (TenantScopedAdmin.changeform_view)
    if related is get_user_model():
        if tenant is not None:
            return related.objects.filter(memberships__tenant=tenant).order_by("username")
        return related.objects.order_by("username") if platform_view(request) else related.objects.none()
    if not hasattr(related.objects, "unscoped"):
        return None
    if tenant is not None:
        return related.objects.for_tenant(tenant)
    return related.objects.unscoped() if platform_view(request) else related.objects.none()


@contextmanager
def _discarded_default_scope(request):
    """Django's ForeignKey.formfield() builds a default queryset from the related model's default
    manager even when given one, and throws it away. That manager fails closed without a tenant,
    which a platform superuser adding a row has none of: a placeholder lets the form be built. The
    choices themselves always come from `tenant_choices()`."""
    if get_current_tenant() is None and platform_view(request):
        with tenant_scope(Tenant(pk=0, slug="-", name="-")):
            yield
    else:
        yield


class ReadOnlyTenantInline(admin.TabularInline):
    """A history shown under an admin page (touches, assignments, delivery attempts): the active tenant's rows,
    nothing added, changed or deleted here, seen by `view_roles` and platform superusers."""

    extra = 0
    can_delete = False
    view_roles: set[str] = set()

    def get_queryset(self, request):
        return admin_rows(self.model, request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or request_role(request) in self.view_roles


class TenantRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-field list filter offering the rows a form would (never another tenant's)."""

    def field_choices(self, field, request, model_admin):
        queryset = tenant_choices(field.related_model, request)
        if queryset is None:
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in queryset]


class PlatformOnlyAdmin(admin.ModelAdmin):
    """Base ModelAdmin for models that belong to no tenant (tenants, users, Celery beat schedules).

    Platform superusers only: tenant staff are refused (403) and do not see the model on the index,
    even if someone granted them Django model permissions, because those are not per tenant.
    """

    def _platform_user(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return self._platform_user(request)

    def has_view_permission(self, request, obj=None):
        return self._platform_user(request)

    def has_add_permission(self, request, *args):
        return self._platform_user(request)

    def has_change_permission(self, request, obj=None):
        return self._platform_user(request)

    def has_delete_permission(self, request, obj=None):
        return self._platform_user(request)


def platform_only(model, site=admin.site) -> None:
    """Re-register an already registered model (auth, Celery beat) with its admin made platform-only."""
    current = type(site._registry[model])
    if issubclass(current, PlatformOnlyAdmin):
        return
    site.unregister(model)
    site.register(model, type(f"PlatformOnly{current.__name__}", (PlatformOnlyAdmin, current), {
        "__module__": current.__module__, "__doc__": current.__doc__}))


class TenantScopedAdmin(admin.ModelAdmin):
    """Base ModelAdmin for tenant-owned models."""

    view_roles: set[str] = CONFIG_ROLES
    change_roles: set[str] = ADMIN_ROLES
    audit_action_prefix: str | None = None

    # --- scoping -------------------------------------------------------------------------------
    def get_queryset(self, request):
        qs = admin_rows(self.model, request)
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

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

    def get_list_filter(self, request):
        """Related-field filters list the tenant's rows only (a plain one would ask the default manager)."""
        filters = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str) and "__" not in entry:
                try:
                    field = self.model._meta.get_field(entry)
                except FieldDoesNotExist:
                    field = None
                if field is not None and field.is_relation and tenant_choices(field.related_model, request) is not None:
                    entry = (entry, TenantRelatedFieldListFilter)
            filters.append(entry)
        return filters

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            queryset = tenant_choices(db_field.related_model, request)
            if queryset is not None:
                kwargs["queryset"] = queryset
        with _discarded_default_scope(request):
            return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            queryset = tenant_choices(db_field.related_model, request)
            if queryset is not None:
                kwargs["queryset"] = queryset
        with _discarded_default_scope(request):
            return super().formfield_for_manytomany(db_field, request, **kwargs)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A platform superuser edits a row inside its tenant, and adds one inside the tenant picked in the
        form: choices, validation and unique checks are that tenant's (never a mix of two tenants)."""
        if platform_view(request) and get_current_tenant() is None:
            tenant = None
            if object_id is not None:
                obj = self.get_object(request, unquote(object_id))
                tenant = obj.tenant if obj is not None else None
            elif request.method == "POST" and _ascii_id(request.POST.get("tenant", "")):
                tenant = Tenant.objects.filter(pk=int(request.POST["tenant"])).first()
            if tenant is not None:
                with tenant_scope(tenant):
                    response = super().changeform_view(request, object_id, form_url, extra_context)
                    return response.render() if hasattr(response, "render") else response
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        if platform_view(request):
            changelist.list_editable = ()  # rows of many tenants: edit each on its own page, in its tenant
        return changelist

    def get_inline_instances(self, request, obj=None):
        # A platform superuser's add page has no tenant yet for the inline rows: add them once saved.
        if obj is None and platform_view(request):
            return []
        return super().get_inline_instances(request, obj)

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


def _ascii_id(value) -> bool:
    """A primary key as posted: 0-9 only (`"³".isdigit()` is true but `int("³")` fails), at most 18 digits."""
    value = str(value)
    return 0 < len(value) <= 18 and value.isascii() and value.isdigit()
