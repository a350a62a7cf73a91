"""Nurture fixtures: a real SMTP server (aiosmtpd) that keeps whole messages, and a tenant set up to send."""
from __future__ import annotations

import email
import email.policy
import socket
import threading

import pytest

from tests.support.nurture import NurtureSettingsFactory


class Inbox:
    """An aiosmtpd handler keeping every received message, parsed (headers and MIME parts)."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(parsed)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def start(self, port: int) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.controller.start()
        self.running = True

    def stop(self) -> None:
        if getattr(self, "running", False):
            self.controller.stop()
            self.running = False

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_port():
    return _free_port()


@pytest.fixture
def smtp_server(settings, smtp_port, monkeypatch):
    """A real SMTP server on a free port; Django's SMTP backend (and any worker started after) points at it."""
    inbox = Inbox()
    inbox.start(smtp_port)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    settings.PUBLIC_BASE_URL = "https://leads.acme.test"
    for key, value in {"EMAIL_BACKEND": settings.EMAIL_BACKEND, "EMAIL_HOST": "127.0.0.1",
                       "EMAIL_PORT": str(smtp_port), "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL}.items():
        monkeypatch.setenv(key, value)
    try:
        yield inbox
    finally:
        inbox.stop()


@pytest.fixture
def nurture_settings(tenant):
    return NurtureSettingsFactory(tenant=tenant)
