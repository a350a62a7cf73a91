"""Signed tokens of the links in nurture emails: unsubscribe, click-through and open pixel.

Each token is signed with the project's SECRET_KEY under its own salt (a click token cannot be
used as an unsubscribe token) and carries the message id; a click token also carries the target
URL, so the redirect can never be turned into an open redirect. Tokens expire after
NURTURE_LINK_MAX_AGE_DAYS (default 365): an old email's links then answer with a clear 4xx page.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

UNSUBSCRIBE_SALT = "nurture.unsubscribe"
CLICK_SALT = "nurture.click"
OPEN_SALT = "nurture.open"


class TokenInvalid(Exception):
    """The token was forged, altered or has expired; `expired` tells which."""

    def __init__(self, message: str, *, expired: bool = False):
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class ClickTarget:
    message_id: uuid.UUID
    url: str


def _max_age() -> int:
    return int(getattr(settings, "NURTURE_LINK_MAX_AGE_DAYS", 365)) * 86400


def _load(token: str, *, salt: str):
    try:
        return signing.loads(token, salt=salt, max_age=_max_age())
    except signing.SignatureExpired as exc:
        raise TokenInvalid("This link has expired.", expired=True) from exc
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise TokenInvalid("This link is not valid.") from exc


def _message_id(value) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError) as exc:
        raise TokenInvalid("This link is not valid.") from exc


def unsubscribe_token(message_id) -> str:
    return signing.dumps(str(message_id), salt=UNSUBSCRIBE_SALT)


def unsubscribe_token_read(token: str) -> uuid.UUID:
    return _message_id(_load(token, salt=UNSUBSCRIBE_SALT))


def open_token(message_id) -> str:
    return signing.dumps(str(message_id), salt=OPEN_SALT)


def open_token_read(token: str) -> uuid.UUID:
    return _message_id(_load(token, salt=OPEN_SALT))


def click_token(message_id, url: str) -> str:
    return signing.dumps({"m": str(message_id), "u": url}, salt=CLICK_SALT, compress=True)


def click_token_read(token: str) -> ClickTarget:
    data = _load(token, salt=CLICK_SALT)
    if not isinstance(data, dict) or not isinstance(data.get("u"), str):
        raise TokenInvalid("This link is not valid.")
    url = data["u"]
    if not url.lower().startswith(("http://", "https://")):
        raise TokenInvalid("This link is not valid.")
    return ClickTarget(message_id=_message_id(data.get("m")), url=url)
