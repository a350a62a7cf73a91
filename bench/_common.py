"""Helpers shared by the scoring benches: a throwaway database, Django set-up, percentiles, tables."""
from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def require_services(script: str) -> None:
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        sys.exit("DATABASE_URL and REDIS_URL are needed: run `make bench`, or "
                 f"`python -m leadmgmt.embedded exec -- python bench/{script}` for embedded ones.")


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database `name` (works for host URLs and ?host=/socket ones)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


@contextlib.contextmanager
def _admin_cursor(url: str):
    import psycopg2

    conn = psycopg2.connect(with_database(url, "postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


@contextlib.contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """CREATE a fresh database on the DATABASE_URL server, migrate it, yield its URL, DROP it after.

    Benches write millions of rows; a database of their own keeps repeated runs from accumulating
    anything and keeps other users of the server's database (tests, `make run`) out of the figures.
    """
    from psycopg2 import sql

    base_url = os.environ["DATABASE_URL"]
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with _admin_cursor(base_url) as cursor:
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(base_url, name)
    try:
        subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--noinput", "-v", "0"],
                       check=True, cwd=BASE_DIR, env={**os.environ, "DATABASE_URL": url})
        yield url
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with _admin_cursor(base_url) as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def django_setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadmgmt.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


class Timer:
    """`with Timer() as t: ...` then `t.seconds`."""

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.started


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[min(998, max(0, round(p * 10) - 1))]


def say(message: str = "") -> None:
    print(message, flush=True)
