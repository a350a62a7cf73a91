"""Sets the current tenant for UI requests from the signed-in user's membership, and always resets it."""
from __future__ import annotations

from .context import _current_tenant
from .selectors import membership_for_request

SESSION_TENANT_KEY = "leadmgmt_tenant_id"


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # A fresh value for this request; everything set below (also by the API authentication
        # class) is undone by reset() whatever happens, so nothing leaks into the next request.
        token = _current_tenant.set(None)
        try:
            request.membership = None
            request.tenant = None
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                membership = membership_for_request(user=user, tenant_id=request.session.get(SESSION_TENANT_KEY))
                if membership is not None:
                    request.membership = membership
                    request.tenant = membership.tenant
                    _current_tenant.set(membership.tenant)
            return self.get_response(request)
        finally:
            _current_tenant.reset(token)
