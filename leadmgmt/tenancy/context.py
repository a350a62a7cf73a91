"""The current tenant, held in a ContextVar set at the edge and reset in `finally`.

The web middleware, the API authentication class and the Celery task wrapper set it; the
tenant-scoped manager reads it and fails closed (raises) when it is not set.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Tenant

_current_tenant: ContextVar[Tenant | None] = ContextVar("leadmgmt_current_tenant", default=None)


class TenantNotSet(RuntimeError):
    """A tenant-scoped query ran with no tenant in context (use `.unscoped()` deliberately)."""


def get_current_tenant() -> Tenant | None:
    return _current_tenant.get()


def set_current_tenant(tenant: Tenant | None) -> None:
    """Set for the rest of the current scope; the enclosing `tenant_scope`/middleware resets it."""
    _current_tenant.set(tenant)


@contextmanager
def tenant_scope(tenant: Tenant | int | None) -> Iterator[Tenant | None]:
    """Run a block as `tenant` (an instance or an id); restores the previous tenant afterwards."""
    if isinstance(tenant, int):
        from .models import Tenant

        tenant = Tenant.objects.get(pk=tenant)
    token = _current_tenant.set(tenant)
    try:
        yield tenant
    finally:
        _current_tenant.reset(token)
