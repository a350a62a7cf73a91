"""A real Celery worker process for tests: on a queue of its own, against the test database."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import dj_database_url
import pytest
from django.conf import settings
from django.db import connection

from leadmgmt.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60
# The worker sends every task it enqueues itself (scoring after signals, routing's re-runs …) to
# the test's queue too, so nothing is left on the shared broker for another worker to pick up.
WORKER_MAIN = ("import sys; from leadmgmt.celery import app; "
               "app.conf.task_routes = {'*': {'queue': sys.argv[1]}}; app.worker_main(sys.argv[2:])")


def test_database_url() -> str:
    """DATABASE_URL for a subprocess (worker, manage.py command) that must use this run's test database.

    The URL the settings were parsed from, with only the database name swapped for the test
    database's (pytest-django's `test_` prefix, xdist's `_gwN` suffix). User, password, host, port
    and every query parameter are kept as given: the embedded PostgreSQL (pgserver) listens on a
    unix socket only and its URL names the socket directory in `?host=/path`, which a URL rebuilt
    from HOST/PORT loses, sending the subprocess to whatever answers on localhost:5432.
    """
    parts = urlsplit(settings.DATABASE_URL)
    url = urlunsplit(parts._replace(path="/" + quote(connection.settings_dict["NAME"], safe="")))
    # Refuse to hand a subprocess a URL that reaches another server or database than this process.
    # DATABASE_URL is the tables' owner; the app's own login (USER) is derived from it by the settings.
    keys = ("NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
    theirs = dj_database_url.parse(url)
    ours = dict(connection.settings_dict)
    if "OWNER_USER" in ours:
        ours.update(USER=ours["OWNER_USER"], PASSWORD=ours["OWNER_PASSWORD"])
    mismatched = [k for k in keys if (theirs.get(k) or None) != (ours.get(k) or None)]
    if mismatched:
        raise AssertionError(f"test_database_url() would not reach the test database: {mismatched} differ "
                             f"({url!r} vs. the connection's settings)")
    return url


test_database_url.__test__ = False  # a helper, not a test


@contextlib.contextmanager
def real_worker(tmp_path: Path, *, name: str = "test-worker") -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """Start `celery worker` (solo pool) on a fresh queue that every task of this process and of the
    worker goes to; yield (queue, process, log) once it is ready; stop it and delete the queue after."""
    queue = f"{name}-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "DATABASE_URL": test_database_url(), "REDIS_URL": settings.REDIS_URL,
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "CELERY_TASK_ALWAYS_EAGER": "false"}
    log = tmp_path / "worker.log"
    previous_routes, previous_eager = celery_app.conf.task_routes, celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    celery_app.conf.update(task_routes={"*": {"queue": queue}})
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER_MAIN, queue, "worker", "--pool=solo", "-Q", queue, "-n", f"{queue}@%h",
             "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel=info"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while " ready." not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker did not come up (exit {process.poll()}):\n{log.read_text()}")
            time.sleep(0.1)
        yield queue, process, log
    finally:
        celery_app.conf.update(task_routes=previous_routes)
        celery_app.conf.task_always_eager = previous_eager
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        with celery_app.connection_for_write() as connection:
            channel = connection.default_channel
            channel.queue_delete(queue)
            # The queue's exchange bindings (Redis sets named after the queue) too: a fresh
            # channel does not know them, so queue_delete leaves them behind.
            channel.client.delete(channel.keyprefix_queue % queue, channel.keyprefix_binding_permanent % queue)


def wait_until(condition, process, log: Path, what: str, timeout: float = 30) -> None:
    """Poll `condition` until true; fail with the worker's log if it exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"the worker exited ({process.returncode}) before {what}:\n{log.read_text()}")
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {timeout}s; worker log:\n{log.read_text()}")
