"""The public intake endpoint (POST /api/v1/intake/): form key, body limits, CORS, throttling and
the 303 redirect of plain HTML form posts around `intake_submit()` (honeypot, idempotency, capture)."""
from __future__ import annotations

import io
import time
from urllib.parse import unquote_to_bytes, urlsplit

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files.uploadedfile import UploadedFile
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.cross_tenant import cross_tenant
from leadmgmt.tenancy.models import Tenant
from leads.models import LeadForm
from leads.services.intake import IdempotencyKeyInvalid, IdempotencyKeyReused, intake_submit
from leads.throttles import IntakeFormRateThrottle, IntakeIpRateThrottle, client_ip, throttles_check

FORM_KEY_HEADER = "X-Form-Key"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
CORS_ALLOW_HEADERS = f"Content-Type, {FORM_KEY_HEADER}, {IDEMPOTENCY_HEADER}, X-Requested-With"
CORS_EXPOSE_HEADERS = f"{REPLAYED_HEADER}, Retry-After"
CORS_MAX_AGE = 600
LEGACY_FORM_CHARSET = "windows-1252"
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class IntakeRefused(exceptions.APIException):
    """A refusal with field-level messages, rendered as `{"errors": {field: [messages]}}`."""

    def __init__(self, status_code: int, errors: dict[str, list[str]], auth_header: str | None = None):
        super().__init__(detail=errors)
        self.status_code = status_code
        if auth_header:
            self.auth_header = auth_header


def _too_large() -> IntakeRefused:
    limit = settings.INTAKE_MAX_BODY_BYTES
    return IntakeRefused(413, {"detail": [f"The request body is larger than {limit} bytes."]})


def _flatten(data) -> dict:
    """A QueryDict as a plain dict: one value → the value, several → a list; uploads described."""
    if not hasattr(data, "lists"):
        return data
    out = {}
    for key, values in data.lists():
        values = [
            f"[file {v.name}, {v.size} bytes]" if isinstance(v, UploadedFile) else v for v in values
        ]
        out[key] = values[0] if len(values) == 1 else values
    return out


def _origin_allowed_by_any_form(origin: str) -> bool:
    """For requests whose form is not known (yet): is the Origin allowed by some active form?"""
    origin = origin.rstrip("/").lower()
    candidates = [["*"], [origin], [origin + "/"]]
    query = Q()
    for candidate in candidates:
        query |= Q(allowed_origins__contains=candidate)
    with cross_tenant("intake_form"):
        forms = list(LeadForm.objects.unscoped().filter(query, is_active=True, tenant__is_active=True)
                     .only("allowed_origins")[:20])
    return any(form.origin_allowed(origin) for form in forms)


# --- Forms by key, kept briefly in this process -----------------------------------------------
# A form read from the database is kept for FORM_CACHE_SECONDS in the process that read it, so a busy form
# costs one query per process every few seconds instead of one per submission. That is also how long a form
# (or tenant) deactivated, deleted or edited elsewhere, in the admin or another process, may still be answered
# as it was: at most 5 seconds. A save or delete in this process empties the cache at once (the receivers below).
FORM_CACHE_SECONDS = 5.0
_FORM_FIELDS = [field.attname for field in LeadForm._meta.concrete_fields]
_TENANT_FIELDS = [field.attname for field in Tenant._meta.concrete_fields]
_forms: dict[str, tuple[float, tuple, tuple]] = {}  # key -> (read at, form's values, tenant's values)
_clock = time.monotonic


def _form_lookup(key: str) -> LeadForm | None:
    """The form of `key` with its tenant, active or not (None: no such form), read from the database and kept."""
    if len(key) > LeadForm._meta.get_field("key").max_length or not key.isprintable():
        return None
    with cross_tenant("intake_form"):
        form = LeadForm.objects.unscoped().select_related("tenant").filter(key=key).first()
    if form is not None:
        _forms[key] = (_clock(), tuple(getattr(form, name) for name in _FORM_FIELDS),
                       tuple(getattr(form.tenant, name) for name in _TENANT_FIELDS))
    return form


def _form_cached(key: str) -> LeadForm | None:
    """The form of `key` as this process read it less than FORM_CACHE_SECONDS ago (None: not read lately). A
    fresh instance each time: requests running in other threads never share one."""
    kept = _forms.get(key)
    if kept is None:
        return None
    read_at, form_values, tenant_values = kept
    if _clock() - read_at >= FORM_CACHE_SECONDS:
        _forms.pop(key, None)
        return None
    form = LeadForm.from_db(DEFAULT_DB_ALIAS, _FORM_FIELDS,
                            [list(value) if isinstance(value, list) else value for value in form_values])
    form.tenant = Tenant.from_db(DEFAULT_DB_ALIAS, _TENANT_FIELDS, tenant_values)
    return form


def _form_active(form: LeadForm | None) -> LeadForm | None:
    return form if form is not None and form.is_active and form.tenant.is_active else None


@receiver(post_save, sender=LeadForm, dispatch_uid="leads.intake.forms_forget_form_saved")
@receiver(post_delete, sender=LeadForm, dispatch_uid="leads.intake.forms_forget_form_deleted")
@receiver(post_save, sender=Tenant, dispatch_uid="leads.intake.forms_forget_tenant_saved")
@receiver(post_delete, sender=Tenant, dispatch_uid="leads.intake.forms_forget_tenant_deleted")
def _forms_forget(sender, **kwargs) -> None:
    """A form or tenant saved or deleted in this process: forget every kept form (it is read again)."""
    _forms.clear()


class IntakeView(APIView):
    """Public lead capture for web forms (JSON, urlencoded or multipart), keyed by a form key."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [IntakeIpRateThrottle]
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    renderer_classes = [JSONRenderer]

    form: LeadForm | None = None
    _cors_allowed: bool | None = None
    _ip_counted = False  # this POST was counted against its client IP's limit

    # --- POST ------------------------------------------------------------------------------

    @extend_schema(
        summary="Capture a lead from a web form",
        description=(
            "Public endpoint for web forms, ad platforms and integrations. The form key goes in the "
            f"`{FORM_KEY_HEADER}` header, a `form_key` query parameter or a `form_key` field. "
            "A duplicate (same email, or same phone when no email is given) is merged into the "
            "existing lead (200). Plain HTML form posts get a 303 redirect to the form's success URL. "
            f"Send `{IDEMPOTENCY_HEADER}` to make retries safe for 24 hours."
        ),
        auth=[],
        parameters=[
            OpenApiParameter(FORM_KEY_HEADER, str, OpenApiParameter.HEADER, required=False),
            OpenApiParameter(IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("form_key", str, OpenApiParameter.QUERY, required=False),
        ],
        request={
            "application/json": {"type": "object", "additionalProperties": True},
            "application/x-www-form-urlencoded": {"type": "object", "additionalProperties": True},
            "multipart/form-data": {"type": "object", "additionalProperties": True},
        },
        responses={
            201: inline_serializer("IntakeCreated", {"id": serializers.UUIDField(), "result": serializers.CharField()}),
            200: inline_serializer("IntakeMerged", {"id": serializers.UUIDField(), "result": serializers.CharField()}),
            303: OpenApiResponse(description="Redirect to the form's success URL (HTML form posts)."),
            400: OpenApiResponse(description='Field errors: {"errors": {field: [messages]}}'),
            401: OpenApiResponse(description="No form key."),
            403: OpenApiResponse(description="Unknown or inactive form key, or Origin not allowed."),
            413: OpenApiResponse(description="Body too large."),
            415: OpenApiResponse(description="Unsupported content type."),
            422: OpenApiResponse(description="Idempotency-Key reused with a different body."),
            429: OpenApiResponse(description="Too many submissions (per form or per client IP)."),
        },
    )
    def post(self, request, *args, **kwargs):
        self._body_read(request)
        data = self._data_parse(request)
        form = self.form = self._form_resolve(request, data)
        origin = request.headers.get("Origin")
        if not form.origin_allowed(origin):
            raise IntakeRefused(403, {"Origin": [f"Submissions from {origin} are not allowed for this form."]})
        self._throttles_count(request, IntakeFormRateThrottle())

        with tenant_scope(form.tenant):
            try:
                result = intake_submit(
                    form=form, data=data, idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
                    ip_address=client_ip(request), user_agent=request.headers.get("User-Agent", ""),
                )
            except IdempotencyKeyInvalid as exc:
                raise IntakeRefused(400, {IDEMPOTENCY_HEADER: [str(exc)]}) from None
            except IdempotencyKeyReused as exc:
                raise IntakeRefused(422, {IDEMPOTENCY_HEADER: [str(exc)]}) from None
            response = self._respond(request, result.status_code, result.body)
        if result.replayed:
            response[REPLAYED_HEADER] = "true"
        return response

    # --- rate limits -----------------------------------------------------------------------

    def check_throttles(self, request):
        """A POST is counted once its form is known, against its IP's and its form's limits in one Redis round
        trip (`_throttles_count`), or, refused before that, by `handle_exception`; other methods here."""
        if request.method != "POST":
            super().check_throttles(request)

    def _throttles_count(self, request, *throttles) -> None:
        """Count this POST against its client IP's limit (once) and `throttles`, in one round trip; 429 (with
        Retry-After) when over one."""
        if not self._ip_counted:
            throttles = (IntakeIpRateThrottle(), *throttles)
            self._ip_counted = True
        refused = throttles_check(throttles, request=request, view=self) if throttles else None
        if refused is not None:
            self.throttled(request, refused.wait())

    def handle_exception(self, exc):
        # A POST refused before its limits were counted (413, 400, 401, 403) counts against its IP's limit too,
        # and a client over that limit is answered 429, as if the limit had been checked first.
        if self.request.method == "POST" and not self._ip_counted and not isinstance(exc, exceptions.Throttled):
            try:
                self._throttles_count(self.request)
            except exceptions.Throttled as throttled:
                exc = throttled
        return super().handle_exception(exc)

    # --- request checks --------------------------------------------------------------------

    def _body_read(self, request) -> None:
        """413 before parsing: by Content-Length, and for chunked bodies by reading at most
        one byte more than the limit."""
        limit = settings.INTAKE_MAX_BODY_BYTES
        meta = request.META
        length = meta.get("CONTENT_LENGTH")
        if length:
            try:
                size = int(length)
            except ValueError:
                raise IntakeRefused(400, {"detail": ["Invalid Content-Length header."]}) from None
            if size > limit:
                raise _too_large()
            if len(request._request.body) > limit:
                raise _too_large()
        elif "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
            stream = meta.get("wsgi.input")
            body = stream.read(limit + 1) if stream is not None and meta.get("wsgi.input_terminated") else b""
            if len(body) > limit:
                raise _too_large()
            django_request = request._request
            django_request._body, django_request._stream = body, io.BytesIO(body)
            meta["CONTENT_LENGTH"] = str(len(body))

    def _charset_detect(self, request) -> None:
        """Browsers post a form in its page's charset without saying so. A legacy page that is not
        UTF-8 (windows-1252 is what such pages use) must not turn "Zoë" into "Zo\ufffd"."""
        content_type = request.META.get("CONTENT_TYPE", "").lower()
        if not content_type.startswith("application/x-www-form-urlencoded") or "charset=" in content_type:
            return
        try:
            unquote_to_bytes(request._request.body.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            request._request.encoding = LEGACY_FORM_CHARSET
            request.parser_context["encoding"] = LEGACY_FORM_CHARSET

    def _data_parse(self, request) -> dict:
        self._charset_detect(request)
        try:
            data = request.data
        except RecursionError:
            raise IntakeRefused(400, {"detail": ["JSON parse error - nested too deeply."]}) from None
        except SuspiciousOperation as exc:  # too many fields, malformed multipart headers ...
            raise IntakeRefused(400, {"detail": [f"Malformed form data: {exc}"]}) from None
        if not isinstance(data, dict) and not hasattr(data, "lists"):
            raise IntakeRefused(400, {"detail": [
                "The body must be a JSON object of form fields, e.g. {\"email\": \"ada@example.com\"}."
            ]})
        return _flatten(data)

    def _form_resolve(self, request, data: dict) -> LeadForm:
        given = {
            value.strip()
            for value in (
                request.headers.get(FORM_KEY_HEADER),
                request.query_params.get("form_key"),
                data.get("form_key") if isinstance(data.get("form_key"), str) else None,
            )
            if value and value.strip()
        }
        if not given:
            raise IntakeRefused(401, {"form_key": [
                f"A form key is required (the {FORM_KEY_HEADER} header or a form_key field)."
            ]}, auth_header=f'{FORM_KEY_HEADER} realm="intake"')
        if len(given) > 1:
            raise IntakeRefused(400, {"form_key": ["Conflicting form keys were sent."]})
        key = given.pop()
        form = _form_cached(key)
        if form is None:
            # Not read lately: the IP's limit first, so a client over it never reaches the database.
            self._throttles_count(request)
            form = _form_lookup(key)
        form = _form_active(form)
        if form is None:
            raise IntakeRefused(403, {"form_key": ["Unknown or inactive form key."]})
        return form

    # --- CORS preflight --------------------------------------------------------------------

    @extend_schema(exclude=True)
    def options(self, request, *args, **kwargs):
        origin = request.headers.get("Origin")
        method = request.headers.get("Access-Control-Request-Method")
        if not origin or not method:
            return Response(status=204, headers={"Allow": "POST, OPTIONS"})
        key = request.query_params.get("form_key", "").strip()
        if key:
            self.form = _form_active(_form_cached(key) or _form_lookup(key))
            allowed = self.form is not None and self.form.origin_allowed(origin)
        else:
            allowed = _origin_allowed_by_any_form(origin)
        if method.upper() != "POST" or not allowed:
            self._cors_allowed = False
            raise IntakeRefused(403, {"Origin": [f"Submissions from {origin} are not allowed."]})
        self._cors_allowed = True
        return Response(status=204, headers={
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
            "Access-Control-Max-Age": str(CORS_MAX_AGE),
        })

    # --- responses -------------------------------------------------------------------------

    def _browser_form_post(self, request) -> bool:
        """A plain HTML <form> submission (a page navigation), not fetch()/XHR or a server."""
        if request.method != "POST" or request.content_type.split(";")[0].strip() not in FORM_CONTENT_TYPES:
            return False
        if request.headers.get("X-Requested-With"):
            return False
        mode = request.headers.get("Sec-Fetch-Mode")
        if mode:
            return mode == "navigate"
        return "text/html" in request.headers.get("Accept", "")

    def _respond(self, request, status_code: int, body: dict):
        if not self._browser_form_post(request):
            return Response(body, status=status_code)
        if self.form is not None and self.form.success_url:
            response = HttpResponse(status=303)
            response["Location"] = self.form.success_url
            return response
        html = render_to_string("leads/intake_result.html", {"ok": True, "form": self.form}, request=request)
        return HttpResponse(html, status=status_code)

    def _error_page(self, request, response):
        errors = (response.data or {}).get("errors", {}) if isinstance(response.data, dict) else {}
        referer = request.headers.get("Referer", "")
        back_url = referer if urlsplit(referer).scheme in ("http", "https") else ""
        html = render_to_string(
            "leads/intake_result.html",
            {"ok": False, "errors": errors, "back_url": back_url, "form": self.form, "status": response.status_code},
            request=request,
        )
        page = HttpResponse(html, status=response.status_code)
        for header in ("Retry-After", "WWW-Authenticate"):
            if header in response:
                page[header] = response[header]
        return page

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400 and isinstance(response, Response) and self._browser_form_post(request):
            response = self._error_page(request, response)
        origin = request.headers.get("Origin")
        if origin:
            allowed = self._cors_allowed
            if allowed is None:
                allowed = self.form.origin_allowed(origin) if self.form is not None else _origin_allowed_by_any_form(origin)
            if allowed:
                response["Access-Control-Allow-Origin"] = origin
                response["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
        patch_vary_headers(response, ["Origin"])
        return response
