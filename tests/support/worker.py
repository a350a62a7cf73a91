"""Real Celery worker processes for tests: on queues of their own, against the test database."""
from __future__ import annotations

import contextlib
import json
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
# The worker sends every task it enqueues itself (scoring after signals, routing's re-runs, the
# emails of an escalation …) to the test's queues too, so nothing is left on the shared broker for
# another worker to pick up. argv[1]: the routes as JSON.
WORKER_MAIN = ("import json, sys; from leadmgmt.celery import app; "
               "app.conf.task_routes = json.loads(sys.argv[1]); app.worker_main(sys.argv[2:])")


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


def _queue_routes(queues: dict[str, str]) -> dict:
    """The settings' routes (CELERY_TASK_ROUTES) with each configured queue swapped for the test's own,
    and every other task to the test's default queue."""
    routes = {name: {**route, "queue": queues[route["queue"]]} for name, route in settings.CELERY_TASK_ROUTES.items()}
    return {**routes, "*": {"queue": queues[settings.CELERY_TASK_DEFAULT_QUEUE]}}


@contextlib.contextmanager
def isolated_queues(name: str) -> Iterator[dict[str, str]]:
    """Fresh broker queues standing in for the configured ones: {configured queue: the test's queue}.

    Every task this process sends goes to them, by the same routes as in production (beat's tasks
    and SLA/notification work to the stand-in of the periodic queue, the rest to the default one's);
    after the block the routes are restored and the queues deleted."""
    suffix = uuid.uuid4().hex[:12]
    queues = {settings.CELERY_TASK_DEFAULT_QUEUE: f"{name}-{suffix}",
              settings.CELERY_PERIODIC_QUEUE: f"{name}-{suffix}-periodic"}
    previous_routes, previous_eager = celery_app.conf.task_routes, celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    celery_app.conf.update(task_routes=_queue_routes(queues))
    try:
        yield queues
    finally:
        celery_app.conf.update(task_routes=previous_routes)
        celery_app.conf.task_always_eager = previous_eager
        with celery_app.connection_for_write() as connection:
            channel = connection.default_channel
            for queue in queues.values():
                channel.queue_delete(queue)
                # The queue's exchange bindings (Redis sets named after the queue) too: a fresh
                # channel does not know them, so queue_delete leaves them behind.
                channel.client.delete(channel.keyprefix_queue % queue, channel.keyprefix_binding_permanent % queue)


def queue_length(queue: str) -> int:
    """Messages waiting in a broker queue (not those a worker has taken)."""
    with celery_app.connection_for_write() as connection:
        return connection.default_channel.client.llen(queue)


def _worker_start(tmp_path: Path, *, queues: dict[str, str], consume: list[str], node: str,
                  env: dict[str, str] | None, include: tuple[str, ...]) -> tuple[subprocess.Popen, Path]:
    """Start `celery worker` (solo pool) on the test's queues `consume`, its output in a log file."""
    env = {**os.environ, "DATABASE_URL": test_database_url(), "REDIS_URL": settings.REDIS_URL,
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "CELERY_TASK_ALWAYS_EAGER": "false", **(env or {})}
    log = tmp_path / f"{node}.log"
    argv = [sys.executable, "-c", WORKER_MAIN, json.dumps(_queue_routes(queues)), "worker", "--pool=solo",
            "-Q", ",".join(consume), "-n", f"{node}@%h", "--without-mingle", "--without-gossip",
            "--without-heartbeat", "--loglevel=info"]
    if include:
        argv += ["--include", ",".join(include)]
    with log.open("wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT), log


def _worker_ready(process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while " ready." not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the worker did not come up (exit {process.poll()}):\n{log.read_text()}")
        time.sleep(0.1)


def _worker_stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextlib.contextmanager
def _workers(tmp_path: Path, *, queues: dict[str, str], consume: list[list[str]], env: dict[str, str] | None,
             include: tuple[str, ...]) -> Iterator[list[tuple[subprocess.Popen, Path]]]:
    """One worker per entry of `consume` (a list of the test's queues), started side by side; yield
    [(process, log)] once every one is ready; stop them all after."""
    started: list[tuple[subprocess.Popen, Path]] = []
    try:
        for queue_list in consume:
            started.append(_worker_start(tmp_path, queues=queues, consume=queue_list, node=queue_list[0], env=env,
                                         include=include))
        for process, log in started:
            _worker_ready(process, log)
        yield started
    finally:
        for process, _log in started:
            _worker_stop(process)


@contextlib.contextmanager
def real_worker(tmp_path: Path, *, name: str = "test-worker", env: dict[str, str] | None = None,
                include: tuple[str, ...] = ()) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """Start one `celery worker` (solo pool) consuming both of the test's queues (default and periodic), so
    the capture pipeline and beat's tasks alike run; yield (default queue, process, log) once it is ready;
    stop it and delete the queues after. `env`: extra environment; `include`: extra task modules."""
    with isolated_queues(name) as queues, _workers(tmp_path, queues=queues, consume=[list(queues.values())], env=env,
                                               include=include) as [(process, log)]:
        yield queues[settings.CELERY_TASK_DEFAULT_QUEUE], process, log


@contextlib.contextmanager
def real_workers(tmp_path: Path, *, name: str = "test-workers", env: dict[str, str] | None = None,
                 include: tuple[str, ...] = ()) -> Iterator[dict[str, tuple[str, subprocess.Popen, Path]]]:
    """One `celery worker` (solo pool) per queue, the way `make run` and docker-compose run them; yield
    {configured queue: (the test's queue, process, log)} once both are ready; stop them and delete the
    queues after."""
    with isolated_queues(name) as queues, _workers(tmp_path, queues=queues, consume=[[q] for q in queues.values()],
                                               env=env, include=include) as started:
        yield {configured: (queue, *worker) for (configured, queue), worker in zip(queues.items(), started, strict=True)}


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
