"""Signing a delivery: HMAC-SHA256 over "{timestamp}.{body}" with each of the endpoint's signing secrets.

Headers of every request (README, "Outbound webhooks"):
    Webhook-Id: <event id>              the same on every attempt and "send again": deduplicate by it
    Webhook-Timestamp: <unix seconds>   when this attempt was signed: refuse old ones (replays)
    Webhook-Signature: v1=<hex> [v1=<hex>]   one per secret (two during a rotation's grace period)
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """hex(HMAC-SHA256(secret, f"{timestamp}.{body}"))."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(*, secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    """The Webhook-Signature value: `v1=<hex>` per secret, separated by a space."""
    return " ".join(f"v1={signature(secret=s, timestamp=timestamp, body=body)}" for s in secrets)


def signature_verify(*, secret: str, header: str, timestamp: int | str, body: bytes) -> bool:
    """What a receiver does (and the tests): any `v1=` signature of the header matches (constant time)."""
    expected = signature(secret=secret, timestamp=int(timestamp), body=body)
    return any(hmac.compare_digest(part[3:], expected) for part in header.split() if part.startswith("v1="))
