"""Tenant-scoped managers: every query is filtered by the current tenant, or raises."""
from __future__ import annotations

from django.db import models

from .context import TenantNotSet, get_current_tenant


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant) -> TenantQuerySet:
        return self.filter(tenant=tenant)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    """Default manager of tenant-owned models.

    `Model.objects` only ever returns rows of the tenant in context; with no tenant in context
    it raises `TenantNotSet` instead of returning everything. Crossing tenants is explicit and
    greppable: `Model.objects.unscoped()`.
    """

    def get_queryset(self) -> TenantQuerySet:
        tenant = get_current_tenant()
        if tenant is None:
            raise TenantNotSet(
                f"{self.model.__name__}.objects used with no tenant in context; "
                "wrap the code in tenant_scope(...) or use .unscoped() on purpose"
            )
        return super().get_queryset().filter(tenant=tenant)

    def unscoped(self) -> TenantQuerySet:
        return super().get_queryset()


class TenantOwned(models.Model):
    """Abstract base: a `tenant` FK (its index is the leading column of every other index)."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")

    objects = TenantManager()

    class Meta:
        abstract = True
