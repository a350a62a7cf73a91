"""The client's IP address behind reverse proxies: X-Forwarded-* count only when the peer is trusted."""
from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO",
                     "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_SSL", "HTTP_FORWARDED")


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def trusted_networks() -> tuple:
    """settings.TRUSTED_PROXIES (addresses or CIDR ranges) as networks; empty: no proxy is trusted."""
    return _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))


def _parse(address: str | None):
    try:
        return ipaddress.ip_address((address or "").strip())
    except ValueError:
        return None


def is_trusted_proxy(address: str | None) -> bool:
    ip = _parse(address)
    return ip is not None and any(ip in net for net in trusted_networks())


def client_ip(request) -> str | None:
    """The client's IP address, or None when it is not a valid one.

    `X-Forwarded-For` is honoured only when the direct peer (REMOTE_ADDR) is one of
    settings.TRUSTED_PROXIES; it is then read right to left, skipping further trusted proxies, and
    the first address not in that list is the client. From any other peer the header is ignored, so
    a spoofed header cannot dodge per-IP limits or sign-in lockouts.
    """
    peer = request.META.get("REMOTE_ADDR")
    if is_trusted_proxy(peer):
        hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        for hop in reversed(hops):
            ip = _parse(hop)
            if ip is None:
                break  # a garbled hop: trust nothing further left of it
            if not is_trusted_proxy(str(ip)):
                return str(ip)
    ip = _parse(peer)
    return str(ip) if ip is not None else None


class TrustedProxyMiddleware:
    """Drop X-Forwarded-* headers sent by peers that are not trusted proxies.

    Django's SECURE_PROXY_SSL_HEADER (and anything else reading these headers) then only ever sees
    values a configured proxy set; gunicorn applies the same rule to the URL scheme with
    FORWARDED_ALLOW_IPS.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_trusted_proxy(request.META.get("REMOTE_ADDR")):
            for header in FORWARDED_HEADERS:
                request.META.pop(header, None)
        return self.get_response(request)
