"""Team and invitation test helpers: the invitation link out of an email, the token out of a link, an admin."""
from __future__ import annotations

import re

from leadmgmt.tenancy.models import Role
from tests.support.workspace import person

LINK = re.compile(r"https?://\S+/invite/(?P<token>[A-Za-z0-9_-]+)/")


def invitation_link(body: str) -> str:
    """The invitation link of an email body (fails the test when there is none)."""
    match = LINK.search(body)
    assert match, f"no invitation link in:\n{body}"
    return match.group(0)


def token_of(link: str) -> str:
    match = LINK.search(link)
    assert match, link
    return match.group("token")


def tenant_admin(tenant, username: str):
    return person(tenant, role=Role.ADMIN, username=username)
