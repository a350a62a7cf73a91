"""Capture-to-owner benchmark: p50/p95/p99 from an intake POST to the lead's owner being set, with web, worker and beat running.

Creates a throwaway database on the DATABASE_URL server (dropped afterwards), a tenant through
`tenant_create` (form key, default routing rules: named account, round-robin among the available
SDRs of "Sales Development", Unassigned fallback; SLA policies; scoring model) and --reps SDRs in
that team; starts gunicorn, a Celery worker per queue as `make run` does (`celery -A leadmgmt worker
--pool=prefork -Q celery` with --worker-concurrency processes for the capture pipeline, `-Q periodic` with
one for beat's work) and Celery beat (`celery -A leadmgmt beat`, django_celery_beat's DatabaseScheduler), then
posts one new lead (unique email) per request to `POST /api/v1/intake/` at --rate per second for
--seconds. Latency per lead = the `at` of its first Assignment (the Routing Agent's capture run)
minus the lead's `created_at` (both stamped by the application, on this machine). Target (issue 4):
p99 under 2 s; issue 14: p99 under 2 s at 100 leads/s for 60 s.

With --batches N it then sends N batch requests of --batch-size leads at once to `POST /api/v1/leads/batch/`
(Bearer key with the leads:write scope), as an ad platform or an import would, and measures how long after
the last answer every one of those leads is scored and owned. Target (issue 14): 5 x 1,000 within 15 s.

    python -m leadmgmt.embedded exec -- python bench/capture_to_owner.py --rate 20 --seconds 30
"""
from __future__ import annotations

import argparse
import http.client
import json
import re
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from _common import (
    Celery,
    Timer,
    django_setup,
    percentile,
    require_services,
    say,
    throwaway_database,
)

TARGET_P99_MS = 2000.0
TARGET_BATCH_SECONDS = 15.0
BATCH_PATH = "/api/v1/leads/batch/"
CAPTURE = "capture"
# gunicorn closes keep-alive connections idle for 2 s (its --keep-alive default); a thread whose
# connection sat idle longer (after the warm-up, between posts at low rates) opens a new one.
IDLE_RECONNECT_SECONDS = 1.0
JOB_TITLES = ["VP Marketing", "CTO", "Engineer", "Head of Sales", "Student"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="leads posted per second (default 20)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to post (default 30)")
    parser.add_argument("--settle", type=float, default=15.0,
                        help="seconds to wait after the last post for owners to appear (default 15)")
    parser.add_argument("--reps", type=int, default=4, help="SDRs in the default team (default 4)")
    parser.add_argument("--worker-concurrency", type=int, default=2,
                        help="Celery prefork processes on the default queue (default 2; the periodic queue's worker has 1)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--batches", type=int, default=0,
                        help="after the steady run, send this many batch requests at once (default 0: none)")
    parser.add_argument("--batch-size", type=int, default=1000, help="leads per batch request (default 1000)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker and beat logs (paths printed)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.reps < 1:
        parser.error("--rate, --seconds and --reps must be positive")
    if args.batches < 0 or not 1 <= args.batch_size <= 1000:
        parser.error("--batches must be 0 or more and --batch-size between 1 and 1000")
    return args


class Poster:
    """POSTs single new leads from a few threads, each on its own keep-alive connection."""

    def __init__(self, base_url: str, form_key: str, threads: int = 8):
        self.url = urllib.parse.urlsplit(base_url)
        self.headers = {"Content-Type": "application/json", "X-Form-Key": form_key}
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(max_workers=threads)

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is not None and time.monotonic() - self.local.used > IDLE_RECONNECT_SECONDS:
            conn.close()  # gunicorn has probably closed it: a request on it would fail (status 0)
            conn = None
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=30)
        self.local.used = time.monotonic()
        return conn

    def _post(self, body: dict) -> tuple[int, str | None, float]:
        started = time.perf_counter()
        conn = self._connection()
        try:
            conn.request("POST", "/api/v1/intake/", body=json.dumps(body).encode(), headers=self.headers)
            response = conn.getresponse()
            payload = response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            return 0, None, (time.perf_counter() - started) * 1000
        self.local.used = time.monotonic()
        lead_id = json.loads(payload).get("id") if status == 201 else None
        return status, lead_id, (time.perf_counter() - started) * 1000

    def submit(self, run_id: str, i: int):
        body = {"email": f"lead-{run_id}-{i}@company{i % 997}.example.com", "first_name": "Bench",
                "last_name": f"Lead {i}", "company": f"Company {i % 997}", "job_title": JOB_TITLES[i % len(JOB_TITLES)]}
        return self.pool.submit(self._post, body)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def post_batch(base_url: str, api_key: str, bodies: list[dict]) -> tuple[int, list[str], float]:
    """One batch request on its own connection: (status, ids of the leads it created, seconds to answer)."""
    url = urllib.parse.urlsplit(base_url)
    started = time.perf_counter()
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    try:
        conn.request("POST", BATCH_PATH, body=json.dumps(bodies).encode(),
                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    ids = []
    if response.status == 207:
        ids = [item["id"] for item in json.loads(payload)["results"] if item.get("result") == "created"]
    return response.status, ids, time.perf_counter() - started


def batch_burst(base_url: str, api_key: str, *, batches: int, size: int, run_id: str) -> dict:
    """Send `batches` batch requests at once; then wait until every lead they created is scored and owned
    (or went to Unassigned with a reason). Returns the answers and the time from the last answer to done."""
    bodies = [[{"email": f"batch-{run_id}-{b}-{i}@firm{i % 499}.example.org", "first_name": "Batch",
                "last_name": f"Lead {b}-{i}", "company": f"Firm {i % 499}",
                "job_title": JOB_TITLES[i % len(JOB_TITLES)]} for i in range(size)] for b in range(batches)]
    with ThreadPoolExecutor(max_workers=batches) as pool:
        answers = list(pool.map(lambda body: post_batch(base_url, api_key, body), bodies))
    answered = time.monotonic()
    lead_ids = [pk for _status, ids, _s in answers for pk in ids]
    from django.db import connection

    waiting = len(lead_ids)
    while waiting and time.monotonic() - answered < 120:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM leads_lead l WHERE l.tenant_id = (SELECT tenant_id FROM leads_lead "
                "WHERE id = %s) AND l.id = ANY(%s::uuid[]) AND (l.scored_at IS NULL OR NOT EXISTS (SELECT 1 FROM "
                "routing_assignment a WHERE a.tenant_id = l.tenant_id AND a.lead_id = l.id))",
                [lead_ids[0], lead_ids])
            waiting = cursor.fetchone()[0]
        if waiting:
            time.sleep(0.1)
    return {"statuses": dict(Counter(status for status, _ids, _s in answers)), "created": len(lead_ids),
            "sent": batches * size, "answer_seconds": max(s for _status, _ids, s in answers),
            "done_after_seconds": time.monotonic() - answered, "not_done": waiting}


def post_steadily(poster: Poster, *, rate: float, seconds: float, run_id: str) -> list:
    """Submit one new lead every 1/rate seconds on a fixed schedule (a slow response does not delay the next)."""
    count = max(1, round(rate * seconds))
    started = time.monotonic()
    futures = []
    for i in range(count):
        due = started + i / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        futures.append(poster.submit(run_id, i))
    return [f.result() for f in futures]


def measure(*, tenant_id: int, lead_ids: list[str]) -> list[tuple]:
    """(lead id, ms from created_at to its first assignment or None, that assignment's owner id and
    trigger, current owner id) per lead."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.id, EXTRACT(EPOCH FROM (a.at - l.created_at)) * 1000, a.owner_id, a.trigger, l.owner_id "
            "FROM leads_lead l LEFT JOIN LATERAL (SELECT ra.at, ra.owner_id, ra.trigger FROM routing_assignment ra "
            "WHERE ra.tenant_id = l.tenant_id AND ra.lead_id = l.id ORDER BY ra.at, ra.id LIMIT 1) a ON true "
            "WHERE l.tenant_id = %s AND l.id = ANY(%s::uuid[])",
            [tenant_id, lead_ids],
        )
        return [(str(pk), float(ms) if ms is not None else None, first_owner, trigger, owner)
                for pk, ms, first_owner, trigger, owner in cursor.fetchall()]


def owner_counts(*, tenant_id: int) -> dict[int, int]:
    """{owner id: leads} over every lead of the tenant (the warm-up ones too)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT owner_id, count(*) FROM leads_lead WHERE tenant_id = %s AND owner_id IS NOT NULL "
                       "GROUP BY owner_id", [tenant_id])
        return dict(cursor.fetchall())


def wait_for_owners(*, tenant_id: int, lead_ids: list[str], settle: float) -> list[tuple]:
    deadline = time.monotonic() + settle
    while True:
        rows = measure(tenant_id=tenant_id, lead_ids=lead_ids)
        if all(ms is not None for _pk, ms, *_rest in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.25)


def beat_minute_tasks_due(*, after: float, timeout: float = 30) -> list[str]:
    """Make beat's every-minute tasks (routing sweep, SLA enforcement, ...) due `after` seconds from now.

    A fresh DatabaseScheduler first sends an interval task one whole interval after it started, which
    is past the end of a 30 s run; in a system that has been up a while they run every minute, so here
    they run once while leads are being posted.
    """
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

    deadline = time.monotonic() + timeout
    while not PeriodicTask.objects.filter(name="routing.sweep").exists():  # beat installs its schedule
        if time.monotonic() > deadline:
            raise RuntimeError("celery beat did not install its schedule in the database")
        time.sleep(0.1)
    tasks = list(PeriodicTask.objects.filter(enabled=True, interval__period=IntervalSchedule.SECONDS,
                                             interval__every__lte=60).select_related("interval"))
    now = timezone.now()
    for task in tasks:
        task.last_run_at = now - timedelta(seconds=task.interval.every - after)
        task.save(update_fields=["last_run_at"])
    PeriodicTasks.update_changed()
    return sorted(task.name for task in tasks)


def prepare(args: argparse.Namespace) -> tuple:
    """The bench tenant (default routing set-up) with --reps available SDRs in the default team."""
    from leadmgmt.tenancy.context import tenant_scope
    from leadmgmt.tenancy.models import ApiScope, Role
    from leadmgmt.tenancy.services import (
        DEFAULT_TEAM,
        api_key_create,
        membership_upsert,
        tenant_create,
    )

    suffix = uuid.uuid4().hex[:6]
    provisioned = tenant_create(slug=f"bench-route-{suffix}", name="Capture to owner benchmark",
                                admin_email=f"bench-route-{suffix}@bench.test", allowed_origins=["*"])
    reps = {}
    for n in range(1, args.reps + 1):
        email = f"sdr{n}-{suffix}@bench.test"
        membership, _created, _password = membership_upsert(tenant=provisioned.tenant, email=email, role=Role.SDR,
                                                            team_name=DEFAULT_TEAM)
        reps[membership.user_id] = email
    with tenant_scope(provisioned.tenant):
        _key, raw_key = api_key_create(tenant=provisioned.tenant, name="Capture to owner bench batch intake",
                                       scopes=[ApiScope.LEADS_WRITE.value])
    return provisioned.tenant, provisioned.form_key, reps, raw_key


def run(args: argparse.Namespace) -> dict:
    from intake import Server

    say(f"preparing a tenant with the default routing rules and {args.reps} SDRs …")
    tenant, form_key, reps, api_key = prepare(args)
    children: list = []
    poster = None
    run_id = uuid.uuid4().hex[:10]
    try:
        server = Server(workers=args.web_workers, threads=4)
        children.append(server)
        from django.conf import settings

        workers = [Celery.worker(concurrency=args.worker_concurrency, queues=(settings.CELERY_TASK_DEFAULT_QUEUE,)),
                   Celery.worker(concurrency=1, queues=(settings.CELERY_PERIODIC_QUEUE,))]
        children.extend(workers)
        beat = Celery.beat()
        children.append(beat)
        server.wait_ready()
        for worker in workers:
            worker.wait_ready()
        beat.wait_ready()
        poster = Poster(server.url, form_key)
        warm = post_steadily(poster, rate=5, seconds=1, run_id=f"{run_id}-warm")
        wait_for_owners(tenant_id=tenant.pk, lead_ids=[pk for status, pk, _ms in warm if pk], settle=15)
        beat_tasks = beat_minute_tasks_due(after=min(args.seconds / 2, 30))
        say(f"posting new leads at {args.rate:g}/s for {args.seconds:g}s with web, worker and beat running "
            f"(beat's every-minute tasks due {min(args.seconds / 2, 30):g}s in) …")
        with Timer() as t:
            posted = post_steadily(poster, rate=args.rate, seconds=args.seconds, run_id=run_id)
        lead_ids = [pk for status, pk, _ms in posted if status == 201 and pk]
        rows = wait_for_owners(tenant_id=tenant.pk, lead_ids=lead_ids, settle=args.settle) if lead_ids else []
        burst = None
        if args.batches:
            say(f"sending {args.batches} batch requests of {args.batch_size} leads at once …")
            burst = batch_burst(server.url, api_key, batches=args.batches, size=args.batch_size, run_id=run_id)
        task_errors = [line for child in [*workers, beat] for line in child.errors()]
        all_owners = owner_counts(tenant_id=tenant.pk)
        beat_sent = Counter(re.findall(r"Sending due task (\S+) ", beat.text()))
    finally:
        if poster is not None:
            poster.close()
        for child in reversed(children):
            if isinstance(child, Celery):
                child.stop(keep_log=args.keep_logs)
            else:
                child.stop()
    latencies = sorted(ms for _pk, ms, *_rest in rows if ms is not None)
    first_triggers = Counter(trigger for _pk, ms, _first, trigger, _owner in rows if ms is not None)
    owners = Counter(owner for _pk, _ms, _first, _trigger, owner in rows if owner is not None)
    return {
        "posted": len(posted), "post_seconds": t.seconds, "rate": args.rate, "seconds": args.seconds,
        "statuses": dict(Counter(status for status, _pk, _ms in posted)), "accepted": len(lead_ids),
        "post_ms": sorted(ms for _s, _pk, ms in posted), "latencies_ms": latencies, "measured": len(latencies),
        "owned": sum(1 for _pk, ms, first, *_rest in rows if ms is not None and first is not None),
        "unassigned": sum(1 for _pk, ms, first, *_rest in rows if ms is not None and first is None),
        "never_routed": len(lead_ids) - len(latencies), "first_triggers": dict(first_triggers),
        "per_rep": {email: owners.get(user_id, 0) for user_id, email in reps.items()},
        "per_rep_all_leads": {email: all_owners.get(user_id, 0) for user_id, email in reps.items()},
        "beat_minute_tasks": beat_tasks, "beat_sent": dict(beat_sent),
        "median_by_tenth": _medians_by_tenth(lead_ids, rows),
        "task_errors": len(task_errors), "task_error_lines": task_errors[:5], "settle": args.settle,
        "batch_burst": burst,
    }


def _medians_by_tenth(lead_ids: list[str], rows: list[tuple]) -> list[float]:
    """Median latency of each tenth of the run in posting order: a rising series means a growing queue."""
    by_id = {pk: ms for pk, ms, *_rest in rows}
    ordered = [by_id.get(pk) for pk in lead_ids]
    size = max(1, len(ordered) // 10)
    chunks = [[ms for ms in ordered[i:i + size] if ms is not None] for i in range(0, len(ordered), size)]
    return [round(percentile(chunk, 50), 1) for chunk in chunks if chunk]


def _figures(values: list[float]) -> dict:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99),
            "max": max(values) if values else float("nan")}


def target_met(s: dict) -> bool:
    return (s["measured"] > 0 and s["never_routed"] == 0 and s["accepted"] == s["posted"]
            and s["latency"]["p99"] < TARGET_P99_MS)


def batch_ok(burst: dict | None) -> bool:
    return burst is None or (burst["created"] == burst["sent"] and burst["not_done"] == 0)


def summary(out: dict) -> dict:
    s = {k: v for k, v in out.items() if not k.endswith("_ms")} | {
        "post": _figures(out["post_ms"]), "latency": _figures(out["latencies_ms"]),
    }
    return s | {"target_p99_ms": TARGET_P99_MS, "target_met": target_met(s)}


def report(out: dict) -> str:
    s = summary(out)
    rows = [
        f"posted {s['posted']} new leads in {s['post_seconds']:.1f}s ({s['posted'] / s['post_seconds']:.1f}/s); "
        f"HTTP statuses {s['statuses']} (0 = connection error)",
        f"{'measure':<58}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}",
    ]
    for label, key, n in (("POST /api/v1/intake/ response time (client)", "post", s["posted"]),
                          ("captured -> routed (Assignment.at - Lead.created_at)", "latency", s["measured"])):
        f = s[key]
        rows.append(f"{label:<58}{n:>6}{f['p50']:>9.1f}{f['p95']:>9.1f}{f['p99']:>9.1f}{f['max']:>9.1f}")
    rows.append(f"of {s['accepted']} captured leads: {s['owned']} got an owner, {s['unassigned']} went to Unassigned, "
                f"{s['never_routed']} never routed within {s['settle']:g}s of the last post; "
                f"first assignment by trigger {s['first_triggers']}")
    spread, total = list(s["per_rep"].values()), list(s["per_rep_all_leads"].values())
    rows.append(f"per rep {spread} (min {min(spread)}, max {max(spread)}) of the measured leads; "
                f"{total} (max - min = {max(total) - min(total)}) of all {sum(total)} owned leads incl. the warm-up")
    rows.append("median captured -> routed by tenth of the run (ms): "
                + ", ".join(f"{ms:.0f}" for ms in s["median_by_tenth"]))
    sent = ", ".join(f"{name} x{n}" for name, n in sorted(s["beat_sent"].items())) or "nothing"
    rows.append(f"beat sent during the run: {sent}")
    if s["task_errors"]:
        rows.append(f"WARNING: {s['task_errors']} error lines in the worker/beat logs, e.g.:")
        rows += [f"  {line[:200]}" for line in s["task_error_lines"]]
    if not s["measured"]:
        rows.append(f"NO ASSIGNMENT OBSERVED within {s['settle']:g}s for any of the {s['accepted']} captured leads: "
                    "does capture enqueue lead_route_task, and does the tenant have routing rules?")
    else:
        p99 = s["latency"]["p99"]
        rows.append(f"p99 post -> owner = {p99:.0f} ms: target < {TARGET_P99_MS:.0f} ms "
                    f"{'met' if s['target_met'] else 'MISSED'}")
    burst = s["batch_burst"]
    if burst is not None:
        done = burst["done_after_seconds"]
        met = batch_ok(burst) and done <= TARGET_BATCH_SECONDS
        rows.append(f"batch burst: {burst['sent']} leads in {len(burst['statuses']) and sum(burst['statuses'].values())} "
                    f"requests at once, statuses {burst['statuses']}, {burst['created']} created, slowest answer "
                    f"{burst['answer_seconds']:.1f}s; all scored and owned {done:.1f}s after the last answer "
                    f"({burst['not_done']} not yet): target <= {TARGET_BATCH_SECONDS:.0f}s {'met' if met else 'MISSED'}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_services("capture_to_owner.py")

    def terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds through every `finally`: children, database

    signal.signal(signal.SIGTERM, terminate)
    with throwaway_database("bench_capture_owner") as url:
        django_setup(url)
        try:
            out = run(args)
        except RuntimeError as exc:
            say(str(exc))
            return 1
        except KeyboardInterrupt:
            say("interrupted: web, worker and beat stopped, throwaway database dropped")
            return 130
    if args.json:
        print(json.dumps(summary(out), default=str))
    else:
        say(report(out))
    ok = (out["measured"] > 0 and out["accepted"] == out["posted"] and out["never_routed"] == 0
          and batch_ok(out["batch_burst"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
