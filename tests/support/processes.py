"""Helpers of the tests that start processes of their own: an environment without services, the processes under a data directory."""
from __future__ import annotations

import os
from pathlib import Path

import psutil

BASE_DIR = Path(__file__).resolve().parents[2]


PROBE = """
import os, psycopg2, redis
conn = psycopg2.connect(os.environ["DATABASE_URL"])
with conn.cursor() as cur:
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)
conn.close()
assert redis.Redis.from_url(os.environ["REDIS_URL"]).ping()
print("PROBE-OK", os.environ["LEADMGMT_EMBEDDED_POSTGRES"], os.environ["LEADMGMT_EMBEDDED_REDIS"])
"""


def env_without_services(data_dir: Path) -> dict[str, str]:
    """This process's environment with its DATABASE_URL/REDIS_URL removed, on a data dir of its own.

    The suite may itself run on embedded services (a plain `make test`, as CI does): their URLs
    and markers must not leak in, and the launcher under test must not share `.data/` with them.
    """
    services = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "LEADMGMT_EMBEDDED_POSTGRES",
                "LEADMGMT_EMBEDDED_REDIS"}
    env = {k: v for k, v in os.environ.items() if k not in services}
    env["LEADMGMT_DATA_DIR"] = str(data_dir)
    return env


def processes_under(data_dir: Path) -> list[psutil.Process]:
    """Processes working in data_dir: postgres chdirs to its PGDATA and redis-server to its --dir.

    (redis-server rewrites its command line, so the working directory is what identifies it.)
    """
    root = str(data_dir.resolve())
    found = []
    for proc in psutil.process_iter(["pid", "name"]):
        try:
            cwd = proc.cwd()
        except (psutil.Error, OSError):
            continue
        if cwd == root or cwd.startswith(root + os.sep):
            found.append(proc)
    return found
