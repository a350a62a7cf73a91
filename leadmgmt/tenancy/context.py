"""The current tenant, held in a ContextVar set at the edge and reset in `finally`.

The web middleware, the API authentication class and the Celery task class set it; the
tenant-scoped manager reads it and fails closed (raises) when it is not set, and the database
backend (leadmgmt/db/backend) sets it on every transaction, where PostgreSQL's row-level security
policies read it. Beside it lives the purpose of an explicit cross-tenant block (cross_tenant.py).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Tenant

_current_tenant: ContextVar[Tenant | None] = ContextVar("leadmgmt_current_tenant", default=None)
_cross_tenant: ContextVar[str | None] = ContextVar("leadmgmt_cross_tenant", default=None)


class TenantNotSet(RuntimeError):
    """A tenant-scoped query ran with no tenant in context (use `.unscoped()` deliberately)."""


def get_current_tenant() -> Tenant | None:
    return _current_tenant.get()


def get_cross_tenant_purpose() -> str | None:
    """The purpose of the cross-tenant block the code runs in (leadmgmt/tenancy/cross_tenant.py), if any."""
    return _cross_tenant.get()


@contextmanager
def fresh_context() -> Iterator[None]:
    """No tenant and no cross-tenant purpose for a block (a request, a task), restored afterwards."""
    tenant_token = _current_tenant.set(None)
    cross_token = _cross_tenant.set(None)
    try:
        yield
    finally:
        _cross_tenant.reset(cross_token)
        _current_tenant.reset(tenant_token)


def set_current_tenant(tenant: Tenant | None) -> None:
    """Set for the rest of the current scope; the enclosing `tenant_scope`/middleware resets it."""
    _current_tenant.set(tenant)


@contextmanager
def tenant_scope(tenant: Tenant | int | None) -> Iterator[Tenant | None]:
    """Run a block as `tenant` (an instance or an id), and only as it: a cross-tenant block around it
    does not reach inside. Restores the previous tenant (and purpose) afterwards."""
    if isinstance(tenant, int):
        from .models import Tenant

        tenant = Tenant.objects.get(pk=tenant)
    token = _current_tenant.set(tenant)
    cross_token = _cross_tenant.set(None)
    try:
        yield tenant
    finally:
        _cross_tenant.reset(cross_token)
        _current_tenant.reset(token)
