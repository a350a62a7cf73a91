"""The scoring benches run end to end at a tiny size, print their figures, exit 0 and leave no database behind."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _bench_env() -> dict[str, str]:
    # The benches make a throwaway database on this server; they never touch the test database.
    return {**os.environ, "DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": settings.REDIS_URL,
            "CELERY_TASK_ALWAYS_EAGER": "false", "LOG_LEVEL": "WARNING"}


def _bench_databases() -> set[str]:
    # The server's maintenance database: DATABASE_URL's own database need not exist (pytest
    # works in test_<name>), and the benches create theirs through "postgres" too.
    parts = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    conn = psycopg2.connect(urllib.parse.urlunsplit(parts._replace(path="/postgres")))
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%%'")
            return {name for (name,) in cursor.fetchall()}
    finally:
        conn.close()


def _run(*args: str, timeout: int = 120, exit_codes: tuple[int, ...] = (0,)) -> str:
    before = _bench_databases()
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=_bench_env(), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode in exit_codes, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-4000:]}"
    if result.returncode != 0:  # an allowed non-zero exit is the bench's verdict, never a crash
        assert "Traceback" not in result.stderr, result.stderr[-4000:]
    assert _bench_databases() <= before, "the bench left its throwaway database behind"
    return result.stdout


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def test_rescore_bench_prints_rescore_floor_and_ratio():
    out = _run("bench/rescore.py", "--leads", "2000")

    rescore = re.search(r"full re-score after publish \(leads_score\)\s+([\d,]+)\s+([\d.]+)\s+([\d,]+)", out)
    floor = re.search(r"floor: plain UPDATE, same rows and columns\s+([\d,]+)\s+([\d.]+)\s+([\d,]+)", out)
    assert rescore and floor, out
    # Every lead is evaluated; only those whose result changes under the new version are rewritten
    # (rule keys are stable across versions), while the floor rewrites all of them.
    assert 0 < _number(rescore.group(1)) < 2000 and _number(floor.group(1)) == 2000
    assert _number(rescore.group(2)) > 0 and _number(rescore.group(3)) > 0
    assert re.search(r"re-score / floor = [\d.]+x \(target <= 3x\)", out), out
    changes = re.search(r"re-score wrote ([\d,]+) score changes, ([\d,]+) score events", out)
    assert changes and 0 < _number(changes.group(1)) <= 2000, out
    assert "floor statement: UPDATE leads_lead SET score = score, fit_score = fit_score" in out
    assert re.search(r"^(targets met|MISSED .*)$", out, re.MULTILINE), out


@pytest.mark.worker
def test_signal_latency_bench_measures_every_signal_through_a_real_worker():
    out = _run("bench/signal_latency.py", "--leads", "500", "--rate", "10", "--seconds", "2", "--settle", "15")

    row = re.search(r"accepted -> score visible \(ScoreChange\.at - received_at\)\s+(\d+)\s+([\d.]+)\s+([\d.]+)"
                    r"\s+([\d.]+)\s+([\d.]+)", out)
    assert row, out
    measured, p50, _p95, p99, worst = (_number(g) for g in row.groups())
    assert measured == 20, out  # every posted signal's score change was found
    assert 0 < p50 <= p99 <= worst, out
    assert "HTTP statuses {202: 20}" in out
    assert re.search(r"p99 signal -> score = \d+ ms: target < 1000 ms (met|MISSED)", out), out


def test_routing_bench_prints_leads_per_second_and_passes_its_fairness_checks():
    out = _run("bench/routing.py", "--leads", "300", "--batch", "100", timeout=300)

    walk = re.search(r"rule walk only \(conditions \+ pick, nothing written\)\s+([\d,]+)\s+([\d.]+)\s+([\d,]+)", out)
    full = re.search(r"full lead_route \(lock, slot, history, audit, SLA, notify\)\s+([\d,]+)\s+([\d.]+)\s+([\d,]+)", out)
    assert walk and full, out
    assert _number(walk.group(1)) == _number(full.group(1)) == 300 and _number(full.group(3)) > 0
    assert "round-robin spread over 10 reps after the full run: min 30, max 30, unassigned 0" in out
    assert "per rep [200, 200, 200, 200] (exactly 200 each" in out
    assert "per rep [250, 250, 250, 250] (exactly 250 each)" in out
    assert "next 40 leads -> [10, 10, 10, 10], joiner got 1 of the first 4 (fair)" in out
    assert "fairness checks passed" in out


@pytest.mark.worker
def test_capture_to_owner_bench_routes_every_posted_lead_through_a_real_worker():
    out = _run("bench/capture_to_owner.py", "--rate", "10", "--seconds", "2", "--settle", "15")

    row = re.search(r"captured -> routed \(Assignment\.at - Lead\.created_at\)\s+(\d+)\s+([\d.]+)\s+([\d.]+)"
                    r"\s+([\d.]+)\s+([\d.]+)", out)
    assert row, out
    measured, p50, _p95, p99, worst = (_number(g) for g in row.groups())
    assert measured == 20, out  # every posted lead's first assignment was found
    assert 0 < p50 <= p99 <= worst, out
    assert "HTTP statuses {201: 20}" in out
    assert ("of 20 captured leads: 20 got an owner, 0 went to Unassigned, 0 never routed within 15s of the last "
            "post; first assignment by trigger {") in out
    # Round-robin among the 4 SDRs of the default team: 20 measured + 5 warm-up leads, even to within one.
    assert re.search(r"per rep \[\d+, \d+, \d+, \d+\] \(min \d+, max \d+\) of the measured leads; "
                     r"\[\d+, \d+, \d+, \d+\] \(max - min = 1\) of all 25 owned leads", out), out
    assert "beat sent during the run: " in out and "WARNING" not in out
    assert re.search(r"p99 post -> owner = \d+ ms: target < 2000 ms (met|MISSED)", out), out


def test_nurture_bench_sends_every_due_step_exactly_once_over_smtp():
    out = _run("bench/nurture.py", "--enrollments", "300", "--batch", "100", timeout=300)

    for label in (r"minute sweeps \(auto-enrol, exits, pause/resume\), set-based",
                  r"claim only \(pick, conditions, render, insert, advance\)",
                  r"full agent \(claim \+ SMTP \+ mark sent \+ audit\)",
                  r"floor: prebuilt email over one SMTP connection"):
        row = re.search(label + r"\s+([\d,]+)\s+([\d.]+)\s+([\d,]+)", out)
        assert row and _number(row.group(1)) > 0 and _number(row.group(3)) > 0, (label, out)
    assert "sink received 300; Message rows 300 (300 sent); duplicates 0" in out
    assert "every enrolment got exactly one email" in out


@pytest.mark.worker
def test_chaos_bench_kills_the_worker_and_redis_then_prints_its_reconciliation():
    # The books must balance: every lead scored and owned, every escalation once, within the settle window
    # (the sweeps run every 10 s; a lost escalation waits for the next SLA run, every minute).
    out = _run("bench/chaos.py", "--rate", "5", "--seconds", "8", "--worker-down", "2", "--redis-down", "1",
               "--breaches", "3", "--settle", "90", timeout=300)

    assert re.search(r"kill -9 worker process group\(s\); tasks received and unfinished: ", out), out
    assert "worker(s) restarted on queues celery,periodic" in out
    port = re.search(r"Redis killed \(port (\d+),", out)
    assert port and "Redis started again on the same port" in out, out
    posted = re.search(r"^posted (\d+) leads \(5 warm-up before the faults incl\.; (\d+) web intake, HTTP \{.*\}; "
                       r"(\d+) in (\d+) batches", out, re.MULTILINE)
    assert posted and int(posted.group(1)) == int(posted.group(2)) + int(posted.group(3)) > 0, out
    counts = dict(re.findall(r"^(\S.*?)\s{2,}(\d+)$", out, re.MULTILINE))
    for label in ("posted", "accepted (2xx answers naming a lead)", "unscored (not under the published model)",
                  "unowned (no owner, no unassigned_reason)", "routed before scored", "escalation steps expected",
                  "escalation steps done", "escalation steps doubled"):
        assert label in counts, (label, out)
    # An answer is only sent after its lead committed, and capture routes a lead once, whatever happens.
    assert counts["lost (2xx answer, no lead)"] == "0" and counts["double-assigned (two 'capture' assignments)"] == "0"
    assert 0 < int(counts["accepted (2xx answers naming a lead)"]) <= int(counts["posted"])
    assert re.search(r"^recovery: reconciled \d+\.\d+s after the last repair", out, re.MULTILINE), out
    assert re.search(r"^every check passed$", out, re.MULTILINE), out
    for label in ("unscored (not under the published model)", "unowned (no owner, no unassigned_reason)",
                  "routed before scored", "escalation steps missing", "escalation steps doubled"):
        assert counts[label] == "0", (label, out)
    with pytest.raises(OSError):  # the bench's own Redis is gone
        socket.create_connection(("127.0.0.1", int(port.group(1))), timeout=1).close()


def test_import_bench_prints_the_run_against_copy_and_the_pipeline():
    out = _run("bench/import.py", "--rows", "300", timeout=300)

    copy = re.search(r"floor: COPY into a bare table\s+([\d,]+)\s+([\d.]+)\s+([\d,]+)", out)
    run = re.search(r"import run \(import_run, chunked, set-based\)\s+([\d,]+)\s+([\d.]+)\s+([\d,]+)", out)
    assert copy and run, out
    assert _number(copy.group(1)) == _number(run.group(1)) == 300 and _number(run.group(3)) > 0
    assert "import finished: created 264, merged 30, possible duplicates 0, refused 6; not scored 0, not owned 0" in out
    assert re.search(r"import / COPY = [\d.]+x \(target >= 0.25x\)", out), out
    floor = re.search(r"floor: same rows INSERT … SELECT into leads_lead\s+([\d,]+)\s+([\d.]+)\s+([\d,]+)", out)
    assert floor and _number(floor.group(1)) == 294, out  # the 6 bad rows have no valid email
    assert re.search(r"lead table floor / COPY = [\d.]+x .*; import / lead table floor = [\d.]+x", out), out


def test_export_bench_streams_both_sizes_and_prints_the_peak_rss():
    out = _run("bench/export.py", "--first", "300", "--leads", "1500", timeout=300)
    rows = re.findall(r"^\s+([\d,]+)\s+[\d.]+\s+[\d.]+\s+([\d,]+)\s+([\d.]+) MiB\s+([\d.]+) MiB\s+([\d.-]+) MiB$", out,
                      re.MULTILINE)
    assert [_number(r[0]) for r in rows] == [300, 1500], out
    assert all(_number(r[1]) > 0 and _number(r[3]) >= _number(r[2]) for r in rows), out
    assert "peak RSS growth:" in out


def test_learning_bench_prints_training_rescore_ratio_and_the_three_aucs():
    out = _run("bench/learning.py", "--closed", "1500", "--fresh", "600", timeout=300)
    assert re.search(r"training: 1,500 closed \([\d,]+ won\) in [\d.]+s; held-out", out), out
    assert re.search(r"re-score with the learned model / without = [\d.]+x", out), out
    aucs = re.search(r"AUC on 600 fresh leads \([\d,]+ would buy\): seed ([\d.]+), learned ([\d.]+), "
                     r"suggested draft ([\d.]+) \(truth: ([\d.]+)\)", out)
    assert aucs, out
    seed, learned, suggested, truth = map(float, aucs.groups())
    assert learned > seed and suggested > seed  # the funnel's known propensity is learnable
    assert learned <= truth + 0.05
