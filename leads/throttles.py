"""Rate limits of the public intake endpoint: per client IP and per form key (Redis-backed DRF throttles)."""
from __future__ import annotations

import ipaddress

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


def client_ip(request) -> str | None:
    """The client's IP address, or None when it is not a valid one.

    `X-Forwarded-For` is trusted only as far as `REST_FRAMEWORK["NUM_PROXIES"]` says there are
    proxies in front of the app; otherwise anyone could dodge the per-IP limit (DRF's own
    default uses the whole header when NUM_PROXIES is unset).
    """
    address = request.META.get("REMOTE_ADDR")
    num_proxies = api_settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if num_proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",")]
        address = hops[-min(num_proxies, len(hops))]
    try:
        return str(ipaddress.ip_address((address or "").strip()))
    except ValueError:
        return None


class IntakeIpRateThrottle(SimpleRateThrottle):
    """Submissions per client IP (`intake_ip` rate); CORS preflights are not counted."""

    scope = "intake_ip"
    rate: str | None = None  # None: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]; tests may set one

    def allow_request(self, request, view) -> bool:
        if request.method == "OPTIONS":
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request) or "unknown"}


class IntakeFormRateThrottle(SimpleRateThrottle):
    """Submissions per form (`intake_form` rate); checked once the view has resolved `view.form`."""

    scope = "intake_form"
    rate: str | None = None  # None: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]; tests may set one

    def get_cache_key(self, request, view) -> str | None:
        form = getattr(view, "form", None)
        if form is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": form.pk}
