"""A real HTTP receiver for outbound webhooks (http.server on 127.0.0.1 in a thread) and endpoint helpers."""
from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from leadmgmt.webhooks.models import WebhookEndpoint
from leadmgmt.webhooks.services.emit import subscriptions_forget


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """What the server got, and what it answers next: `answers` (status codes, then 200 for ever); with `echo`,
    the body it got as the body of its answer (a receiver quoting the event back)."""

    base_url: str = ""
    requests: list[Received] = field(default_factory=list)
    answers: deque = field(default_factory=deque)
    echo: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    def answer(self, *codes: int) -> None:
        with self.lock:
            self.answers.extend(codes)

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.requests)


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's hook name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                code = receiver.answers.popleft() if receiver.answers else 200
            reply = body if receiver.echo else json.dumps({"ok": code < 300, "n": len(receiver.requests)}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 (a free port) that records every POST it gets."""
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def endpoint_for(tenant, url: str, events: list[str], **fields) -> WebhookEndpoint:
    """An endpoint written directly (the harness); the process's subscription cache forgets the tenant."""
    endpoint = WebhookEndpoint.objects.unscoped().create(tenant=tenant, url=url, events=events, **fields)
    subscriptions_forget(tenant=tenant)
    return endpoint


def closed_port_url(path: str = "/hook") -> str:
    """A URL on 127.0.0.1 where nobody listens (a port bound, then closed again): the connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
