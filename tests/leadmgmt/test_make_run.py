"""`make run` end to end: embedded services, migrate, demo tenant, web + both workers + beat, and a clean Ctrl-C."""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import psutil
import pytest

from tests.support.processes import BASE_DIR, env_without_services, processes_under

pytestmark = pytest.mark.slow

STARTUP_TIMEOUT = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def read_until_banner(proc: subprocess.Popen, lines: queue.Queue, log: list[str]) -> dict[str, str]:
    """Collect the launcher's output until the banner's closing rule; return the printed keys."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    found: dict[str, str] = {}
    in_banner = False
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        log.append(line)
        if m := re.search(r"leadmgmt is running at (\S+?)/?$", line):
            found["url"], in_banner = m.group(1), True
        elif m := re.search(r"^\s+Form key\s+(\S+)", line):
            found["form_key"] = m.group(1)
        elif m := re.search(r"^\s+API key\s+(\S+)", line):
            found["api_key"] = m.group(1)
        elif in_banner and line.startswith("====="):
            return found
    tail = "".join(log[-60:])
    raise AssertionError(f"no banner within {STARTUP_TIMEOUT}s:\n{tail}")


def read_until_workers_ready(proc: subprocess.Popen, lines: queue.Queue, log: list[str]) -> set[str]:
    """Collect the launcher's output until both Celery workers said which queue they consume and that they
    are ready (their lines carry the child's label: `worker   | …`, `periodic | …`); return what was seen."""
    wanted = {
        "worker consumes celery": re.compile(r"^worker\s+\| .*\.> celery\s+exchange="),
        "worker ready": re.compile(r"^worker\s+\| .*\bworker@\S+ ready\."),
        "periodic consumes periodic": re.compile(r"^periodic\s+\| .*\.> periodic\s+exchange="),
        "periodic ready": re.compile(r"^periodic\s+\| .*\bperiodic@\S+ ready\."),
    }
    seen = {what for what, pattern in wanted.items() for line in log if pattern.search(line)}
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while seen != set(wanted) and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        log.append(line)
        seen |= {what for what, pattern in wanted.items() if pattern.search(line)}
    return seen


def test_make_run_serves_the_demo_tenant_and_ctrl_c_stops_everything(service_data_dir):
    data_dir = service_data_dir
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "leadmgmt.embedded", "run", "--port", str(port), "--workers", "1",
         "--worker-concurrency", "1"],
        env=env_without_services(data_dir), cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, bufsize=1,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    log: list[str] = []
    children: list[psutil.Process] = []
    try:
        printed = read_until_banner(proc, lines, log)
        base = printed["url"]
        assert base == f"http://127.0.0.1:{port}"
        assert printed["form_key"].startswith("lf_") and printed["api_key"].startswith("lm_")
        assert (data_dir / "demo_credentials.json").exists()

        assert http("GET", f"{base}/healthz") == (200, '{"status": "ok"}')
        status, page = http("GET", f"{base}/admin/login/")
        assert status == 200 and "csrfmiddlewaretoken" in page
        assert http("GET", f"{base}/static/admin/css/base.css")[0] == 200, "static files are served by the app"

        status, body = http("POST", f"{base}/api/v1/intake/",
                            {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"},
                            {"X-Form-Key": printed["form_key"]})
        assert status == 201, body
        assert json.loads(body)["result"] == "created"

        launcher = psutil.Process(proc.pid)
        children = launcher.children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "gunicorn" in names and "worker" in names and "beat" in names and "redis-server" in names
        # One worker per queue (beat's periodic work on its own), each with a node name of its own.
        commands = [c.cmdline() for c in children if "worker" in c.cmdline() and "-Q" in c.cmdline()]
        consumed = {cmd[cmd.index("-Q") + 1]: cmd for cmd in commands}
        assert set(consumed) == {"celery", "periodic"}, commands
        assert consumed["periodic"][consumed["periodic"].index("--concurrency") + 1] == "1"
        assert consumed["celery"][consumed["celery"].index("-n") + 1] != consumed["periodic"][
            consumed["periodic"].index("-n") + 1]
        seen = read_until_workers_ready(proc, lines, log)
        assert len(seen) == 4, f"only {sorted(seen)}:\n{''.join(log[-60:])}"
        assert any(p.name() == "postgres" for p in processes_under(data_dir))

        # A worker that dies (kombu can still end one when Redis restarts) is started again, as a supervisor would.
        periodic = [c for c in children if "-Q" in c.cmdline()
                    and c.cmdline()[c.cmdline().index("-Q") + 1] == "periodic"]
        leader = next(c for c in periodic if c.parent() is None or c.parent().pid not in {p.pid for p in periodic})
        os.killpg(leader.pid, signal.SIGKILL)
        restarted = re.compile(r"periodic exited with status -?\d+; restarting it")
        ready_again = re.compile(r"^periodic\s+\| .*\bperiodic@\S+ ready\.")
        deadline, saw_restart, saw_ready = time.monotonic() + STARTUP_TIMEOUT, False, False
        while not saw_ready and time.monotonic() < deadline and proc.poll() is None:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            log.append(line)
            saw_restart = saw_restart or bool(restarted.search(line))
            saw_ready = saw_restart and bool(ready_again.search(line))
        assert saw_restart and saw_ready, "".join(log[-40:])
        assert http("GET", f"{base}/healthz")[0] == 200
        children = launcher.children(recursive=True)
    finally:
        if proc.poll() is None:
            children = psutil.Process(proc.pid).children(recursive=True)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(45)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert alive == [], f"left running: {[(p.pid, p.name()) for p in alive]}"
    assert proc.returncode == 0, "".join(log[-40:])
    leftovers = processes_under(data_dir)
    assert leftovers == [], f"postgres/redis left running: {[(p.pid, p.name()) for p in leftovers]}"
