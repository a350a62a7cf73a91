"""Nurture benchmark: --enrollments due enrolments sent over real SMTP by the Nurture Agent (emails/s).

Creates a throwaway database on the DATABASE_URL server (dropped afterwards) and an SMTP sink
(aiosmtpd, in this process) that counts what it receives. A tenant with a 3-step sequence and
--enrollments consenting leads, each enrolled with its first step due, generated in SQL. Figures:
  * the minute sweeps over all of them (auto-enrol check, exit sweep, pause/resume), set-based;
  * claim only: picking due steps, evaluating conditions, rendering and inserting the messages and
    advancing the enrolments, in transactions of --batch (what the agent does before SMTP);
  * the full agent (claim + SMTP send + marking sent + audit) for every enrolment, in batches of --batch;
  * the floor: the same number of already-built emails sent over one SMTP connection to the same sink,
    with nothing else — the cost of SMTP itself on this machine.
Every enrolment must get exactly one email (checked: sink count, Message rows, no duplicates).

    python -m leadmgmt.embedded exec -- python bench/nurture.py --enrollments 100000
"""
from __future__ import annotations

import argparse
import json
import socket
import sys

from _common import Timer, django_setup, maintenance, require_services, say, throwaway_database


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--enrollments", type=int, default=100_000, help="due enrolments (default 100,000)")
    parser.add_argument("--batch", type=int, default=5_000, help="steps claimed per agent batch (default 5,000)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if args.enrollments < 1 or args.batch < 1:
        parser.error("--enrollments and --batch must be at least 1")
    return args


class Sink:
    """An aiosmtpd handler that appends each message's X-Leadmgmt-Message-Id header to a file. It runs in a
    process of its own (`bench/nurture.py --sink PORT FILE`), so the SMTP server does not share the bench's
    interpreter (and its GIL) with the sender being measured."""

    def __init__(self, path: str):
        self.out = open(path, "a", buffering=1)  # noqa: SIM115 - closed with the process

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        marker = b"X-Leadmgmt-Message-Id: "
        content = envelope.original_content or envelope.content
        start = content.find(marker)
        message_id = content[start + len(marker):content.find(b"\r\n", start)].decode() if start >= 0 else "-"
        self.out.write(message_id + "\n")
        return "250 OK"


def sink_main(port: int, path: str) -> None:
    import signal
    import time

    from aiosmtpd.controller import Controller

    controller = Controller(Sink(path), hostname="127.0.0.1", port=port)
    controller.start()
    signal.signal(signal.SIGTERM, lambda *_: (controller.stop(), sys.exit(0)))
    print("sink ready", flush=True)
    while True:
        time.sleep(3600)


class SinkProcess:
    def __init__(self, port: int, path: str):
        import subprocess

        self.path = path
        self.process = subprocess.Popen([sys.executable, __file__, "--sink", str(port), path], stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout.readline().strip() == "sink ready"

    def ids(self) -> list[str]:
        with open(self.path) as f:
            return [line.strip() for line in f if line.strip()]

    @property
    def count(self) -> int:
        return len(self.ids())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup(n: int):
    from django.db import connection, transaction

    from leadmgmt.tenancy.models import Tenant
    from nurture.models import NurtureSettings, Sequence, SequenceStatus, Step, StepCondition

    tenant = Tenant.objects.create(slug="bench-nurture", name="Nurture bench")
    NurtureSettings.objects.unscoped().create(tenant=tenant, from_name="Bench Marketing",
                                              from_email="marketing@bench.test", postal_address="1 Bench Road, Testville",
                                              max_per_minute=100_000)
    sequence = Sequence.objects.unscoped().create(tenant=tenant, name="New Lead", kind="new_lead",
                                                  status=SequenceStatus.ACTIVE, auto_enroll=True,
                                                  audience_classes=["nurture"], ready_score=41)
    body = ("Hi {{ first_name|default:'there' }},\n\nTeams like {{ company|default:'yours' }} use our guide: "
            "https://bench.test/guide\n\nAnd the checklist: https://bench.test/checklist\n\n{{ owner_name }}")
    Step.objects.unscoped().bulk_create([
        Step(tenant=tenant, sequence=sequence, position=1, delay_days=0, subject="Welcome, {{ first_name }}", body=body),
        Step(tenant=tenant, sequence=sequence, position=2, delay_days=3, subject="A guide for {{ company }}", body=body,
             condition=StepCondition.OPENED_PREVIOUS),
        Step(tenant=tenant, sequence=sequence, position=3, delay_days=7, subject="Still interested?", body=body),
    ])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO leads_lead (id, tenant_id, email, first_name, last_name, phone, job_title, company, "
            "company_domain, industry, country, source, utm_source, utm_medium, utm_campaign, utm_term, utm_content, "
            "campaign, marketing_consent, consent_source, is_personal_email, status, stage, attributes, edited_fields, "
            "band, lead_class, lead_class_reason, archive_reason, is_hot, score, created_at, updated_at) "
            "SELECT gen_random_uuid(), %(t)s, 'n' || g.i || '@prospect' || mod(g.i, 5000) || '.test', 'Pat', "
            "'Lead ' || g.i, '', 'Manager', 'Company ' || mod(g.i, 5000), '', '', '', 'web_form', '', '', '', '', '', "
            "'', true, 'form', false, 'new', 'raw', '{}'::jsonb, '[]'::jsonb, 'warm', 'nurture', '', '', false, 30, "
            "now() - interval '1 day', now() FROM generate_series(1, %(n)s) AS g(i)", {"t": tenant.pk, "n": n})
        cursor.execute(
            "INSERT INTO nurture_enrollment (tenant_id, sequence_id, lead_id, kind, status, automatic, enrolled_by, "
            "enrolled_at, next_position, next_due_at, messages_sent, paused_reason, exit_reason, exit_note, updated_at) "
            "SELECT %(t)s, %(s)s, l.id, 'new_lead', 'active', true, 'bench', now() - interval '1 hour', 1, "
            "now() - interval '1 minute', 0, '', '', '', now() FROM leads_lead l WHERE l.tenant_id = %(t)s",
            {"t": tenant.pk, "s": sequence.pk})
    maintenance("VACUUM ANALYZE leads_lead", "VACUUM ANALYZE nurture_enrollment")
    return tenant


def run(args: argparse.Namespace, port: int, sink: SinkProcess) -> dict:
    from django.db import transaction
    from django.utils import timezone

    from nurture.models import Message, NurtureSettings
    from nurture.services.enrollment import (
        enrollments_auto_enroll,
        enrollments_exit_sweep,
        enrollments_pause_sweep,
    )
    from nurture.services.sending import messages_claim, messages_send

    out: dict = {"enrollments": args.enrollments, "batch": args.batch}
    say(f"generating {args.enrollments:,} leads with a due enrolment …")
    tenant = setup(args.enrollments)
    nurture = NurtureSettings.objects.unscoped().get(tenant=tenant)

    now = timezone.now()
    with Timer() as t:
        enrolled = enrollments_auto_enroll(tenant=tenant, now=now)
        exits = enrollments_exit_sweep(tenant=tenant, now=now)
        paused, resumed = enrollments_pause_sweep(tenant=tenant, now=now)
    out["sweeps"] = {"seconds": t.seconds, "enrolled": enrolled, "exited": sum(exits.values()), "paused": paused,
                     "resumed": resumed}

    say(f"claim only, in transactions of {args.batch:,} (rolled back) …")
    sample = min(args.enrollments, args.batch * 2)
    with Timer() as t:
        claimed = 0
        with transaction.atomic():
            while claimed < sample:
                got = len(messages_claim(tenant=tenant, nurture=nurture, now=now,
                                         limit=min(args.batch, sample - claimed)).message_ids)
                if not got:
                    break
                claimed += got
            transaction.set_rollback(True)
    out["claim"] = {"messages": claimed, "seconds": t.seconds, "rate": claimed / t.seconds}

    say(f"full agent: claim + SMTP + mark sent + audit for all {args.enrollments:,} …")
    with Timer() as t:
        total = 0
        while True:
            ids = messages_claim(tenant=tenant, nurture=nurture, now=timezone.now(), limit=args.batch).message_ids
            if not ids:
                break
            sent, failed, released = messages_send(tenant=tenant, nurture=nurture, message_ids=ids)
            total += sent
            if failed or released:
                say(f"  {failed} failed, {released} released in a batch")
    rows = Message.objects.unscoped().filter(tenant=tenant)
    received = _drained(sink, total)
    out["agent"] = {"sent": total, "seconds": t.seconds, "rate": total / t.seconds, "sink": len(received),
                    "rows": rows.count(), "rows_sent": rows.filter(status="sent").count(),
                    "duplicates": len(received) - len(set(received))}
    out["once"] = (out["agent"]["sink"] == total == args.enrollments == out["agent"]["rows_sent"]
                   and out["agent"]["duplicates"] == 0)

    say("floor: the same number of prebuilt emails over one SMTP connection …")
    from django.core.mail import get_connection

    from nurture.emails import email_build

    message = rows.first()
    before = sink.count
    connection = get_connection()
    connection.open()
    email = email_build(message=message, nurture=nurture, tenant_name=tenant.name, connection=connection)
    with Timer() as t:
        for _ in range(args.enrollments):
            email.send()
    connection.close()
    got = len(_drained(sink, before + args.enrollments)) - before
    out["floor"] = {"sent": got, "seconds": t.seconds, "rate": got / t.seconds}
    return out


def _drained(sink: SinkProcess, expected: int) -> list[str]:
    """What the sink wrote, once it has written `expected` lines (SMTP answers before the file write lands)."""
    import time

    deadline = time.monotonic() + 10
    ids = sink.ids()
    while len(ids) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
        ids = sink.ids()
    return ids


def report(out: dict) -> str:
    sw, cl, ag, fl = out["sweeps"], out["claim"], out["agent"], out["floor"]
    rows = [
        f"{'nurture, ' + format(out['enrollments'], ',') + ' due enrolments':<58}{'items':>10}{'seconds':>10}{'per s':>10}",
        f"{'minute sweeps (auto-enrol, exits, pause/resume), set-based':<58}{out['enrollments']:>10,}"
        f"{sw['seconds']:>10.2f}{out['enrollments'] / sw['seconds']:>10,.0f}",
        f"{'claim only (pick, conditions, render, insert, advance)':<58}{cl['messages']:>10,}{cl['seconds']:>10.2f}"
        f"{cl['rate']:>10,.0f}",
        f"{'full agent (claim + SMTP + mark sent + audit)':<58}{ag['sent']:>10,}{ag['seconds']:>10.2f}{ag['rate']:>10,.0f}",
        f"{'floor: prebuilt email over one SMTP connection':<58}{fl['sent']:>10,}{fl['seconds']:>10.2f}{fl['rate']:>10,.0f}",
        f"agent / floor = {ag['rate'] / fl['rate']:.0%} of raw SMTP throughput; "
        f"{out['enrollments']:,} due steps drain in {ag['seconds'] / 60:.1f} min at full speed",
        f"sink received {ag['sink']:,}; Message rows {ag['rows']:,} ({ag['rows_sent']:,} sent); duplicates {ag['duplicates']}",
        "every enrolment got exactly one email" if out["once"] else "AT-MOST-ONCE CHECK FAILED",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--sink"]:
        sink_main(int(argv[1]), argv[2])
        return 0
    args = parse_args(argv)
    require_services("nurture.py")
    import tempfile

    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        sink = SinkProcess(port, f"{tmp}/received.txt")
        try:
            with throwaway_database("bench_nurture") as url:
                django_setup(url)
                from django.conf import settings

                settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
                settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
                settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
                settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
                from leadmgmt.celery import app

                app.conf.task_always_eager = False
                out = run(args, port, sink)
        finally:
            sink.stop()
    if args.json:
        print(json.dumps(out, default=str))
    else:
        say(report(out))
    return 0 if out["once"] else 1


if __name__ == "__main__":
    sys.exit(main())
