"""`safe_next_url` (leadmgmt/urls_safe.py), the one check of every `next`, cancel and return URL a request names:
a path of this site passes, anything that could leave the site (or, with `within`, the section) gives the fallback."""
from __future__ import annotations

import pytest
from django.test import RequestFactory

from leadmgmt.urls_safe import safe_next_url

# Each is read by some browser as another site, a script, or not a path of ours at all.
HOSTILE = [
    "javascript:alert(1)", "//evil.test", "https://evil.test/", "/\\evil.test", "\\\\evil.test", "http:evil.test",
    "JavaScript:alert(1)", " //evil.test", "/\t/evil.test", "/\n/evil.test", "///evil.test", "\\/evil.test",
    "//evil.test/manager/", "https:/evil.test", "data:text/html,<script>alert(1)</script>", "evil.test",
    "queue/", "", None, "http://testserver/queue/", "//testserver/queue/", "/queue/\x00", "/queue/\u2028",
]
SAME_SITE = ["/", "/queue/", "/queue/?source=webinar&page=2", "/leads/0b2c1f6e-0000-4000-8000-000000000001/#log",
             "/manager/unassigned/?page=3", "/%2F%2Fevil.test"]  # the last: one path segment of this site


@pytest.fixture
def request_():
    return RequestFactory().get("/")


@pytest.mark.parametrize("value", HOSTILE)
def test_anything_that_could_leave_the_site_gives_the_fallback(request_, value):
    assert safe_next_url(request_, value, fallback="/home/") == "/home/"


@pytest.mark.parametrize("value", SAME_SITE)
def test_a_path_of_this_site_is_kept_as_it_came(request_, value):
    assert safe_next_url(request_, value, fallback="/home/") == value


@pytest.mark.parametrize(("value", "expected"), [
    ("/manager/unassigned/?page=2", "/manager/unassigned/?page=2"),
    ("/manager/", "/manager/"),
    ("/admin/", "/fallback/"),
    ("/managerial/", "/fallback/"),
    ("/manager/../admin/", "/fallback/"),
    ("/manager/%2e%2e/admin/", "/fallback/"),
    ("/manager/./unassigned/", "/fallback/"),
])
def test_within_keeps_the_section(request_, value, expected):
    assert safe_next_url(request_, value, fallback="/fallback/", within="/manager/") == expected


def test_over_https_the_checks_of_djangos_own_sign_in_apply_with_require_https():
    secure = RequestFactory().get("/", secure=True)
    assert safe_next_url(secure, "/queue/", fallback="/") == "/queue/"
    assert safe_next_url(secure, "http://testserver/queue/", fallback="/") == "/"
