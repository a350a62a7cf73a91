"""The password reset form, rate-limited per email address and per client IP (Redis counters)."""
from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache

from leadmgmt.proxies import client_ip

log = logging.getLogger("leadmgmt.security")
WINDOW_SECONDS = 3600
LIMIT_MESSAGE = ("Too many password reset requests. No email was sent; wait an hour and try again, "
                 "or ask your administrator.")


def _hit(kind: str, value: str) -> int:
    """Count one request for `kind`/`value` in the current hour; returns the count so far."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    key = f"pwreset:{kind}:{digest}"
    cache.add(key, 0, WINDOW_SECONDS)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, WINDOW_SECONDS)
        return 1


def reset_allowed(*, email: str, ip_address: str | None) -> bool:
    """Count this request; False once the email or the IP went over the hourly limit."""
    limit = settings.PASSWORD_RESET_LIMIT_PER_HOUR
    by_email = _hit("email", email.strip().lower())
    by_ip = _hit("ip", ip_address or "unknown")
    if by_email > limit or by_ip > limit:
        log.warning("password reset refused (limit %s/h): ip=%s email_count=%s ip_count=%s",
                    limit, ip_address, by_email, by_ip)
        return False
    return True


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    """Django's reset form; above the limit it answers 429 with a clear message and sends nothing."""

    def form_valid(self, form):
        if not reset_allowed(email=form.cleaned_data["email"], ip_address=client_ip(self.request)):
            form.add_error("email", LIMIT_MESSAGE)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().form_valid(form)
