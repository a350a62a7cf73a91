"""The CSV import pages (`/imports/…`): the tenant's imports with an upload form, and one page per import that
shows its step (detection and mapping, the dry run's answer, the run's progress bar polled with htmx, the result
with the refused rows as CSV and undo). The same role rule as the API (`lead.import`: tenant admins and marketing
ops) and the same services (workspace.services.imports); another tenant's import is a 404."""
from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models.functions import Substr
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.roles import LEAD_IMPORT
from leads.models import Lead
from leads.selectors import LeadViewer

from .forms import ImportUndoForm, ImportUploadForm
from .models import ImportJob, ImportLead, ImportState
from .services.import_files import ATTRIBUTE_PREFIX, TARGETS, ImportFileRefused, rows_read
from .services.imports import (
    MAPPABLE,
    RUNNABLE,
    ImportConflict,
    import_mapping_set,
    import_preview_progress,
    import_preview_start,
    import_progress,
    import_run_start,
    import_undo,
    import_upload,
    refused_csv_lines,
)
from .views import workspace_required

PAGE_SIZE = 25
SAMPLE_ROWS = 5  # rows of the file shown under its detection, and sample values per column
SAMPLE_BYTES = 64 * 1024  # where those rows are looked for
LEADS_SHOWN = 20  # leads of a finished import linked from its page
PROGRESS_POLL_SECONDS = 1
ATTRIBUTE_CHOICE = "attributes"  # the select's value for "a custom attribute" (its key in a text input)
TARGET_LABELS = {
    "email": "Email", "first_name": "First name", "last_name": "Last name", "name": "Full name (split)",
    "phone": "Phone", "company": "Company", "job_title": "Job title", "company_size": "Company size",
    "industry": "Industry", "country": "Country", "company_domain": "Company domain", "website": "Website",
    "utm_source": "UTM source", "utm_medium": "UTM medium", "utm_campaign": "UTM campaign", "utm_term": "UTM term",
    "utm_content": "UTM content", "campaign": "Campaign", "source": "Source",
    "marketing_consent": "Marketing consent", "page_url": "Page URL", "owner_email": "Owner (by email)",
    "consent_at": "Consent date", "status": "Status", "stage": "Stage", "external_id": "ID in the source system",
    "created_at": "Created at (in the source system)",
}
RESULT_LABELS = {"created": "Created", "merged": "Merged", "possible_duplicate": "Possible duplicate",
                 "refused": "Refused"}
DELIMITER_LABELS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
ENCODING_LABELS = {"utf-8-sig": "UTF-8 with BOM", "utf-8": "UTF-8", "cp1252": "Windows-1252 (Latin-1)",
                   "latin-1": "Latin-1"}


def import_required(view):
    """Signed in, with an active tenant, and a member who may import (`lead.import`); everyone else gets a 403."""

    @workspace_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not LeadViewer.from_request(request).may(LEAD_IMPORT):
            raise PermissionDenied("Imports are for tenant admins and marketing ops.")
        return view(request, *args, **kwargs)

    return wrapper


def _job(request, job_id: int) -> ImportJob:
    job = (ImportJob.objects.for_tenant(request.tenant).defer("content").select_related("tenant")
           .filter(pk=job_id).first())
    if job is None:
        raise Http404("No such import.")
    return job


def _messages(error: ValidationError) -> list[str]:
    return [message for items in error.message_dict.values() for message in items]


# --- The list and the upload ---------------------------------------------------------------------------


def _list_page(request, form: ImportUploadForm, *, status: int = 200):
    jobs = ImportJob.objects.for_tenant(request.tenant).defer("content", "preview").order_by("-created_at", "-id")
    page = Paginator(jobs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"job": job, "progress": import_progress(job)} for job in page]
    return render(request, "workspace/imports.html",
                  {"form": form, "page": page, "rows": rows, "max_mb": settings.IMPORT_MAX_BYTES // (1024 * 1024),
                   "max_rows": settings.IMPORT_MAX_ROWS}, status=status)


@require_http_methods(["GET", "POST"])
@import_required
def imports(request):
    """The tenant's imports, newest first, and the upload form (POST: store the file, then its mapping step)."""
    if request.method == "GET":
        return _list_page(request, ImportUploadForm())
    form = ImportUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _list_page(request, form, status=413 if form.too_large else 400)
    upload = form.cleaned_data["file"]
    try:
        job = import_upload(tenant=request.tenant, actor=Actor.for_user(request.user), file_name=upload.name or "",
                            content=upload.read())
    except ImportFileRefused as exc:
        for message in _messages(exc):
            form.add_error("file", message)
        return _list_page(request, form, status=exc.status)
    return redirect("import-page", job_id=job.pk)


# --- One import ----------------------------------------------------------------------------------------


def _sample(job: ImportJob) -> list[tuple[int, list[str]]]:
    """The first rows of the file, read from its first SAMPLE_BYTES only (a 50 MB file is not loaded to show 5)."""
    head = (ImportJob.objects.for_tenant(job.tenant_id).filter(pk=job.pk)
            .annotate(head=Substr("content", 1, SAMPLE_BYTES)).values_list("head", flat=True).get())
    rows = rows_read(bytes(head).decode(job.encoding, errors="ignore"), job.delimiter)
    if job.has_header:
        next(rows, None)
    sample = []
    for line, cells in rows:
        sample.append((line, cells + [""] * (len(job.headers) - len(cells))))
        if len(sample) == SAMPLE_ROWS:
            break
    return sample


def _columns(job: ImportJob, sample, *, mapping: list[str], attribute_keys: dict[int, str] | None = None,
             errors: dict[int, list[str]] | None = None) -> list[dict]:
    """One row of the mapping form per column: its header, sample values, the target chosen and its errors."""
    columns = []
    for index, header in enumerate(job.headers):
        target = mapping[index] if index < len(mapping) else ""
        key = (attribute_keys or {}).get(index)
        if target.startswith(ATTRIBUTE_PREFIX) or target == ATTRIBUTE_CHOICE:
            choice, key = ATTRIBUTE_CHOICE, key if key is not None else target[len(ATTRIBUTE_PREFIX):]
        else:
            choice = target
        columns.append({"index": index, "header": header, "choice": choice, "attribute_key": key or "",
                        "samples": [cells[index] for _line, cells in sample if index < len(cells) and cells[index]],
                        "errors": (errors or {}).get(index, [])})
    return columns


def _leads(job: ImportJob) -> list[Lead]:
    """The first leads of the import in the file's order (its records are written row by row, chunk by chunk)."""
    ids = list(ImportLead.objects.for_tenant(job.tenant_id).filter(job=job).order_by("id")
               .values_list("lead_id", flat=True)[:LEADS_SHOWN])
    leads = Lead.objects.for_tenant(job.tenant_id).filter(pk__in=ids).only(
        "id", "email", "phone", "first_name", "last_name", "company").in_bulk()
    return [leads[lead_id] for lead_id in ids if lead_id in leads]


def _render(request, job: ImportJob, *, status: int = 200, step: str | None = None, **extra):
    """The import's page at its step (`step`: the mapping form again, before the run)."""
    context = {"job": job, "progress": _progress(job), "step": step or _step(job),
               "poll_seconds": PROGRESS_POLL_SECONDS, **extra}
    if context["step"] == "mapping" and "columns" not in context:
        sample = _sample(job)
        context.update(sample=sample, columns=_columns(job, sample, mapping=job.mapping))
    if context["step"] in ("mapping", "preview"):
        context.update(targets=[(t, TARGET_LABELS.get(t, t)) for t in TARGETS], attribute_choice=ATTRIBUTE_CHOICE,
                       encoding_label=ENCODING_LABELS.get(job.encoding, job.encoding),
                       delimiter_label=DELIMITER_LABELS.get(job.delimiter, job.delimiter))
    if context["step"] == "preview" and job.preview:
        context["preview_counts"] = job.preview["counts"]
        context["preview_rows"] = [{**row, "label": RESULT_LABELS.get(row["result"], row["result"]),
                                    "reasons": [f"{field}: {m}" for field, items in (row.get("errors") or {}).items()
                                                for m in items]} for row in job.preview["rows"]]
    if context["step"] == "done":
        context.setdefault("undo_form", ImportUndoForm())
        context["leads"] = _leads(job) if job.state == ImportState.FINISHED else []
    return render(request, "workspace/import_page.html", context, status=status)


def _progress(job: ImportJob) -> dict:
    return import_preview_progress(job) if job.state == ImportState.PREVIEWING else import_progress(job)


def _step(job: ImportJob) -> str:
    if job.state == ImportState.UPLOADED or (job.state == ImportState.MAPPED and not job.preview):
        return "mapping"
    if job.state == ImportState.PREVIEWING:
        return "previewing"
    if job.state in (ImportState.MAPPED, ImportState.PREVIEWED):
        return "preview"
    if job.state == ImportState.RUNNING:
        return "running"
    return "done"  # finished, failed, undone


@require_GET
@import_required
def import_page(request, job_id: int):
    """The import at its step; `?change=1` shows the mapping form again before the run."""
    job = _job(request, job_id)
    if request.GET.get("change") and job.state in MAPPABLE:
        return _render(request, job, step="mapping")
    return _render(request, job)


@require_POST
@import_required
def import_mapping(request, job_id: int):
    """Confirm the mapping (one select per column, a key input for a custom attribute), then the dry run in a
    worker (the page shows its progress)."""
    job = _job(request, job_id)
    mapping, keys = [], {}
    for index in range(len(job.headers)):
        choice = request.POST.get(f"target_{index}", "")
        if choice == ATTRIBUTE_CHOICE:
            keys[index] = request.POST.get(f"attribute_{index}", "")
            mapping.append(f"{ATTRIBUTE_PREFIX}{keys[index].strip()}")
        else:
            mapping.append(choice)
    remember = request.POST.get("remember") == "on"
    try:
        job = import_mapping_set(job=job, mapping=mapping, remember=remember)
        job = import_preview_start(job=job)
    except ImportConflict as exc:
        return _render(request, _job(request, job_id), status=409, error=str(exc))
    except ValidationError as exc:
        per_column: dict[int, list[str]] = {}
        general = []
        for field, items in exc.message_dict.items():
            if field.startswith("mapping."):
                per_column.setdefault(int(field.split(".", 1)[1]), []).extend(items)
            else:
                general.extend(items)
        sample = _sample(job)
        return _render(request, job, status=400, step="mapping", mapping_errors=general, remember=remember,
                       sample=sample, columns=_columns(job, sample, mapping=mapping, attribute_keys=keys,
                                                       errors=per_column))
    return redirect("import-page", job_id=job.pk)


@require_POST
@import_required
def import_run(request, job_id: int):
    """Start the run in a worker (or resume a failed one); the page then shows the progress bar."""
    job = _job(request, job_id)
    if job.state not in RUNNABLE:
        return _render(request, job, status=409, error=f"This import cannot run now: it is {job.get_state_display()}.")
    try:
        import_run_start(job=job, actor=Actor.for_user(request.user))
    except ImportConflict as exc:
        return _render(request, _job(request, job_id), status=409, error=str(exc))
    except ValidationError as exc:
        return _render(request, _job(request, job_id), status=400, error=" ".join(_messages(exc)))
    return redirect("import-page", job_id=job.pk)


@require_GET
@import_required
def import_progress_part(request, job_id: int):
    """The progress bar alone (what the page polls during the dry run and the run); once that is over, htmx
    reloads the whole page."""
    job = _job(request, job_id)
    response = render(request, "workspace/_import_progress.html",
                      {"job": job, "progress": _progress(job), "poll_seconds": PROGRESS_POLL_SECONDS})
    if job.state not in (ImportState.RUNNING, ImportState.PREVIEWING):
        response["HX-Refresh"] = "true"
    return response


@require_GET
@import_required
def import_refused_csv(request, job_id: int):
    """Every refused row (of the run, of the dry run before it) with its line number and field messages."""
    job = _job(request, job_id)
    response = HttpResponse("".join(refused_csv_lines(job=job)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-refused.csv"'
    return response


@require_POST
@import_required
def import_undo_view(request, job_id: int):
    """Undo a finished import once confirmed (a checkbox); refused, with the reason, when its leads were worked."""
    job = _job(request, job_id)
    form = ImportUndoForm(request.POST)
    if not form.is_valid():
        return _render(request, job, status=400, undo_form=form)
    try:
        import_undo(job=job, actor=Actor.for_user(request.user))
    except ImportConflict as exc:
        return _render(request, _job(request, job_id), status=409, error=str(exc))
    except ValidationError as exc:
        detail = exc.message_dict.get("detail", [])
        return _render(request, _job(request, job_id), status=409, error=" ".join(detail))
    messages.success(request, "Import undone: the leads it created are deleted and its merges reverted.")
    return redirect("import-page", job_id=job.pk)
