"""Where a URL taken from a request (`next`, a cancel or return link) may send the browser: one check for every view.

A page that redirects to, or links back to, a URL the request named is an open redirect unless that URL is
checked: `?next=//evil.test` would send a signed-in user to another site that looks like ours. Every such
URL goes through `safe_next_url`, which accepts only a path of this site and otherwise gives the view's own
fallback. A view never reflects the value as it came.
"""
from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

from django.utils.http import url_has_allowed_host_and_scheme

DOT_SEGMENTS = {".", ".."}


def safe_next_url(request, value: str | None, *, fallback: str, within: str | None = None) -> str:
    """`value` when it is a relative path of this site (under the path `within`, if given), else `fallback`.

    Accepted: `/path`, with a query and fragment. Refused: anything with a scheme or a host (`https://evil.test/`,
    `//evil.test`, `http:evil.test`, `javascript:…`), backslashes (`/\\evil.test`, which browsers read as
    `//evil.test`), whitespace or control characters (browsers drop tabs and newlines inside URLs), and, with
    `within`, `.`/`..` segments (`/manager/../admin/`). What passes is then checked by Django's
    `url_has_allowed_host_and_scheme`, the check of its own sign-in view, against this request's host and with
    `require_https` on a request that came over HTTPS.
    """
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return fallback
    if any(char.isspace() or unicodedata.category(char)[0] == "C" for char in value):
        return fallback
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return fallback
    if not url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        return fallback
    if within is not None:
        segments = [unquote(segment) for segment in parts.path.split("/")]
        if not parts.path.startswith(within) or DOT_SEGMENTS.intersection(segments):
            return fallback
    return value
