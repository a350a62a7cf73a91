"""Rate limits of the public intake endpoint: per client IP and per form key (Redis-backed DRF throttles)."""
from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle

from leadmgmt.proxies import client_ip

__all__ = ["IntakeFormRateThrottle", "IntakeIpRateThrottle", "client_ip"]


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
