"""CSV import benchmark: a file of --rows rows (10 % duplicates of existing leads, 2 % bad rows) imported by the
chunked run, against PostgreSQL COPY of the same file into a bare table, measured in the same run.

Creates a throwaway database on the DATABASE_URL server (dropped afterwards), a tenant through `tenant_create`
(default scoring model and routing rules) with four SDRs, the existing leads (set-based INSERT … SELECT), and
the CSV file in memory. Then: COPY of the file into a bare table (an ordinary table of text columns, no index,
constraint or policy: the floor); the same rows put into the lead table by one INSERT … SELECT with no Python at
all (what the table's indexes, constraints, policy and foreign keys cost: the floor no import can go under,
printed as its own ratio to COPY); the import's
upload (detection), mapping and run (`import_run`, in this process, chunk by chunk as the worker runs it); and
the capture pipeline drained, until every imported lead is scored and owned, by --drain-workers processes (forked
from this one; default: the worker concurrency `make run` starts, `CELERY_WORKER_CONCURRENCY` or 2), each
calling `captured_leads_drain` as a worker's task does: their claims skip each other's locked leads, as several
production workers' do. `--drain-workers 1` is one worker's work in this process.
Targets (issue 15): the run at >= 0.25x COPY's rows per second; every imported lead scored and owned <= 120 s
after the import ends.

    python -m leadmgmt.embedded exec -- python bench/import.py --rows 100000
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import random
import sys
import time
import uuid

from _common import Timer, django_setup, maintenance, require_services, say, throwaway_database

TARGET_RATIO = 0.25
TARGET_PIPELINE_SECONDS = 120.0
COLUMNS = ["Email", "First Name", "Last Name", "Company", "Job Title", "Phone", "Country", "Plan"]
TITLES = ["CEO", "CTO", "VP Sales", "Marketing Manager", "Software Engineer", "Head of Growth", "Intern", ""]
COUNTRIES = ["US", "United States", "Germany", "France", "United Kingdom", "Canada", "India", ""]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the CSV file (default 100,000)")
    parser.add_argument("--duplicates", type=float, default=0.10, help="share of rows of existing leads (0.10)")
    parser.add_argument("--bad", type=float, default=0.02, help="share of rows that are refused (0.02)")
    parser.add_argument("--drain-workers", type=int, default=None,
                        help="processes draining the pipeline (default: the worker concurrency `make run` starts)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if args.rows < 1 or not 0 <= args.duplicates < 1 or not 0 <= args.bad < 1:
        parser.error("--rows must be at least 1; --duplicates and --bad are shares below 1")
    if args.drain_workers is not None and args.drain_workers < 1:
        parser.error("--drain-workers must be at least 1")
    return args


def existing_leads(*, tenant_id: int, count: int) -> None:
    """`count` leads the file will name again (their emails: known<i>@company<i % 4000>.com), set-based."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO leads_lead (id, tenant_id, email, first_name, last_name, phone, job_title, company, "
            "company_domain, industry, country, source, utm_source, utm_medium, utm_campaign, utm_term, utm_content, "
            "campaign, marketing_consent, consent_source, is_personal_email, status, stage, attributes, edited_fields, "
            "band, lead_class, lead_class_reason, archive_reason, is_hot, last_activity_at, created_at, updated_at) "
            "SELECT gen_random_uuid(), %s, 'known' || i || '@company' || (i %% 4000) || '.com', 'Known', 'Lead ' || i, "
            "'', '', 'Company ' || (i %% 4000), '', '', '', 'web_form', '', '', '', '', '', '', false, '', false, "
            "'new', 'raw', '{}'::jsonb, '[]'::jsonb, '', '', '', '', false, now(), now() - interval '30 days', now() "
            "FROM generate_series(1, %s) AS i", [tenant_id, count])


def csv_file(*, rows: int, duplicates: int, bad: int) -> bytes:
    """The file: `duplicates` rows name existing leads (and fill their blank job title), `bad` rows are refused
    (no valid email), the rest are new people; shuffled with a fixed seed."""
    rng = random.Random(42)
    kinds = ["dup"] * duplicates + ["bad"] * bad + ["new"] * (rows - duplicates - bad)
    rng.shuffle(kinds)
    out = io.StringIO()
    out.write(",".join(COLUMNS) + "\n")
    dup = 0
    for n, kind in enumerate(kinds):
        if kind == "dup":
            dup += 1
            email = f"known{dup}@company{dup % 4000}.com"
        elif kind == "bad":
            email = f"broken{n}@"
        else:
            email = f"person{n}@company{n % 4000}.com"
        phone = f"+1 415 {200 + n // 10000:03d} {n % 10000:04d}" if n % 3 == 0 else ""
        out.write(f"{email},First{n},Last{n},Company {n % 4000},{rng.choice(TITLES)},{phone},"
                  f"{rng.choice(COUNTRIES)},{rng.choice(['free', 'pro', 'enterprise'])}\n")
    return out.getvalue().encode()


def copy_floor(content: bytes) -> tuple[int, float]:
    """COPY of the same file into a bare table (an ordinary, logged table of text columns: no index, constraint,
    policy or trigger), created for it as the tables' owner and dropped after: (rows, seconds)."""
    from django.db import connection, transaction

    from leadmgmt.db.backend.base import owner_mode

    columns = ", ".join(f"c{i} text" for i in range(len(COLUMNS)))
    with owner_mode(connection), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE bench_copy ({columns})")
        with Timer() as t:
            cursor.copy_expert("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)", io.BytesIO(content))
        cursor.execute("SELECT count(*) FROM bench_copy")
        rows = cursor.fetchone()[0]
        cursor.execute("DROP TABLE bench_copy")
    return rows, t.seconds


def lead_insert_floor(content: bytes, *, tenant_id: int) -> tuple[int, float]:
    """What the lead table itself costs, with no Python: the file COPied into a temp table, then its rows with a
    valid-looking email INSERTed into leads_lead by one INSERT … SELECT (lower-cased email, the columns as they
    are), its 13 indexes, constraints, tenant policy and foreign keys checked (SET CONSTRAINTS ALL IMMEDIATE),
    rolled back: (rows, seconds). No normalisation, deduplication, touches, audit or import records: a floor no
    import of leads can go under on this table."""
    from django.db import connection, transaction

    from leadmgmt.tenancy.context import tenant_scope
    from leadmgmt.tenancy.models import Tenant

    columns = ", ".join(f"c{i} text" for i in range(len(COLUMNS)))
    with tenant_scope(Tenant.objects.get(pk=tenant_id)), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"CREATE TEMP TABLE bench_floor ({columns}) ON COMMIT DROP")
        with Timer() as t:
            cursor.copy_expert("COPY bench_floor FROM STDIN WITH (FORMAT csv, HEADER true)", io.BytesIO(content))
            cursor.execute(
                "INSERT INTO leads_lead (id, tenant_id, email, first_name, last_name, phone, job_title, company, "
                "company_domain, industry, country, source, utm_source, utm_medium, utm_campaign, utm_term, "
                "utm_content, campaign, marketing_consent, consent_source, is_personal_email, status, stage, "
                "attributes, edited_fields, band, lead_class, lead_class_reason, archive_reason, is_hot, "
                "last_activity_at, created_at, updated_at) "
                "SELECT gen_random_uuid(), %s, 'floor-' || lower(c0), c1, c2, coalesce(c5, ''), coalesce(c4, ''), c3, "
                "split_part(c0, '@', 2), '', coalesce(c6, ''), 'import', '', '', '', '', '', '', false, '', false, "
                "'new', 'raw', jsonb_build_object('Plan', c7), '[]'::jsonb, '', '', '', '', false, now(), now(), "
                "now() FROM bench_floor WHERE c0 ~ '@[^@]+$'", [tenant_id])
            rows = cursor.rowcount
        transaction.set_rollback(True)
    return rows, t.seconds


def _drain(tenant_id: int) -> None:
    """One worker's share of the pipeline: `captured_leads_drain` (what the worker's task runs) until no lead of
    the tenant is pending; a claim that found every pending lead locked by another worker waits a moment."""
    from leadmgmt.tenancy.context import tenant_scope
    from leadmgmt.tenancy.models import Tenant
    from leads.models import Lead
    from workspace.services.pipeline import captured_leads_drain

    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_scope(tenant):
        pending = Lead.objects.for_tenant(tenant).filter(source="import", pipeline_pending_since__isnull=False)
        while pending.exists():
            if not captured_leads_drain(tenant=tenant).claimed:
                time.sleep(0.05)


def pipeline_drain(*, tenant_id: int, workers: int) -> None:
    """The pipeline drained by `workers` processes side by side (forked: each opens its own connection)."""
    if workers == 1:
        _drain(tenant_id)
        return
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_drain, args=(tenant_id,)) for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [process.exitcode for process in processes if process.exitcode]
    if failed:
        raise RuntimeError(f"a draining process failed (exit codes {failed})")


@contextlib.contextmanager
def parked_tasks():
    """Tasks enqueued after each chunk's commit (the capture pipeline, re-scores) go to a queue of their own,
    deleted after: this process drains the pipeline itself, timed on its own."""
    from leadmgmt.celery import app

    queue = f"bench-import-{uuid.uuid4().hex[:10]}"
    previous = app.conf.task_routes
    app.conf.task_always_eager = False
    app.conf.task_routes = {"*": {"queue": queue}}
    try:
        yield
    finally:
        app.conf.task_routes = previous
        with contextlib.suppress(Exception), app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)


def run(args: argparse.Namespace) -> dict:
    from django.conf import settings

    from leadmgmt.devrun import parse_args as run_args
    from leadmgmt.tenancy.context import tenant_scope
    from leadmgmt.tenancy.models import Role
    from leadmgmt.tenancy.services import DEFAULT_TEAM, membership_upsert, tenant_create
    from leads.models import Lead
    from workspace.services.imports import (
        import_mapping_set,
        import_run,
        import_run_start,
        import_upload,
    )

    if args.drain_workers is None:  # after django_setup: the checkout's own packages
        args.drain_workers = run_args([]).worker_concurrency
    duplicates, bad = int(args.rows * args.duplicates), int(args.rows * args.bad)
    out: dict = {"rows": args.rows, "duplicates": duplicates, "bad": bad, "chunk_rows": settings.IMPORT_CHUNK_ROWS,
                 "drain_workers": args.drain_workers}
    provisioned = tenant_create(slug=f"bench-import-{uuid.uuid4().hex[:6]}", name="Import benchmark",
                                admin_email=f"bench-import-{uuid.uuid4().hex[:6]}@bench.test")
    tenant = provisioned.tenant
    for n in range(1, 5):
        membership_upsert(tenant=tenant, email=f"sdr{n}@bench-import.test", role=Role.SDR, team_name=DEFAULT_TEAM)
    say(f"generating {duplicates:,} existing leads and a file of {args.rows:,} rows …")
    existing_leads(tenant_id=tenant.pk, count=duplicates)
    content = csv_file(rows=args.rows, duplicates=duplicates, bad=bad)
    out["file_bytes"] = len(content)
    maintenance("VACUUM ANALYZE leads_lead", "CHECKPOINT")

    say("floor: COPY of the same file into a bare table …")
    out["copy_rows"], out["copy_seconds"] = copy_floor(content)
    say("floor: the same rows into the lead table by one INSERT … SELECT (no Python), rolled back …")
    out["lead_floor_rows"], out["lead_floor_seconds"] = lead_insert_floor(content, tenant_id=tenant.pk)
    maintenance("CHECKPOINT")

    with parked_tasks(), tenant_scope(tenant):
        from leadmgmt.audit.actors import Actor

        actor = Actor.agent("Import bench")
        with Timer() as t:
            job = import_upload(tenant=tenant, actor=actor, file_name="bench.csv", content=content)
            job = import_mapping_set(job=job, mapping=job.mapping)
        out["upload_seconds"] = t.seconds
        say(f"import run ({settings.IMPORT_CHUNK_ROWS:,} rows per chunk) …")
        import_run_start(job=job, actor=actor)
        with Timer() as t:
            job = import_run(tenant=tenant, job_id=job.pk)
        out["run_seconds"] = t.seconds
        out["state"] = job.state
        out["counts"] = {"created": job.created, "merged": job.merged, "possible_duplicates": job.possible_duplicates,
                         "refused": job.refused}
        say(f"capture pipeline by {args.drain_workers} process(es) until every imported lead is scored and owned …")
        imported = Lead.objects.for_tenant(tenant).filter(source="import")
        with Timer() as t:
            pipeline_drain(tenant_id=tenant.pk, workers=args.drain_workers)
        out["pipeline_seconds"] = t.seconds
        out["unscored"] = imported.filter(scored_at__isnull=True).count()
        out["unowned"] = imported.filter(owner__isnull=True).count()
        out["imported"] = imported.count()
    return out


def _workers(out: dict) -> str:
    if out["drain_workers"] == 1:
        return "one worker's work in this process"
    return (f"{out['drain_workers']} processes side by side, as that many worker processes would; "
            "--drain-workers 1 for one worker's work")


def report(out: dict) -> str:
    copy_rate = out["copy_rows"] / out["copy_seconds"] if out["copy_seconds"] else float("inf")
    run_rate = out["rows"] / out["run_seconds"] if out["run_seconds"] else float("inf")
    ratio = run_rate / copy_rate if copy_rate else 0.0
    floor_rate = out["lead_floor_rows"] / out["lead_floor_seconds"] if out["lead_floor_seconds"] else float("inf")
    counts = out["counts"]
    pipeline = f"pipeline: score and route every lead ({out['drain_workers']} proc.)"
    rows = [
        f"data: {out['rows']:,} rows ({out['file_bytes']:,} bytes), {out['duplicates']:,} of existing leads, "
        f"{out['bad']:,} bad; {out['chunk_rows']:,} rows per chunk",
        f"{'step':<48}{'rows':>12}{'seconds':>10}{'rows/s':>12}",
        f"{'floor: COPY into a bare table':<48}{out['copy_rows']:>12,}{out['copy_seconds']:>10.2f}{copy_rate:>12,.0f}",
        f"{'floor: same rows INSERT … SELECT into leads_lead':<48}{out['lead_floor_rows']:>12,}"
        f"{out['lead_floor_seconds']:>10.2f}{floor_rate:>12,.0f}",
        f"{'upload: detection and mapping (not in the ratio)':<48}{out['rows']:>12,}{out['upload_seconds']:>10.2f}"
        f"{out['rows'] / out['upload_seconds'] if out['upload_seconds'] else 0:>12,.0f}",
        f"{'import run (import_run, chunked, set-based)':<48}{out['rows']:>12,}{out['run_seconds']:>10.2f}"
        f"{run_rate:>12,.0f}",
        f"{pipeline:<48}{out['imported']:>12,}{out['pipeline_seconds']:>10.2f}"
        f"{out['imported'] / out['pipeline_seconds'] if out['pipeline_seconds'] else 0:>12,.0f}",
        f"import {out['state']}: created {counts['created']:,}, merged {counts['merged']:,}, possible duplicates "
        f"{counts['possible_duplicates']:,}, refused {counts['refused']:,}; not scored {out['unscored']}, "
        f"not owned {out['unowned']}",
        f"lead table floor / COPY = {floor_rate / copy_rate if copy_rate else 0:.3f}x (no import can beat it); "
        f"import / lead table floor = {run_rate / floor_rate if floor_rate else 0:.3f}x",
        f"import / COPY = {ratio:.3f}x (target >= {TARGET_RATIO}x); scored and owned {out['pipeline_seconds']:.1f}s "
        f"after the import ended (target <= {TARGET_PIPELINE_SECONDS:.0f}s, drained by {_workers(out)})",
    ]
    verdict = []
    if ratio < TARGET_RATIO:
        verdict.append(f"MISSED the COPY ratio ({ratio:.3f}x < {TARGET_RATIO}x)")
    if out["pipeline_seconds"] > TARGET_PIPELINE_SECONDS or out["unscored"] or out["unowned"]:
        verdict.append("MISSED scored and owned within the target")
    rows.append("; ".join(verdict) if verdict else "targets met")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_services("import.py")
    with throwaway_database("bench_import") as url:
        django_setup(url)
        out = run(args)
    if args.json:
        print(json.dumps(out, default=str))
    else:
        say(report(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
