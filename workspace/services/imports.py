"""CSV imports, step by step, every step's state on the ImportJob: upload (detection and a suggested mapping),
the mapping (validated, remembered per tenant), the dry run, the run in chunks (a Celery task, progress on the
job, resumable), the refused rows as CSV, and undo while nobody has worked the imported leads."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import dateparse, timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Tenant
from leadmgmt.webhooks.models import WebhookEventType
from leadmgmt.webhooks.services.emit import webhook_emit
from leads.models import Account, Activity, Lead, Signal, StageTransition
from leads.statistics import lead_statistics_refresh
from routing.models import Assignment

from ..models import (
    ImportJob,
    ImportLead,
    ImportMapping,
    ImportRowError,
    ImportRowPhase,
    ImportState,
)
from .import_files import data_rows, file_detect, headers_key, mapping_suggest, mapping_validate
from .import_rows import ImportContext, RowOutcome, chunk_apply

log = logging.getLogger(__name__)

IMPORT_AGENT = Actor.agent("Import Agent")  # the actor of a run whose person is gone
PREVIEW_ROWS = 100  # rows with a reason in the dry run's answer (every refused row is in the CSV)
RESULTS = ("created", "merged", "possible_duplicate", "refused")
_COUNT_FIELDS = {"created": "created", "merged": "merged", "possible_duplicate": "possible_duplicates",
                 "refused": "refused"}
MAPPABLE = (ImportState.UPLOADED, ImportState.MAPPED, ImportState.PREVIEWING, ImportState.PREVIEWED)
PREVIEW_PROGRESS_SECONDS = 24 * 3600  # how long the dry run's progress stays in the cache
RUNNABLE = (ImportState.MAPPED, ImportState.PREVIEWED, ImportState.FAILED)


class ImportConflict(Exception):
    """The step does not fit the import's state (a 409 with this message)."""


def _locked(job: ImportJob) -> ImportJob:
    return ImportJob.objects.for_tenant(job.tenant_id).defer("content").select_for_update().get(pk=job.pk)


def _actor(job: ImportJob) -> Actor:
    return Actor.for_user(job.created_by) if job.created_by_id else IMPORT_AGENT


# --- Upload and mapping ---------------------------------------------------------------------------------


def _file_name(name: str) -> str:
    """The uploaded file's name as text PostgreSQL stores: no control characters or lone surrogates."""
    clean = "".join(c for c in (name or "") if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF)
    return clean[:255]


def import_upload(*, tenant: Tenant, actor: Actor, file_name: str, content: bytes) -> ImportJob:
    """Store the file with what was detected and a mapping to confirm: the tenant's last mapping of files with
    these columns, else one suggested from the header names. `ImportFileRefused` (413/400) past the limits."""
    detection = file_detect(content=content)
    remembered = (ImportMapping.objects.for_tenant(tenant).filter(header_key=headers_key(detection.headers))
                  .values_list("mapping", flat=True).first())
    if remembered is not None and len(remembered) != len(detection.headers):
        remembered = None
    return ImportJob.objects.create(
        tenant=tenant, created_by=actor.user, created_by_name=actor.name[:200], file_name=_file_name(file_name),
        content=content, file_size=len(content), file_sha256=hashlib.sha256(content).hexdigest(),
        encoding=detection.encoding, delimiter=detection.delimiter, has_header=detection.has_header,
        headers=detection.headers, row_count=detection.row_count,
        mapping=remembered if remembered is not None else mapping_suggest(detection.headers),
        mapping_remembered=remembered is not None,
    )


@transaction.atomic
def import_mapping_set(*, job: ImportJob, mapping: Any, remember: bool = True) -> ImportJob:
    """Confirm the column mapping (validated: a message per faulty column) and, unless `remember` is off,
    remember it for the tenant's next file with these columns. A dry run made with another mapping is forgotten."""
    job = _locked(job)
    if job.state not in MAPPABLE:
        raise ImportConflict(f"The mapping can change until the import runs; this one is {job.state}.")
    job.mapping = mapping_validate(headers=job.headers, mapping=mapping)
    job.state, job.preview = ImportState.MAPPED, None
    job.save(update_fields=["mapping", "state", "preview", "updated_at"])
    ImportRowError.objects.for_tenant(job.tenant_id).filter(job=job, phase=ImportRowPhase.PREVIEW).delete()
    if not remember:
        return job
    ImportMapping.objects.for_tenant(job.tenant_id).update_or_create(
        tenant_id=job.tenant_id, header_key=headers_key(job.headers),
        defaults={"headers": job.headers, "mapping": job.mapping})
    return job


# --- Dry run and run ------------------------------------------------------------------------------------


def _rows(job: ImportJob) -> list[tuple[int, list[str]]]:
    content = ImportJob.objects.for_tenant(job.tenant_id).filter(pk=job.pk).values_list("content", flat=True).get()
    return list(data_rows(content=bytes(content), encoding=job.encoding, delimiter=job.delimiter,
                          has_header=job.has_header))


def _context(job: ImportJob, *, dry_run: bool) -> ImportContext:
    return ImportContext(tenant=job.tenant, job_id=job.pk, file_name=job.file_name, headers=job.headers,
                         mapping=job.mapping, actor=_actor(job), now=timezone.now(), dry_run=dry_run)


def _counts(outcomes: list[RowOutcome]) -> dict[str, int]:
    counts = dict.fromkeys(RESULTS, 0)
    for outcome in outcomes:
        counts[outcome.result] += 1
    return counts


def _refused_rows(job: ImportJob, phase: str, outcomes: list[RowOutcome]) -> list[ImportRowError]:
    return [ImportRowError(tenant_id=job.tenant_id, job_id=job.pk, phase=phase, line=o.line, errors=o.errors,
                           raw=o.raw) for o in outcomes if o.result == "refused"]


def _preview_progress_key(job: ImportJob) -> str:
    return f"import:{job.tenant_id}:{job.pk}:preview_progress"


def import_preview(*, job: ImportJob) -> ImportJob:
    """The dry run: every chunk through the run's own code in one transaction that is rolled back. Stores the
    counts (created, merged, possible duplicates, refused) and the first rows of each non-created outcome with
    their reason on the job, and every refused row for the CSV. Its progress (rows checked) is in the cache,
    since its transaction commits nothing until the end (`import_preview_progress`)."""
    if job.state not in MAPPABLE:
        raise ImportConflict(f"A dry run comes before the run; this import is {job.state}.")
    mapping_validate(headers=job.headers, mapping=job.mapping)
    rows = _rows(job)
    ctx = _context(job, dry_run=True)
    outcomes: list[RowOutcome] = []
    started = timezone.now().timestamp()
    with transaction.atomic():
        for start in range(0, len(rows), settings.IMPORT_CHUNK_ROWS):
            outcomes += chunk_apply(ctx=ctx, rows=rows[start:start + settings.IMPORT_CHUNK_ROWS])
            cache.set(_preview_progress_key(job), (len(outcomes), started, timezone.now().timestamp()),
                      PREVIEW_PROGRESS_SECONDS)
        transaction.set_rollback(True)
    with transaction.atomic():
        job_mapping = job.mapping
        job = _locked(job)
        if job.state not in MAPPABLE:
            raise ImportConflict(f"The import started while its dry run ran; it is {job.state}.")
        if job.mapping != job_mapping:
            raise ImportConflict("The mapping changed while the dry run ran; it is done again with the new one.")
        ImportRowError.objects.for_tenant(job.tenant_id).filter(job=job, phase=ImportRowPhase.PREVIEW).delete()
        ImportRowError.objects.bulk_create(_refused_rows(job, ImportRowPhase.PREVIEW, outcomes))
        job.preview = {"counts": _counts(outcomes), "rows": [o.as_dict() for o in outcomes
                                                             if o.result != "created"][:PREVIEW_ROWS]}
        job.state = ImportState.PREVIEWED
        job.save(update_fields=["preview", "state", "updated_at"])
    return job


def import_preview_start(*, job: ImportJob) -> ImportJob:
    """The dry run in a worker (the pages' way: a big file takes minutes): the import is `previewing` until
    `import_preview_task` stores the answer (then `previewed`) or fails (back to `mapped`, with `error`)."""
    with transaction.atomic():
        job = _locked(job)
        if job.state not in MAPPABLE:
            raise ImportConflict(f"A dry run comes before the run; this import is {job.state}.")
        mapping_validate(headers=job.headers, mapping=job.mapping)
        job.state, job.preview, job.error = ImportState.PREVIEWING, None, ""
        job.save(update_fields=["state", "preview", "error", "updated_at"])
        cache.delete(_preview_progress_key(job))
        tenant_id, job_id = job.tenant_id, job.pk

        def enqueue() -> None:
            from ..tasks import import_preview_task

            import_preview_task.delay(tenant_id=tenant_id, job_id=job_id)

        transaction.on_commit(enqueue)
    return job


def import_preview_failed(*, tenant: Tenant, job_id: int, error: str) -> None:
    """A dry run that raised: the import goes back to `mapped`, with the message (the mapping form again)."""
    with transaction.atomic():
        ImportJob.objects.for_tenant(tenant).filter(pk=job_id, state=ImportState.PREVIEWING).update(
            state=ImportState.MAPPED, error=error[:2000], updated_at=timezone.now())


def import_run_start(*, job: ImportJob, actor: Actor) -> ImportJob:
    """Start the run (a Celery task after commit). A running import is handed to a worker again (it resumes
    after its last committed chunk); a finished or undone one is refused."""
    with transaction.atomic():
        job = _locked(job)
        if job.state == ImportState.UPLOADED:
            raise ImportConflict("Confirm the column mapping first (PUT …/mapping/).")
        if job.state == ImportState.PREVIEWING:
            raise ImportConflict("The dry run is still going on; run the import once it is done.")
        if job.state in (ImportState.FINISHED, ImportState.UNDONE):
            raise ImportConflict(f"This import has already run; it is {job.state}.")
        if job.state in RUNNABLE:
            mapping_validate(headers=job.headers, mapping=job.mapping)
            first = job.started_at is None
            job.state, job.error = ImportState.RUNNING, ""
            job.started_at = job.started_at or timezone.now()
            job.save(update_fields=["state", "error", "started_at", "updated_at"])
            if first:
                audit_record(tenant=job.tenant, actor=actor, action="import.started", obj=job,
                             metadata={"file_name": job.file_name, "rows": job.row_count,
                                       "file_sha256": job.file_sha256})
        tenant_id, job_id = job.tenant_id, job.pk

        def enqueue() -> None:
            from ..tasks import import_run_task

            import_run_task.delay(tenant_id=tenant_id, job_id=job_id)

        transaction.on_commit(enqueue)
    return job


def import_run(*, tenant: Tenant, job_id: int) -> ImportJob:
    """The run (the task's body): chunk after chunk, each in one transaction with its refused rows and the job's
    counts and progress, so a killed run resumes after the last committed chunk and a finished one does
    nothing. The job row is locked per chunk: two workers on one import take turns, never the same rows.
    The planner's statistics of the lead tables are refreshed every IMPORT_ANALYZE_ROWS rows and at the end of
    a run of more than one chunk (leads.statistics)."""
    job = ImportJob.objects.for_tenant(tenant).defer("content").get(pk=job_id)
    if job.state != ImportState.RUNNING:
        return job
    rows = _rows(job)
    retried = False
    analyzed = job.rows_done
    while True:
        if job.rows_done - analyzed >= settings.IMPORT_ANALYZE_ROWS:
            lead_statistics_refresh()  # between chunks: the pipeline plans the imported leads' batches meanwhile
            analyzed = job.rows_done
        try:
            with transaction.atomic():
                job = _locked(job)
                if job.state != ImportState.RUNNING:
                    return job
                chunk = rows[job.rows_done:job.rows_done + settings.IMPORT_CHUNK_ROWS]
                if not chunk:
                    job = _finish(job)
                    break
                outcomes = chunk_apply(ctx=_context(job, dry_run=False), rows=chunk)
                ImportRowError.objects.bulk_create(_refused_rows(job, ImportRowPhase.RUN, outcomes),
                                                   ignore_conflicts=True)
                for result, count in _counts(outcomes).items():
                    setattr(job, _COUNT_FIELDS[result], getattr(job, _COUNT_FIELDS[result]) + count)
                job.rows_done += len(chunk)
                job.save(update_fields=[*_COUNT_FIELDS.values(), "rows_done", "updated_at"])
            retried = False
        except IntegrityError:
            # A capture of the same email or domain committed between the chunk's read and its insert: once more,
            # the chunk now finds it.
            if retried:
                raise
            retried = True
    if job.rows_done > settings.IMPORT_CHUNK_ROWS:
        lead_statistics_refresh()  # more than one chunk's leads: what the tenant looks like now
    return job


def _finish(job: ImportJob) -> ImportJob:
    """The run is done: the uploaded file is not kept any longer (its name, size and sha256 are; the refused rows
    stay for their download), so a finished import holds no more personal data than its leads do."""
    job.state, job.finished_at, job.content = ImportState.FINISHED, timezone.now(), b""
    job.save(update_fields=["state", "finished_at", "content", "updated_at"])
    seconds = round((job.finished_at - job.started_at).total_seconds(), 3)
    audit_record(tenant=job.tenant, actor=_actor(job), action="import.finished", obj=job,
                 metadata={"rows": job.row_count, **import_counts(job), "seconds": seconds})
    webhook_emit(tenant=job.tenant, event_type=WebhookEventType.IMPORT_FINISHED, key=f"import-{job.pk}",
                 now=job.finished_at, data={"import": {
                     "id": job.pk, "file_name": job.file_name, "rows": job.row_count, "counts": import_counts(job),
                     "started_at": job.started_at, "finished_at": job.finished_at, "seconds": seconds}})
    return job


def import_failed(*, tenant: Tenant, job_id: int, error: str) -> None:
    """A run that raised stops as failed (it can be started again: it resumes after its last committed chunk)."""
    with transaction.atomic():
        ImportJob.objects.for_tenant(tenant).filter(pk=job_id, state=ImportState.RUNNING).update(
            state=ImportState.FAILED, error=error[:2000], updated_at=timezone.now())


def imports_stalled(*, now: dt.datetime | None = None) -> list[tuple[int, int]]:
    """(tenant id, import id) of the running imports with no chunk committed for IMPORT_SWEEP_AFTER_SECONDS: their
    task was lost (a killed worker, a Redis restart). Handing one to a worker again is safe: the chunks take
    turns on the job row's lock and continue from its last committed chunk."""
    cutoff = (now or timezone.now()) - dt.timedelta(seconds=settings.IMPORT_SWEEP_AFTER_SECONDS)
    stalled = []
    for tenant in Tenant.objects.filter(is_active=True).order_by("pk"):
        with tenant_scope(tenant):
            stalled += [(tenant.pk, pk) for pk in ImportJob.objects.for_tenant(tenant).filter(
                state=ImportState.RUNNING, updated_at__lt=cutoff).order_by("pk").values_list("pk", flat=True)]
    return stalled


def previews_stalled(*, now: dt.datetime | None = None) -> list[tuple[int, int]]:
    """(tenant id, import id) of the dry runs in a worker (`previewing`) that have neither started nor checked a
    chunk for IMPORT_SWEEP_AFTER_SECONDS: their task was lost. A dry run writes nothing, so a second one is
    harmless; the one that ends last stores the same answer again."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.IMPORT_SWEEP_AFTER_SECONDS)
    stalled = []
    for tenant in Tenant.objects.filter(is_active=True).order_by("pk"):
        with tenant_scope(tenant):
            for job in ImportJob.objects.for_tenant(tenant).filter(
                    state=ImportState.PREVIEWING, updated_at__lt=cutoff).only("pk", "tenant_id").order_by("pk"):
                _done, _started, last = cache.get(_preview_progress_key(job)) or (0, None, None)
                if last is None or last < cutoff.timestamp():
                    stalled.append((tenant.pk, job.pk))
    return stalled


def import_counts(job: ImportJob) -> dict[str, int]:
    return {field: getattr(job, field) for field in _COUNT_FIELDS.values()}


def _progress(*, done: int, total: int, elapsed: float) -> dict[str, Any]:
    rate = done / elapsed if elapsed > 0 and done else None
    left = total - done
    return {
        "rows_done": done, "rows_total": total,
        "percent": round(100 * done / total, 1) if total else 100.0,
        "rows_per_second": round(rate, 1) if rate else None,
        "seconds_left": (0 if left <= 0 else round(left / rate, 1) if rate else None),
    }


def import_progress(job: ImportJob, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the progress bar shows: rows done of the total, rows per second so far, seconds left."""
    now = now or timezone.now()
    end = job.finished_at or now
    elapsed = (end - job.started_at).total_seconds() if job.started_at else 0.0
    return _progress(done=job.rows_done, total=job.row_count, elapsed=elapsed)


def import_preview_progress(job: ImportJob, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The progress of a dry run in a worker, in the shape of `import_progress` (rows checked so far)."""
    done, started, _last = cache.get(_preview_progress_key(job)) or (0, None, None)
    elapsed = (now or timezone.now()).timestamp() - started if started else 0.0
    return _progress(done=done, total=job.row_count, elapsed=elapsed)


# --- Refused rows ---------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def refused_phase(job: ImportJob) -> str:
    return ImportRowPhase.PREVIEW if job.state in MAPPABLE else ImportRowPhase.RUN


def refused_csv_lines(*, job: ImportJob) -> Iterator[str]:
    """The refused rows of the run (of the dry run before it): line number, field messages, the row as sent."""
    writer = csv.writer(_Echo())
    yield writer.writerow(["line", "errors", *map(csv_cell, job.headers)])
    refused = (ImportRowError.objects.for_tenant(job.tenant_id).filter(job=job, phase=refused_phase(job))
               .order_by("line").values_list("line", "errors", "raw"))
    for line, errors, raw in refused.iterator(chunk_size=2000):
        messages = "; ".join(f"{field}: {message}" for field, items in errors.items() for message in items)
        yield writer.writerow([line, csv_cell(messages), *map(csv_cell, raw)])


# --- Undo -----------------------------------------------------------------------------------------------


def _worked(*, tenant: Tenant, job: ImportJob, created: list, merged: dict) -> list[str]:
    """Ids of the import's leads someone has worked: a created lead with any activity, a stage change or an
    assignment by a person, an acceptance, rejection or contact, or a hand edit; a merged lead with one of
    those since the import started, or a hand edit of a field the import filled."""
    since = job.started_at
    ids = [*created, *merged]
    recent = Q(lead_id__in=created) | Q(lead_id__in=list(merged))
    worked = set(Activity.objects.for_tenant(tenant).filter(
        Q(lead_id__in=created) | Q(lead_id__in=list(merged), created_at__gte=since)).values_list("lead_id", flat=True))
    worked |= set(StageTransition.objects.for_tenant(tenant).filter(recent, actor_user__isnull=False).filter(
        Q(lead_id__in=created) | Q(at__gte=since)).values_list("lead_id", flat=True))
    worked |= set(Assignment.objects.for_tenant(tenant).filter(recent, actor_user__isnull=False).filter(
        Q(lead_id__in=created) | Q(at__gte=since)).values_list("lead_id", flat=True))
    for lead_id, edited, accepted, rejected, contacted in Lead.objects.for_tenant(tenant).filter(pk__in=ids).values_list(
            "id", "edited_fields", "accepted_at", "rejected_at", "first_contacted_at"):
        if lead_id in merged:
            if set(edited or []) & set(merged[lead_id]):
                worked.add(lead_id)
        elif edited or accepted or rejected or contacted:
            worked.add(lead_id)
    return sorted(str(lead_id) for lead_id in worked)


def _before_value(name: str, value: Any) -> Any:
    field = Lead._meta.get_field(name)
    if value is not None and field.get_internal_type() == "DateTimeField":
        return dateparse.parse_datetime(value)
    return value


@transaction.atomic
def import_undo(*, job: ImportJob, actor: Actor) -> ImportJob:
    """Delete the leads the import created and put back the fields its merges filled, unless one of them has
    been worked since (`_worked`): then nothing changes and the answer names them. One transaction, one audit
    event. Signals that came in for a deleted lead's email stay, waiting for their lead again."""
    job = _locked(job)
    if job.state != ImportState.FINISHED:
        raise ImportConflict(f"Only a finished import can be undone; this one is {job.state}.")
    tenant = job.tenant
    records = list(ImportLead.objects.for_tenant(tenant).filter(job=job).values_list("lead_id", "created", "before"))
    created = [lead_id for lead_id, was_created, _before in records if was_created]
    merged = {lead_id: before for lead_id, was_created, before in records if not was_created}
    worked = _worked(tenant=tenant, job=job, created=created, merged=merged)
    if worked:
        raise ValidationError({"detail": [
            f"{len(worked)} of the leads this import created or merged have been worked since (an activity, a stage "
            "change or an assignment by a person, an acceptance, a rejection, a contact or a hand edit), so the "
            "import can no longer be undone."], "lead_ids": worked[:50]})
    Signal.objects.for_tenant(tenant).filter(lead_id__in=created).update(lead=None)
    deleted = Lead.objects.for_tenant(tenant).filter(pk__in=created).delete()[1].get("leads.Lead", 0)
    leads = list(Lead.objects.for_tenant(tenant).filter(pk__in=list(merged)))
    fields: set[str] = set()
    for lead in leads:
        for name, value in merged[lead.pk].items():
            attname = "account_id" if name == "account" else name
            setattr(lead, attname, _before_value(name, value) if name != "attributes" else value)
            fields.add(attname)
        lead.updated_at = timezone.now()
    if leads and fields:
        Lead.objects.for_tenant(tenant).bulk_update(leads, sorted(fields | {"updated_at"}))
    accounts_deleted = _import_accounts_delete(job)
    job.state, job.undone_at = ImportState.UNDONE, timezone.now()
    job.save(update_fields=["state", "undone_at", "updated_at"])
    audit_record(tenant=tenant, actor=actor, action="import.undone", obj=job,
                 metadata={"leads_deleted": deleted, "merges_reverted": len(leads),
                           "accounts_deleted": accounts_deleted})
    return job


def _import_accounts_delete(job: ImportJob) -> int:
    """The accounts the import created (its `account.created` audit events) that no lead holds any more and that
    nobody has touched since (no owner given, not edited after the run): deleted with it, one statement."""
    created = (AuditEvent.objects.for_tenant(job.tenant_id)
               .filter(action="account.created", at__gte=job.started_at, metadata__import_id=job.pk)
               .values_list("object_id", flat=True))
    ids = [int(object_id) for object_id in created if object_id.isdigit()]
    if not ids:
        return 0
    held = Lead.objects.for_tenant(job.tenant_id).filter(account_id__in=ids).values("account_id")
    orphans = (Account.objects.for_tenant(job.tenant_id)
               .filter(pk__in=ids, owner__isnull=True, updated_at__lte=job.finished_at).exclude(pk__in=held))
    return orphans.delete()[1].get("leads.Account", 0)

