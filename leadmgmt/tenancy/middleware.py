"""Sets the current tenant for UI requests from the signed-in user's membership, and always resets it.

Each request starts with no tenant and no cross-tenant purpose (fresh_context), whatever the
thread ran before, and both are undone when it ends. A platform superuser with no membership works
in the admin across tenants: the `platform_admin` path of cross_tenant.py, for admin pages only.
"""
from __future__ import annotations

from contextlib import ExitStack

from django.urls import reverse

from .context import fresh_context, set_current_tenant
from .cross_tenant import cross_tenant
from .selectors import memberships_of_user, pick_membership

SESSION_TENANT_KEY = "leadmgmt_tenant_id"


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.admin_prefix = None

    def __call__(self, request):
        with ExitStack() as stack:
            stack.enter_context(fresh_context())
            request.membership = None
            request.tenant = None
            request.memberships = []
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                request.memberships = memberships_of_user(user=user)
                membership = pick_membership(request.memberships, request.session.get(SESSION_TENANT_KEY))
                if membership is not None:
                    request.membership = membership
                    request.tenant = membership.tenant
                    set_current_tenant(membership.tenant)
                elif user.is_superuser and request.path.startswith(self._admin_prefix()):
                    stack.enter_context(cross_tenant("platform_admin"))
            return self.get_response(request)

    def _admin_prefix(self) -> str:
        if self.admin_prefix is None:
            self.admin_prefix = reverse("admin:index")
        return self.admin_prefix
