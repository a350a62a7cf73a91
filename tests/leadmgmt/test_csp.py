"""The Content-Security-Policy without a browser: the header on pages, the ReDoc page's nonce, and no template or
admin HTML of ours that the policy would refuse (inline <script>/<style>, style="", on*= handlers, javascript:
links, htmx's eval'd hx-on and trigger filters). tests/leadmgmt/browser/test_csp.py runs every page in chromium."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

ROOT = Path(settings.BASE_DIR)
TEMPLATE_DIRS = [ROOT / "templates", *(ROOT / app / "templates" for app in ("leads", "scoring", "routing",
                                                                           "nurture", "workspace"))]
# What the policy refuses, as it would appear in a template or in HTML built in Python (format_html, widget attrs).
REFUSED = {
    "inline <script>": re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.I),
    "inline <style>": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"""\sstyle=["'{]|["']style["']\s*:""", re.I),
    "on* handler": re.compile(r"""\son[a-z]+\s*=\s*["']""", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
    "htmx eval (hx-on, trigger filter, js: values)": re.compile(r"hx-on|hx-trigger=\"[^\"]*\[|hx-vals=['\"]js:", re.I),
}
# HTML that never reaches a browser under our policy: nurture emails (read in mail clients), the lead form snippet
# (shown as text in the admin and pasted into customers' own sites).
NOT_SERVED = {ROOT / "nurture" / "emails.py", ROOT / "leads" / "admin.py"}


TEMPLATE_COMMENT = re.compile(r"{#.*?#}|{% comment %}.*?{% endcomment %}", re.S)


def _template_text(path: Path) -> str:
    """The template without its comments (kept as blank lines, so line numbers stay right)."""
    return TEMPLATE_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text())


def _python_strings(path: Path) -> list[tuple[int, str]]:
    """The string literals of a module that may become HTML (docstrings and comments are prose, not HTML)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)
                  and isinstance(node.value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docstrings]


def _sources():
    """(file, first line, text) of every template of ours and every string of our Python that may become HTML."""
    for directory in TEMPLATE_DIRS:
        if directory.exists():
            for path in sorted(directory.rglob("*.html")):
                yield path.relative_to(ROOT), 1, _template_text(path)
    for app in ("leadmgmt", "leads", "scoring", "routing", "nurture", "workspace"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts and path not in NOT_SERVED:
                for number, text in _python_strings(path):
                    yield path.relative_to(ROOT), number, text


def test_no_template_or_admin_html_needs_unsafe_inline_or_eval():
    found = [f"{path}:{first + text.count(chr(10), 0, match.start())}: {what}: {match.group(0)!r}"
             for path, first, text in _sources() for what, pattern in REFUSED.items()
             for match in pattern.finditer(text)]
    assert found == []


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/password_reset/", "/n/u/not-a-token/",
                                  "/api/docs/", "/api/redoc/"])
def test_pages_carry_the_policy(client, path):
    response = client.get(path)
    assert response.status_code in (200, 400)
    policy = response["Content-Security-Policy"]
    for part in ("default-src 'self'", "script-src 'self'", "img-src 'self' data:", "connect-src 'self'",
                 "object-src 'none'", "base-uri 'self'", "form-action 'self'", "frame-ancestors 'none'"):
        assert part in policy, (path, part, policy)
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


@pytest.mark.django_db
def test_only_the_redoc_page_allows_its_nonced_styles_and_blob_worker(client):
    plain = client.get("/accounts/login/")["Content-Security-Policy"]
    assert "style-src 'self';" in plain + ";" and "worker-src 'self';" in plain + ";" and "nonce-" not in plain
    response = APIClient().get("/api/redoc/")
    policy = response["Content-Security-Policy"]
    nonce = re.search(r"style-src 'self' 'nonce-([A-Za-z0-9+/=]+)'", policy).group(1)
    assert "worker-src 'self' blob:" in policy
    html = response.content.decode()
    # both scripts carry it: the bundle's load-time <style> elements and ReDoc.init's (static/js/redoc_init.js)
    assert html.count(f'nonce="{nonce}"') == 2
    assert nonce not in APIClient().get("/api/redoc/")["Content-Security-Policy"], "a fresh nonce per answer"


@pytest.mark.django_db
def test_swagger_ui_loads_its_start_up_script_as_a_file(client):
    html = client.get("/api/docs/").content.decode()
    assert re.findall(r"<script(?![^>]*src=)", html) == []
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle(" in script.content.decode()
