"""`make run`: migrate, seed the demo tenant, then run web (gunicorn), the Celery workers and beat until Ctrl-C.

Called by `python -m leadmgmt.embedded run` with DATABASE_URL / REDIS_URL already in `env`
(embedded PostgreSQL and Redis when they were unset). Each child runs in its own process group
so a Ctrl-C reaches only this supervisor, which stops the children in order (SIGTERM, then
SIGKILL after a grace period) and returns; the embedded services are stopped by the caller.
If any child dies, the others are stopped too and the exit status is non-zero.

Two Celery workers, as in production (docker-compose.yml): `worker` on the default queue (the capture
pipeline, signals, re-scores) and `periodic` on the periodic queue (beat's sweeps, SLA enforcement,
notification emails), so a backlog of captures never delays an SLA escalation.

    python -m leadmgmt.embedded run [--host 127.0.0.1] [--port 8000] [--workers 2] [--no-seed]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 10
# The queue names of leadmgmt/settings.py (CELERY_TASK_DEFAULT_QUEUE, CELERY_PERIODIC_QUEUE), which this
# supervisor does not import; tests/leadmgmt/test_task_queues.py holds them equal.
DEFAULT_QUEUE = "celery"
PERIODIC_QUEUE = "periodic"
READY_TIMEOUT_SECONDS = 60
# A process that exits on its own is restarted, unless processes exited more than MAX_RESTARTS times within
# RESTART_WINDOW_SECONDS (a crash loop: then everything stops, with the reason).
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60
_print_lock = threading.Lock()


def say(message: str = "", *, stream=None) -> None:
    with _print_lock:
        print(message, file=stream or sys.stdout, flush=True)


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    pump: threading.Thread | None = field(default=None, repr=False)

    def start(self, env: dict[str, str], width: int) -> None:
        self.proc = subprocess.Popen(
            self.argv, env=env, cwd=BASE_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, text=True, bufsize=1, errors="replace",
        )
        label = f"{self.name:<{width}} | "
        self.pump = threading.Thread(target=_pump, args=(self.proc, label), daemon=True, name=f"pump-{self.name}")
        self.pump.start()

    def signal_group(self, signum: int) -> None:
        """Signal the child's whole process group (gunicorn workers, the Celery pool)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _pump(proc: subprocess.Popen, label: str) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        say(label + line.rstrip("\n"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m leadmgmt.embedded run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("LEADMGMT_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("LEADMGMT_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")),
                        help="gunicorn worker processes (env WEB_CONCURRENCY)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--worker-concurrency", type=int,
                        default=int(os.environ.get("CELERY_WORKER_CONCURRENCY", "2")),
                        help="Celery worker processes on the default queue (env CELERY_WORKER_CONCURRENCY)")
    parser.add_argument("--periodic-concurrency", type=int,
                        default=int(os.environ.get("CELERY_PERIODIC_CONCURRENCY", "1")),
                        help="Celery worker processes on the periodic queue (env CELERY_PERIODIC_CONCURRENCY)")
    parser.add_argument("--no-seed", action="store_true", help="do not create/refresh the demo tenant")
    return parser.parse_args(argv)


def gunicorn_argv(*, bind: str, workers: int, threads: int) -> list[str]:
    """The web server command line (also used by bench/)."""
    import gunicorn.config

    argv = [sys.executable, "-m", "gunicorn", "leadmgmt.wsgi", "--bind", bind, "--workers", str(workers),
            "--threads", str(threads), "--graceful-timeout", "5", "--error-logfile", "-"]
    if any(s.name == "control_socket_disable" for s in gunicorn.config.KNOWN_SETTINGS):
        # Newer gunicorn opens ~/.gunicorn/gunicorn.ctl by default, shared by every instance of the user.
        argv.append("--no-control-socket")
    return argv


def celery_worker_argv(*, queue: str, node: str, concurrency: int) -> list[str]:
    """A Celery worker consuming one queue, with a node name of its own (two workers on one host)."""
    return [sys.executable, "-m", "celery", "-A", "leadmgmt", "worker", "-Q", queue, "-n", f"{node}@%h",
            "--loglevel", "INFO", "--concurrency", str(concurrency), "--without-gossip", "--without-mingle"]


def child_processes(args: argparse.Namespace) -> list[Child]:
    """web, the default-queue worker, the periodic-queue worker and beat."""
    return [
        Child("web", [*gunicorn_argv(bind=f"{args.host}:{args.port}", workers=args.workers, threads=args.threads),
                      "--access-logfile", "-"]),
        Child("worker", celery_worker_argv(queue=DEFAULT_QUEUE, node="worker", concurrency=args.worker_concurrency)),
        Child("periodic", celery_worker_argv(queue=PERIODIC_QUEUE, node="periodic",
                                             concurrency=args.periodic_concurrency)),
        Child("beat", [sys.executable, "-m", "celery", "-A", "leadmgmt", "beat", "--loglevel", "INFO"]),
    ]


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], env=env, cwd=BASE_DIR,
                          capture_output=True, text=True)


class Interrupted(Exception):
    """Ctrl-C/SIGTERM arrived while preparing."""


def _prepare(env: dict[str, str], args: argparse.Namespace, base_url: str, stop: threading.Event) -> dict | None:
    """migrate, collectstatic and seed_demo; returns the demo credentials (None with --no-seed)."""
    steps = [("Applying migrations", ["migrate", "--noinput"]),
             ("Collecting static files", ["collectstatic", "--noinput", "-v", "0"])]
    if not args.no_seed:
        steps.append(("Loading the demo tenant", ["seed_demo", "--json", "--base-url", base_url]))
    demo = None
    for title, command in steps:
        say(f"==> {title}…")
        result = _manage(env, *command)
        if stop.is_set():
            raise Interrupted
        if result.returncode != 0:
            say(result.stdout + result.stderr, stream=sys.stderr)
            raise RuntimeError(f"`manage.py {' '.join(command)}` failed (exit {result.returncode})")
        if command[0] == "seed_demo":
            demo = json.loads(result.stdout.strip().splitlines()[-1])
    return demo


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_ready(url: str, children: list[Child], stop: threading.Event) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline and not stop.is_set():
        if any(c.proc.poll() is not None for c in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def banner(*, base_url: str, env: dict[str, str], demo: dict | None) -> str:
    line = "=" * 78
    out = [line, f"  leadmgmt is running at {base_url}/", "",
           f"  Admin             {base_url}/admin/",
           f"  API docs          {base_url}/api/docs/   (OpenAPI: {base_url}/api/schema/)",
           f"  Health            {base_url}/healthz", ""]
    if env.get("EMAIL_BACKEND", "").endswith("console.EmailBackend"):
        out += ["  Emails            printed in the log; SLA alerts and nurture emails in `periodic`'s",
                "                    (set EMAIL_HOST/EMAIL_PORT to send them)", ""]
    if env.get("LEADMGMT_EMBEDDED_POSTGRES") or env.get("LEADMGMT_EMBEDDED_REDIS"):
        from leadmgmt.embedded import DATA_DIR

        out += [f"  Embedded PostgreSQL/Redis data: {DATA_DIR}", ""]
    if demo:
        out += [f"  Demo tenant '{demo['tenant_name']}' (slug {demo['tenant']}); every password: {demo['password']}",
                f"  Sign in at {base_url}{demo['login_url']}"]
        if demo["login_url"].startswith("/admin/"):
            out += ["  (the Django admin takes admin and marketing_ops; sales reps' logins are ready for the rep UI)"]
        out += [f"    {u['role']:<14} {u['email']}" for u in demo["users"]]
        out += ["", f"  Form key          {demo['form_key']}", f"  API key           {demo['api_key']}", "",
                "  Capture a lead (public form key):",
                f"    curl -i -X POST {base_url}/api/v1/intake/ \\",
                f"      -H 'X-Form-Key: {demo['form_key']}' -H 'Content-Type: application/json' \\",
                """      -d '{"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "company": "Analytical Engines"}'""",
                "", "  Send a signal (tenant API key):",
                f"    curl -i -X POST {base_url}/api/v1/signals/ \\",
                f"      -H 'Authorization: Bearer {demo['api_key']}' -H 'Content-Type: application/json' \\",
                """      -d '{"email": "ada@example.com", "type": "pricing_page_view", "occurred_at": "'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"'"}'"""]
    out += ["", "  Press Ctrl-C to stop web, the workers, beat and the embedded services.", line]
    return "\n".join(out)


def _stop_all(children: list[Child]) -> None:
    """SIGTERM every process group, wait, then SIGKILL whatever is left."""
    running = [c for c in children if c.proc is not None and c.proc.poll() is None]
    for child in running:
        child.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in running:
        try:
            child.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"==> {child.name} did not stop within {STOP_GRACE_SECONDS}s; killing it", stream=sys.stderr)
    for child in children:
        # Also reaps grandchildren that outlived their leader (a pool process, a gunicorn worker).
        child.signal_group(signal.SIGKILL)
        if child.proc is not None and child.proc.poll() is None:
            child.proc.wait()
        if child.pump is not None:
            child.pump.join(timeout=2)


def run(env: dict[str, str], argv: list[str] | None = None) -> int:
    """Run the whole system in the foreground; returns the exit status."""
    args = parse_args(argv)
    base_url = f"http://{args.host if args.host not in ('0.0.0.0', '::') else '127.0.0.1'}:{args.port}"
    if not _port_free(args.host, args.port):
        say(f"Port {args.port} on {args.host} is in use; stop what runs there or use "
            f"`make run RUN_ARGS='--port 8001'` (or LEADMGMT_PORT).", stream=sys.stderr)
        return 1
    env = {**env, "PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "leadmgmt.settings"}
    # Links in emails point at this server; with no mail server configured, emails (nurture, SLA alerts)
    # are printed in the (periodic) worker's log instead of failing against localhost:25.
    env.setdefault("PUBLIC_BASE_URL", base_url)
    if not env.get("EMAIL_HOST") and not env.get("EMAIL_BACKEND"):
        env["EMAIL_BACKEND"] = "django.core.mail.backends.console.EmailBackend"
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum, _frame):
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    children = child_processes(args)
    width = max(len(c.name) for c in children)
    try:
        try:
            demo = _prepare(env, args, base_url, stop)
        except Interrupted:
            return 130
        except RuntimeError as exc:
            say(f"==> {exc}", stream=sys.stderr)
            return 1
        say("==> Starting web, the workers (default and periodic queues) and beat…")
        for child in children:
            child.start(env, width)
        if not _wait_ready(f"{base_url}/healthz", children, stop):
            if stop.is_set():
                return 130
            say(f"==> The web server did not answer {base_url}/healthz; stopping.", stream=sys.stderr)
            return 1
        say(banner(base_url=base_url, env=env, demo=demo))
        restarts: list[float] = []
        while not stop.wait(0.5):
            dead = [c for c in children if c.proc.poll() is not None]
            if not dead:
                continue
            now = time.monotonic()
            restarts = [at for at in restarts if now - at < RESTART_WINDOW_SECONDS] + [now] * len(dead)
            if len(restarts) > MAX_RESTARTS:
                for child in dead:
                    say(f"==> {child.name} exited with status {child.proc.returncode}, and processes have exited "
                        f"{len(restarts)} times within {RESTART_WINDOW_SECONDS}s; stopping the rest.",
                        stream=sys.stderr)
                return 1
            for child in dead:
                # As a supervisor would (docker-compose's restart policy, systemd): a worker that exits on its
                # own (kombu can still end one when Redis restarts mid-delivery) is started again.
                say(f"==> {child.name} exited with status {child.proc.returncode}; restarting it.", stream=sys.stderr)
                child.signal_group(signal.SIGKILL)  # its pool processes too
                if child.pump is not None:
                    child.pump.join(timeout=2)
                child.start(env, width)
        say(f"==> {signal.Signals(received[0]).name} received; stopping…")
        return 0
    finally:
        _stop_all(children)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        say("==> Stopped.")
