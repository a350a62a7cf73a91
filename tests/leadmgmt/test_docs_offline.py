"""`/api/redoc/` reaches no host but the app (page and vendored ReDoc bundle), and `/favicon.ico` is the app's own."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from rest_framework.test import APIClient

URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'<>)]*""")
REDOC_BUNDLE = Path(settings.BASE_DIR) / "static" / "vendor" / "redoc" / "redoc.standalone.js"


def test_the_redoc_page_names_no_outside_host():
    response = APIClient().get("/api/redoc/")
    assert response.status_code == 200
    html = response.content.decode()
    assert URL.findall(html) == []
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
    assert scripts == ["/static/vendor/redoc/redoc.standalone.js", "/static/js/redoc_init.js"]
    assert finders.find("vendor/redoc/redoc.standalone.js") and finders.find("js/redoc_init.js")
    policy = response["Content-Security-Policy"]  # the app's policy, with the page's own exceptions
    assert "connect-src 'self'" in policy and "img-src 'self' data:" in policy and "default-src 'self'" in policy


def test_the_vendored_redoc_bundle_loads_no_image_script_or_font_from_elsewhere():
    bundle = REDOC_BUNDLE.read_text()
    assert "cdn.redoc.ly" not in bundle and "fonts.googleapis" not in bundle and "fonts.gstatic" not in bundle
    assert not re.search(r"""\bsrc:\s*["']https?://""", bundle), "an element with a remote src"
    assert not re.search(r"""@import\s+url\(["']?https?://""", bundle)
    assert not re.search(r"^//# sourceMappingURL=", bundle, re.MULTILINE), "the map is not vendored"


def test_favicon_is_served_by_the_app(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body[:4] == b"\x00\x00\x01\x00", "an ICO file"
    assert body == (Path(settings.BASE_DIR) / "static" / "favicon.ico").read_bytes()


@pytest.mark.django_db
def test_pages_link_the_icon(client):
    html = client.get("/accounts/login/").content.decode()
    assert 'rel="icon" href="/favicon.ico"' in html and "/static/favicon.svg" in html


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_redoc_renders_with_every_request_to_the_app_itself(page, live_server):
    hosts = []
    # a blob: URL (ReDoc's search worker) is made by the page itself and carries the app's origin
    page.on("request", lambda request: hosts.append(urlparse(request.url.removeprefix("blob:")).netloc
                                                    or request.url[:30]))
    page.goto(f"{live_server.url}/api/redoc/")
    page.wait_for_selector("text=leadmgmt API")
    page.wait_for_load_state("networkidle")
    app = urlparse(live_server.url).netloc
    assert [h for h in hosts if h != app and not h.startswith("data:")] == []
    assert page.locator("img[alt='redocly logo']").count() == 0
