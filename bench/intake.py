"""Intake benchmark: leads/s and p50/p95/p99 latency of POST /api/v1/intake/ against /healthz (the framework floor).

Without --url it migrates the database in DATABASE_URL, starts gunicorn on a free loopback port
(throttles raised through INTAKE_RATE_PER_FORM / INTAKE_RATE_PER_IP) and stops it afterwards.
With --url it drives a server that is already running; that server must use the same database
(for the bench tenant's form key, or pass --form-key) and have its intake throttles raised.

    python -m leadmgmt.embedded exec -- python bench/intake.py -n 2000 -c 16 --duplicates 0.1
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_SLUG = "bench"
BENCH_FORM = "Website"
UNTHROTTLED = "1000000/min"


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    statuses: Counter

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: int) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else 0.0
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[p - 1]

    def as_dict(self) -> dict:
        return {"name": self.name, "requests": self.requests, "ok": self.ok, "seconds": round(self.seconds, 3),
                "per_second": round(self.per_second, 1), "p50_ms": round(self.percentile(50), 2),
                "p95_ms": round(self.percentile(95), 2), "p99_ms": round(self.percentile(99), 2),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=2000, help="intake posts (and as many /healthz gets)")
    parser.add_argument("-c", "--concurrency", type=int, default=16, help="client threads, one keep-alive connection each")
    parser.add_argument("--duplicates", type=float, default=0.0,
                        help="share of posts (0..1) that repeat an already captured email (the merge path)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed requests per endpoint first")
    parser.add_argument("--url", help="base URL of a running server (default: start gunicorn here)")
    parser.add_argument("--form-key", help="form key to post with (default: the 'bench' tenant's form)")
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 1), help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if not 0 <= args.duplicates <= 1:
        parser.error("--duplicates must be between 0 and 1")
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")
    return args


def _django_setup() -> None:
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        sys.exit("DATABASE_URL and REDIS_URL are needed: run `make bench`, or "
                 "`python -m leadmgmt.embedded exec -- python bench/intake.py` for embedded ones.")
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadmgmt.settings")
    from _common import bench_harness, bench_redis

    bench_redis()
    import django

    django.setup()

    bench_harness()


def migrate() -> None:
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--noinput", "-v", "0"], check=True,
                   cwd=BASE_DIR)


def bench_form_key() -> str:
    """The bench tenant's form key, provisioning the tenant through the tenancy services the first time."""
    from leadmgmt.tenancy.models import Tenant
    from leadmgmt.tenancy.services import tenant_create
    from leads.models import LeadForm

    tenant = Tenant.objects.filter(slug=BENCH_SLUG).first()
    if tenant is None:
        return tenant_create(slug=BENCH_SLUG, name="Benchmark", admin_email="bench-admin@bench.test",
                             form_name=BENCH_FORM, allowed_origins=["*"]).form_key
    return LeadForm.objects.unscoped().get(tenant=tenant, name=BENCH_FORM).key


class Server:
    """gunicorn on a free loopback port, in its own process group; output kept in a temp file."""

    def __init__(self, *, workers: int, threads: int):
        from leadmgmt.devrun import gunicorn_argv
        from leadmgmt.embedded import _free_port

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
        env = {**os.environ, "INTAKE_RATE_PER_FORM": os.environ.get("INTAKE_RATE_PER_FORM", UNTHROTTLED),
               "INTAKE_RATE_PER_IP": os.environ.get("INTAKE_RATE_PER_IP", UNTHROTTLED),
               "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")}
        self.proc = subprocess.Popen(gunicorn_argv(bind=f"127.0.0.1:{self.port}", workers=workers, threads=threads),
                                     cwd=BASE_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        sys.exit(f"gunicorn did not come up; its log:\n{Path(self.log.name).read_text()[-4000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        Path(self.log.name).unlink(missing_ok=True)


def drive(base_url: str, name: str, requests: list[tuple[str, str, bytes | None, dict]], concurrency: int) -> Result:
    """Send the requests from `concurrency` threads, each on its own keep-alive connection."""
    parsed = urllib.parse.urlsplit(base_url)
    conn_class = http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
    prefix = parsed.path.rstrip("/")
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    cursor = iter(range(len(requests)))

    def client() -> None:
        conn = conn_class(parsed.hostname, parsed.port, timeout=30)
        local_lat, local_status = [], Counter()
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            method, path, body, headers = requests[i]
            started = time.perf_counter()
            try:
                conn.request(method, prefix + path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                status = 0  # connection error
            local_lat.append((time.perf_counter() - started) * 1000)
            local_status[status] += 1
        conn.close()
        with lock:
            latencies.extend(local_lat)
            statuses.update(local_status)

    threads = [threading.Thread(target=client) for _ in range(min(concurrency, len(requests)))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(name, len(requests), time.perf_counter() - started, latencies, statuses)


def intake_requests(form_key: str, count: int, *, run_id: str, start: int = 0, duplicates: float = 0.0,
                    reuse: list[str] | None = None) -> list[tuple[str, str, bytes | None, dict]]:
    rng = random.Random(f"{run_id}-{start}")
    headers = {"Content-Type": "application/json", "X-Form-Key": form_key}
    out = []
    for i in range(start, start + count):
        if reuse and rng.random() < duplicates:
            email = rng.choice(reuse)
        else:
            email = f"lead-{run_id}-{i}@company{i % 997}.example.com"
        body = {"email": email, "first_name": "Bench", "last_name": f"Lead {i}", "company": f"Company {i % 997}",
                "job_title": rng.choice(["VP Marketing", "CTO", "Engineer", "Head of Sales", "Student"]),
                "utm_source": rng.choice(["google", "linkedin", "newsletter", ""])}
        out.append(("POST", "/api/v1/intake/", json.dumps(body).encode(), headers))
    return out


def health_requests(count: int) -> list[tuple[str, str, bytes | None, dict]]:
    return [("GET", "/healthz", None, {})] * count


def report(intake: Result, health: Result, args: argparse.Namespace) -> str:
    rows = [f"{'endpoint':<26}{'ok/total':>12}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"]
    for r in (intake, health):
        rows.append(f"{r.name:<26}{f'{r.ok}/{r.requests}':>12}{r.per_second:>10.1f}{r.percentile(50):>9.1f}"
                    f"{r.percentile(95):>9.1f}{r.percentile(99):>9.1f}")
    ratio = intake.per_second / health.per_second if health.per_second else 0.0
    p50 = intake.percentile(50) / health.percentile(50) if health.percentile(50) else 0.0
    rows.append(f"intake throughput = {ratio:.1%} of the /healthz floor; intake p50 = {p50:.1f}x the floor's p50")
    rows.append(f"(n={args.requests}, concurrency={args.concurrency}, duplicates={args.duplicates:.0%})")
    if intake.ok != intake.requests:
        rows.append(f"WARNING: intake statuses {dict(intake.statuses)} (0 = connection error; 429 = throttled: "
                    "raise INTAKE_RATE_PER_FORM / INTAKE_RATE_PER_IP on the server)")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = None
    if args.url is None or args.form_key is None:
        _django_setup()
    if args.url is None:
        migrate()
    form_key = args.form_key or bench_form_key()
    try:
        if args.url is None:
            server = Server(workers=args.workers, threads=args.threads)
            server.wait_ready()
        base_url = (args.url or server.url).rstrip("/")
        run_id = uuid.uuid4().hex[:10]
        warm_posts = intake_requests(form_key, args.warmup, run_id=run_id, start=10**7)
        drive(base_url, "warm-up", warm_posts + health_requests(args.warmup), args.concurrency)
        reuse = [json.loads(body)["email"] for _m, _p, body, _h in warm_posts]
        intake = drive(base_url, "POST /api/v1/intake/",
                       intake_requests(form_key, args.requests, run_id=run_id, duplicates=args.duplicates, reuse=reuse),
                       args.concurrency)
        health = drive(base_url, "GET /healthz (floor)", health_requests(args.requests), args.concurrency)
    finally:
        if server is not None:
            server.stop()
    if args.json:
        print(json.dumps({"intake": intake.as_dict(), "healthz": health.as_dict(),
                          "ratio": round(intake.per_second / health.per_second, 4) if health.per_second else None}))
    else:
        print(report(intake, health, args))
    return 0 if intake.ok == intake.requests else 1


if __name__ == "__main__":
    sys.exit(main())
