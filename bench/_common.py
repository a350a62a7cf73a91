"""Helpers shared by the benches: a throwaway database, Django set-up, Celery processes, percentiles, output."""
from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
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


def bench_redis() -> str:
    """Point REDIS_URL (broker, cache, rate limits) at a Redis database of the benches' own on the same server
    (BENCH_REDIS_DB, default 15) and empty it: a run starts with no task left over by an earlier run (whose
    throwaway database is gone) and never touches the queues of a `make run` on the same Redis."""
    parts = urllib.parse.urlsplit(os.environ["REDIS_URL"])
    url = urllib.parse.urlunsplit(parts._replace(path="/" + os.environ.get("BENCH_REDIS_DB", "15")))
    import redis

    redis.Redis.from_url(url).flushdb()
    os.environ["REDIS_URL"] = url
    os.environ.pop("CELERY_BROKER_URL", None)
    return url


def django_setup(database_url: str, *, own_redis_db: bool = True) -> None:
    """Django for a bench on `database_url`; `own_redis_db`: on the benches' own Redis database
    (`bench_redis`; off for a bench that starts a Redis server of its own)."""
    os.environ["DATABASE_URL"] = database_url
    if own_redis_db:
        bench_redis()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadmgmt.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    bench_harness()


def bench_harness() -> None:
    """The bench's own set-up and checks (tenants, generated leads, counts) see every tenant: the
    `bench_harness` path of leadmgmt/tenancy/cross_tenant.py, for this thread. What a bench measures
    runs in the web and worker processes, or in `tenant_scope(...)` blocks, under row-level security."""
    from leadmgmt.tenancy.cross_tenant import cross_tenant

    global _HARNESS
    _HARNESS = cross_tenant("bench_harness")  # kept: a collected generator would close the block
    _HARNESS.__enter__()


_HARNESS = None


def maintenance(*statements: str) -> None:
    """VACUUM, ANALYZE and CHECKPOINT as the tables' owner (the app role owns no table), outside a transaction."""
    from django.db import connection

    from leadmgmt.db.backend.base import owner_mode

    with owner_mode(connection), connection.cursor() as cursor:
        for statement in statements:
            try:
                cursor.execute(statement)
            except Exception as exc:  # CHECKPOINT needs superuser or pg_checkpoint; skip it if not granted
                if not statement.startswith("CHECKPOINT"):
                    raise
                say(f"(skipped {statement}: {exc})")


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


class Celery:
    """A `celery -A leadmgmt ...` command in its own process group, output in a temp file; ready when
    its log shows `ready_marker`."""

    def __init__(self, name: str, argv: list[str], *, ready_marker: str):
        self.name, self.ready_marker = name, ready_marker
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        # Notification emails go nowhere: beat's email task must not depend on an SMTP server here.
        env = {**os.environ, "CELERY_TASK_ALWAYS_EAGER": "false",
               "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}
        self.proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "leadmgmt", *argv], cwd=BASE_DIR,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    @classmethod
    def worker(cls, *, concurrency: int, queues: tuple[str, ...] | None = None, node: str | None = None) -> Celery:
        """A prefork worker consuming `queues` (default: the default and the periodic queue in one worker,
        so a bench that starts one worker runs every task); `node`: its node name (default: unique)."""
        from django.conf import settings

        queues = queues or (settings.CELERY_TASK_DEFAULT_QUEUE, settings.CELERY_PERIODIC_QUEUE)
        name = "worker" if len(queues) > 1 else f"worker-{queues[0]}"
        node = node or f"bench-{'-'.join(queues)}-{uuid.uuid4().hex[:8]}"
        return cls(name, ["worker", "--pool=prefork", f"--concurrency={concurrency}", "-Q", ",".join(queues),
                          "-n", f"{node}@%h", "--without-mingle", "--without-gossip", "--loglevel=info"],
                   ready_marker=" ready.")

    @classmethod
    def beat(cls) -> Celery:
        # The schedule lives in the (throwaway) database: nothing is written to the checkout.
        return cls("beat", ["beat", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
                            "--loglevel=info"], ready_marker="beat: Starting")

    def text(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.ready_marker in self.text():
                return
            time.sleep(0.1)
        raise RuntimeError(f"celery {self.name} did not come up; its log:\n{self.text()[-4000:]}")

    def errors(self) -> list[str]:
        """Log lines of failed or retried tasks (the figures are only meaningful without them)."""
        return [line for line in self.text().splitlines()
                if " ERROR/" in line or "Traceback" in line or "Retry in" in line]

    def stop(self, *, keep_log: bool = False) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        # Also reaps pool processes that outlived their parent.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait()
        if keep_log:
            say(f"celery {self.name} log kept: {self.log.name}")
        else:
            Path(self.log.name).unlink(missing_ok=True)
