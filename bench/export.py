"""Lead export bench: `GET /api/v1/leads/export/` streams 10,000 and then 100,000 leads from a real gunicorn worker,
and prints rows/s and the peak RSS of the worker serving it, so that a flat memory shows.

In a throwaway database (bench/_common.py) it bulk-inserts leads with owners (one INSERT … SELECT, not the intake),
starts gunicorn with one worker and one thread on a free loopback port, warms the worker up with a small export,
then downloads the whole list over HTTP with an API key, twice: at `--first` leads and at `--leads` leads. The
figure is the worker's peak RSS (VmHWM, /proc) before and after each export: streamed from a cursor in chunks, the
growth must stay small and not grow with the row count.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BASE_DIR, django_setup, maintenance, require_services, say, throwaway_database  # noqa: E402

COLUMNS = "id,first_name,last_name,email,company,country,owner_email,status,stage,score,band,source,created_at"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000, help="leads in the second, large export (default 100,000)")
    parser.add_argument("--first", type=int, default=10_000, help="leads in the first export (default 10,000)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    args.first = min(args.first, args.leads)
    return args


def leads_insert(*, tenant_id: int, owner_ids: list[int], start: int, n: int) -> None:
    """`n` leads numbered from `start`, owners spread over `owner_ids`, in one INSERT … SELECT."""
    from django.db import connection, transaction

    owners = "ARRAY[" + ",".join(str(int(i)) for i in owner_ids) + "]::bigint[]"
    sql = (
        "INSERT INTO leads_lead (id, tenant_id, email, first_name, last_name, phone, job_title, company, "
        "company_domain, company_size, industry, country, source, utm_source, utm_medium, utm_campaign, utm_term, "
        "utm_content, campaign, marketing_consent, consent_source, is_personal_email, status, stage, attributes, "
        "edited_fields, band, lead_class, lead_class_reason, archive_reason, is_hot, score, owner_id, created_at, "
        "updated_at) "
        "SELECT gen_random_uuid(), %(tenant)s, 'lead' || g.i || '@company' || mod(g.i, 5000) || '.example', "
        "'Zoë', 'Brontë ' || g.i, '+4930' || g.i, 'Head of Sales', '=Company ' || mod(g.i, 5000), "
        "'company' || mod(g.i, 5000) || '.example', 50, 'Software', 'DE', 'web_form', '', '', '', '', '', '', "
        "false, '', false, 'new', 'mql', '{}'::jsonb, '[]'::jsonb, 'warm', '', '', '', false, mod(g.i, 100), "
        f"({owners})[1 + mod(g.i, {len(owner_ids)})], now() - (g.i || ' seconds')::interval, now() "
        "FROM generate_series(%(start)s, %(end)s) AS g(i)"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, {"tenant": tenant_id, "start": start, "end": start + n - 1})
    maintenance("VACUUM ANALYZE leads_lead")


def setup(args) -> tuple[int, list[int], str]:
    from django.contrib.auth import get_user_model

    from leadmgmt.tenancy.models import ApiScope, Membership, Role, Tenant
    from leadmgmt.tenancy.services import api_key_create

    tenant = Tenant.objects.create(slug=f"bench-export-{uuid.uuid4().hex[:6]}", name="Export bench")
    owners = []
    for i in range(20):
        user = get_user_model().objects.create(username=f"rep{i}-{uuid.uuid4().hex[:6]}@bench.test",
                                               email=f"rep{i}@bench.test")
        Membership.objects.unscoped().create(tenant=tenant, user=user, role=Role.SDR)
        owners.append(user.pk)
    _key, raw = api_key_create(tenant=tenant, name="export bench", scopes=[ApiScope.LEADS_READ])
    return tenant.pk, owners, raw


class Server:
    """gunicorn with one worker and one thread (the process whose memory is measured), in its own group."""

    def __init__(self):
        from leadmgmt.devrun import gunicorn_argv
        from leadmgmt.embedded import _free_port

        self.port = _free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="bench-export-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen([*gunicorn_argv(bind=f"127.0.0.1:{self.port}", workers=1, threads=1),
                                      "--timeout", "600"], cwd=BASE_DIR, env={**os.environ},
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        sys.exit(f"gunicorn did not come up; its log:\n{Path(self.log.name).read_text()[-4000:]}")

    def worker_pid(self) -> int:
        children = [int(p) for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {children}")
        return children[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        Path(self.log.name).unlink(missing_ok=True)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc status")


def download(port: int, key: str, *, query: str = "") -> tuple[int, int, float]:
    """(rows, bytes, seconds) of one export, read in 64 KiB pieces as a client would write them to a file."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request("GET", f"/api/v1/leads/export/?columns={COLUMNS}{query}", headers={"Authorization": f"Bearer {key}"})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"export answered {response.status}: {response.read()[:500]!r}")
    size = lines = 0
    while chunk := response.read(65536):
        size += len(chunk)
        lines += chunk.count(b"\n")  # no cell holds a line break here
    conn.close()
    return lines - 1, size, time.perf_counter() - started  # minus the header line


def run(args) -> dict:
    tenant_id, owners, key = setup(args)
    leads_insert(tenant_id=tenant_id, owner_ids=owners, start=1, n=args.first)
    server = Server()
    try:
        server.wait_ready()
        pid = server.worker_pid()
        download(server.port, key, query="&score_min=99")  # warm-up: imports, connection, a small export
        out = {"worker_pid": pid, "runs": []}
        for total in (args.first, args.leads):
            if total > args.first:
                leads_insert(tenant_id=tenant_id, owner_ids=owners, start=args.first + 1, n=total - args.first)
            before = peak_rss_kib(pid)
            rows, size, seconds = download(server.port, key)
            after = peak_rss_kib(pid)
            if rows != total:
                raise RuntimeError(f"exported {rows} rows of {total}")
            out["runs"].append({"rows": rows, "mib": round(size / 2**20, 1), "seconds": round(seconds, 2),
                                "rows_per_s": round(rows / seconds), "peak_rss_before_mib": round(before / 1024, 1),
                                "peak_rss_after_mib": round(after / 1024, 1),
                                "growth_mib": round((after - before) / 1024, 1)})
        return out
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_services("export.py")
    with throwaway_database("bench_export") as url:
        django_setup(url)
        out = run(args)
    if args.json:
        print(json.dumps(out))
        return 0
    say(f"Lead export over HTTP (GET /api/v1/leads/export/, {len(COLUMNS.split(','))} columns, owner joined), "
        "one gunicorn worker, one thread")
    say(f"{'rows':>9} {'MiB':>7} {'seconds':>8} {'rows/s':>9} {'peak RSS before':>16} {'after':>8} {'growth':>8}")
    for r in out["runs"]:
        say(f"{r['rows']:>9,} {r['mib']:>7} {r['seconds']:>8} {r['rows_per_s']:>9,} "
            f"{r['peak_rss_before_mib']:>13} MiB {r['peak_rss_after_mib']:>4} MiB {r['growth_mib']:>4} MiB")
    small, large = out["runs"][0], out["runs"][-1]
    say(f"peak RSS growth: {small['growth_mib']} MiB for {small['rows']:,} rows, "
        f"{large['growth_mib']} MiB for {large['rows']:,} rows (flat: it does not grow with the rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
