"""Browser tests, a pytest plugin (tests/conftest.py loads it): Playwright driving Debian's chromium, its
launch flags, a screenshot under artifacts/screenshots/ for each failing test, and `wait_for_js`."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI; .ci/run installs Debian's chromium package")
        pytest.skip(f"browser tests need Debian chromium at {CHROMIUM}: run `apt-get install -y chromium` to enable them")
    # Playwright's sync API runs an event loop; Django must allow sync DB calls from this thread.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()


def wait_for_js(page, expression: str, *, timeout: float = 15_000) -> None:
    """Wait until the JavaScript `expression` is truthy in the page. Playwright's own `page.wait_for_function`
    evaluates its expression with the page's `eval`, which the app's Content-Security-Policy refuses (no
    'unsafe-eval'); `page.evaluate` goes through the DevTools protocol, outside the page's policy."""
    from playwright.sync_api import Error

    deadline = time.monotonic() + timeout / 1000
    while True:
        try:
            if page.evaluate(expression):
                return
        except Error as error:  # a navigation or swap replaced the document meanwhile: ask the new one
            if "context was destroyed" not in str(error) and "navigat" not in str(error):
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} ms waiting for: {expression}")
        page.wait_for_timeout(100)
