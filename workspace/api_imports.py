"""API v1 of CSV imports (`/api/v1/imports/…`): upload, mapping, dry run, run with progress, refused rows as
CSV, undo. Tenant admins and marketing ops, and API keys with `leads:write` (the matrix of
leadmgmt.tenancy.roles, action `lead.import`)."""
from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from leadmgmt.api import (
    COMMON_ERRORS,
    ERRORS_RESPONSE,
    PaginatedMixin,
    StorableJSONParser,
    TenantApiView,
    actor_for,
    errors_response,
    page,
)
from leadmgmt.tenancy.models import ApiScope
from leadmgmt.tenancy.roles import LEAD_IMPORT
from leads.selectors import LeadViewer

from .models import ImportJob, ImportState
from .services.import_files import TARGETS, ImportFileRefused
from .services.imports import (
    ImportConflict,
    import_counts,
    import_mapping_set,
    import_preview,
    import_preview_progress,
    import_preview_start,
    import_progress,
    import_run_start,
    import_undo,
    import_upload,
    refused_csv_lines,
)


class ImportJobSerializer(serializers.ModelSerializer):
    """An import and every step's state: detection, mapping, dry run, counts, progress."""

    counts = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    targets = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = ["id", "state", "file_name", "file_size", "file_sha256", "encoding", "delimiter", "has_header",
                  "headers", "row_count", "mapping", "mapping_remembered", "targets", "preview", "counts",
                  "progress", "error", "created_by_name", "created_at", "started_at", "finished_at", "undone_at"]
        read_only_fields = fields

    def get_counts(self, job) -> dict:
        return import_counts(job)

    def get_progress(self, job) -> dict:
        return import_preview_progress(job) if job.state == ImportState.PREVIEWING else import_progress(job)

    def get_targets(self, job) -> list[str]:
        """The fields a column may be mapped to, besides `attributes.<key>` and "" (skip the column)."""
        return list(TARGETS)


class ImportMappingSerializer(serializers.Serializer):
    mapping = serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        help_text="One target per column, in column order: a field of `targets`, `attributes.<key>`, or \"\" to skip "
        "the column.")


class ImportApiView(TenantApiView):
    """Base of the import endpoints: who may import, and the import of the URL (another tenant's is a 404)."""

    required_scopes = {"*": ApiScope.LEADS_WRITE}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not LeadViewer.from_request(request).may(LEAD_IMPORT):
            raise exceptions.PermissionDenied("Imports are for tenant admins and marketing ops.")

    def job(self) -> ImportJob:
        job = (ImportJob.objects.for_tenant(self.request.tenant).defer("content").select_related("tenant")
               .filter(pk=self.kwargs["pk"]).first())
        if job is None:
            raise Http404("No import matches the given query.")
        return job

    def handle_exception(self, exc):
        if isinstance(exc, ImportConflict):
            return errors_response({"detail": [str(exc)]}, status.HTTP_409_CONFLICT)
        if isinstance(exc, ImportFileRefused):
            return errors_response(exc.message_dict, exc.status)
        return super().handle_exception(exc)

    def answer(self, job: ImportJob, code: int = status.HTTP_200_OK) -> Response:
        return Response(ImportJobSerializer(job).data, status=code)


class ImportListView(PaginatedMixin, ImportApiView):
    """`GET /api/v1/imports/` (newest first) and `POST /api/v1/imports/` (multipart, the CSV in `file`)."""

    parser_classes = [MultiPartParser, StorableJSONParser]

    @extend_schema(operation_id="imports_list", summary="CSV imports", tags=["imports"],
                   responses={200: ImportJobSerializer(many=True), **COMMON_ERRORS})
    def get(self, request):
        jobs = ImportJob.objects.for_tenant(request.tenant).defer("content").select_related("tenant")
        return page(self, jobs.order_by("-created_at", "-id"), ImportJobSerializer)

    @extend_schema(
        operation_id="imports_create", summary="Upload a CSV file", tags=["imports"],
        description="Multipart upload (`file`). The answer (201) holds what was detected (encoding, delimiter, "
        "header row, row count) and the suggested mapping: the tenant's last mapping of files with these columns, "
        "else one from the header names. 413 above IMPORT_MAX_BYTES, 400 above IMPORT_MAX_ROWS.",
        request={"multipart/form-data": {"type": "object", "properties": {"file": {"type": "string",
                                                                                      "format": "binary"}}}},
        responses={201: ImportJobSerializer, 413: ERRORS_RESPONSE, **COMMON_ERRORS})
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise exceptions.ValidationError({"file": ["Attach the CSV file in the `file` field (multipart)."]})
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise ImportFileRefused(f"The file is {upload.size:,} bytes; imports are limited to "
                                    f"{settings.IMPORT_MAX_BYTES:,} bytes.", status=413)
        job = import_upload(tenant=request.tenant, actor=actor_for(request), file_name=upload.name or "",
                            content=upload.read())
        return self.answer(job, status.HTTP_201_CREATED)


class ImportDetailView(ImportApiView):
    """`GET /api/v1/imports/{id}/`: the import, its counts and its progress (what the progress bar polls)."""

    @extend_schema(operation_id="imports_retrieve", summary="An import and its progress", tags=["imports"],
                   responses={200: ImportJobSerializer, **COMMON_ERRORS})
    def get(self, request, pk):
        return self.answer(self.job())


class ImportMappingView(ImportApiView):
    """`PUT /api/v1/imports/{id}/mapping/`: confirm the column mapping (remembered for the tenant's next file)."""

    @extend_schema(operation_id="imports_mapping", summary="Set the column mapping", tags=["imports"],
                   request=ImportMappingSerializer, responses={200: ImportJobSerializer, 409: ERRORS_RESPONSE,
                                                               **COMMON_ERRORS})
    def put(self, request, pk):
        data = self.valid(ImportMappingSerializer)
        return self.answer(import_mapping_set(job=self.job(), mapping=data["mapping"]))


class ImportPreviewView(ImportApiView):
    """`POST /api/v1/imports/{id}/preview/`: the dry run (nothing written but its answer, kept on the import). A
    file of up to IMPORT_PREVIEW_INLINE_ROWS rows is answered at once (200, `previewed`); a bigger one's dry run
    runs in a worker (202, `previewing`: poll the import, whose `progress` counts the rows checked)."""

    @extend_schema(operation_id="imports_preview", summary="Dry-run the import", tags=["imports"], request=None,
                   responses={200: ImportJobSerializer, 202: ImportJobSerializer, 409: ERRORS_RESPONSE,
                              **COMMON_ERRORS})
    def post(self, request, pk):
        job = self.job()
        if job.row_count > settings.IMPORT_PREVIEW_INLINE_ROWS:
            return self.answer(import_preview_start(job=job), status.HTTP_202_ACCEPTED)
        return self.answer(import_preview(job=job))


class ImportRunView(ImportApiView):
    """`POST /api/v1/imports/{id}/run/`: start (or resume) the run in a worker; 202, then poll the import."""

    @extend_schema(operation_id="imports_run", summary="Run the import", tags=["imports"], request=None,
                   responses={202: ImportJobSerializer, 409: ERRORS_RESPONSE, **COMMON_ERRORS})
    def post(self, request, pk):
        return self.answer(import_run_start(job=self.job(), actor=actor_for(request)), status.HTTP_202_ACCEPTED)


class ImportRefusedCsvView(ImportApiView):
    """`GET /api/v1/imports/{id}/refused.csv`: every refused row with its line number and field messages."""

    @extend_schema(operation_id="imports_refused_csv", summary="Refused rows as CSV", tags=["imports"],
                   responses={(200, "text/csv"): {"type": "string"}, **COMMON_ERRORS})
    def get(self, request, pk):
        job = self.job()
        # Built here, not streamed: the rows are read in the request's tenant scope (row-level security).
        response = HttpResponse("".join(refused_csv_lines(job=job)), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-refused.csv"'
        return response


class ImportUndoView(ImportApiView):
    """`POST /api/v1/imports/{id}/undo/`: remove the leads the import created and revert its merges."""

    @extend_schema(operation_id="imports_undo", summary="Undo the import", tags=["imports"], request=None,
                   responses={200: ImportJobSerializer, 409: ERRORS_RESPONSE, **COMMON_ERRORS})
    def post(self, request, pk):
        return self.answer(import_undo(job=self.job(), actor=actor_for(request)))
