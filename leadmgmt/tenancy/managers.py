"""Tenant-scoped managers: every query is filtered by the current tenant, or raises.

Below the ORM, PostgreSQL's row-level security holds every query to the tenant in context too
(leadmgmt/db/rls.py); these managers are the readable half of the same rule.
"""
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

    # Writes name their tenant on the row itself, so they need none in context; the row-level security
    # policy (WITH CHECK) refuses a row of any tenant but the one the transaction is set to.
    def create(self, **kwargs):
        return super().get_queryset().create(**kwargs)

    def bulk_create(self, objs, *args, **kwargs):
        return super().get_queryset().bulk_create(objs, *args, **kwargs)

    def none(self) -> TenantQuerySet:
        return super().get_queryset().none()

    def for_tenant(self, tenant) -> TenantQuerySet:
        """The rows of `tenant` (an instance or an id), whatever tenant is in context: the one idiom for
        code that is handed its tenant (services, selectors, tasks)."""
        return super().get_queryset().filter(tenant=tenant)

    def unscoped(self) -> TenantQuerySet:
        """Every tenant's rows: only for the cross-tenant paths listed in leadmgmt/tenancy/cross_tenant.py
        (tests/leadmgmt/test_tenancy_idiom.py holds every call to that list)."""
        return super().get_queryset()


class TenantOwned(models.Model):
    """Abstract base: a `tenant` FK (its index is the leading column of every other index)."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")

    objects = TenantManager()

    class Meta:
        abstract = True
