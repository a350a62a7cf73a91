"""DRF authentication: tenant API keys (Bearer) and signed-in users; both set the current tenant."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from .context import set_current_tenant
from .models import ApiKey
from .selectors import api_key_lookup, membership_for_request

LAST_USED_GRANULARITY = timedelta(minutes=1)


class ApiKeyUser:
    """The request.user of an API-key request: not a person, authenticated for one tenant."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key

    def get_username(self) -> str:
        return f"api-key:{self.api_key.prefix}"

    def __str__(self) -> str:
        return self.get_username()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        api_key = api_key_lookup(raw=parts[1])
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        request.tenant = api_key.tenant
        request.membership = None
        request.api_key = api_key
        set_current_tenant(api_key.tenant)
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_GRANULARITY:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request):
        return self.keyword


class TenantSessionAuthentication(authentication.SessionAuthentication):
    """Session auth (CSRF enforced) whose tenant is the user's active membership."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        django_request = request._request
        membership = getattr(django_request, "membership", None)
        if membership is None:
            from .middleware import SESSION_TENANT_KEY

            membership = membership_for_request(user=user, tenant_id=django_request.session.get(SESSION_TENANT_KEY))
        request.membership = membership
        request.tenant = membership.tenant if membership else None
        request.api_key = None
        if membership is not None:
            set_current_tenant(membership.tenant)
        return result
