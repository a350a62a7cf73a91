"""Forwarded headers count only from TRUSTED_PROXIES: per-IP intake limits, sign-in lockouts, the HTTPS flag."""
from __future__ import annotations

import pytest
from django.test import RequestFactory

from leadmgmt.proxies import TrustedProxyMiddleware, client_ip
from leads.models import Lead
from leads.throttles import IntakeIpRateThrottle
from tests.support.intake import post_json

pytestmark = pytest.mark.django_db


def request(remote: str, forwarded: str | None = None, **meta):
    extra = {"REMOTE_ADDR": remote, **meta}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_the_forwarded_for_header_is_ignored(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(request("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


def test_an_untrusted_peer_cannot_spoof_its_address(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.5"]
    assert client_ip(request("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


def test_a_trusted_proxy_names_the_client_and_chained_proxies_are_skipped(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24", "192.0.2.1"]
    assert client_ip(request("10.0.0.5", "198.51.100.4")) == "198.51.100.4"
    # the left-most entries are the client's to write: only the right-most untrusted hop counts
    assert client_ip(request("10.0.0.5", "6.6.6.6, 198.51.100.4, 192.0.2.1")) == "198.51.100.4"
    assert client_ip(request("10.0.0.5", "garbage, 10.0.0.7")) == "10.0.0.5"  # nothing usable: the proxy
    assert client_ip(request("10.0.0.5")) == "10.0.0.5"
    assert client_ip(request("not-an-ip")) is None


def test_forwarded_headers_from_untrusted_peers_are_dropped_before_django_reads_them(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.5"]
    seen = {}

    def view(req):
        seen.update(secure=req.is_secure(), meta=dict(req.META))

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    middleware = TrustedProxyMiddleware(view)
    middleware(request("203.0.113.9", "1.2.3.4", HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="evil.test"))
    assert seen["secure"] is False
    assert not {"HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST"} & set(seen["meta"])

    middleware(request("10.0.0.5", "1.2.3.4", HTTP_X_FORWARDED_PROTO="https"))
    assert seen["secure"] is True and seen["meta"]["HTTP_X_FORWARDED_FOR"] == "1.2.3.4"


def test_a_spoofed_forwarded_for_does_not_dodge_the_intake_ip_limit(client, lead_form, monkeypatch, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.5"]
    monkeypatch.setattr(IntakeIpRateThrottle, "rate", "2/min")
    for n in range(2):
        response = post_json(client, {"email": f"s{n}@rate.example"}, form=lead_form, REMOTE_ADDR="203.0.113.1",
                             HTTP_X_FORWARDED_FOR=f"10.9.8.{n}")
        assert response.status_code == 201
    blocked = post_json(client, {"email": "s3@rate.example"}, form=lead_form, REMOTE_ADDR="203.0.113.1",
                        HTTP_X_FORWARDED_FOR="10.9.8.99")
    assert blocked.status_code == 429
    assert not Lead.objects.unscoped().filter(email="s3@rate.example").exists()


def test_behind_a_trusted_proxy_each_client_has_its_own_intake_limit(client, lead_form, monkeypatch, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.5"]
    monkeypatch.setattr(IntakeIpRateThrottle, "rate", "1/min")
    first = post_json(client, {"email": "p1@rate.example"}, form=lead_form, REMOTE_ADDR="10.0.0.5",
                      HTTP_X_FORWARDED_FOR="198.51.100.1")
    again = post_json(client, {"email": "p2@rate.example"}, form=lead_form, REMOTE_ADDR="10.0.0.5",
                      HTTP_X_FORWARDED_FOR="198.51.100.1")
    other = post_json(client, {"email": "p3@rate.example"}, form=lead_form, REMOTE_ADDR="10.0.0.5",
                      HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert (first.status_code, again.status_code, other.status_code) == (201, 429, 201)
