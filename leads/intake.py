"""The public intake endpoint (POST /api/v1/intake/): form key, body limits, CORS, throttling and
the 303 redirect of plain HTML form posts around `intake_submit()` (honeypot, idempotency, capture)."""
from __future__ import annotations

import io
from urllib.parse import unquote_to_bytes, urlsplit

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Q
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
from leads.models import LeadForm
from leads.services.intake import IdempotencyKeyInvalid, IdempotencyKeyReused, intake_submit
from leads.throttles import IntakeFormRateThrottle, IntakeIpRateThrottle, client_ip

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


def _form_lookup(key: str) -> LeadForm | None:
    if len(key) > LeadForm._meta.get_field("key").max_length or not key.isprintable():
        return None
    with cross_tenant("intake_form"):
        form = LeadForm.objects.unscoped().select_related("tenant").filter(key=key).first()
    if form is None or not form.is_active or not form.tenant.is_active:
        return None
    return form


class IntakeView(APIView):
    """Public lead capture for web forms (JSON, urlencoded or multipart), keyed by a form key."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [IntakeIpRateThrottle]
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    renderer_classes = [JSONRenderer]

    form: LeadForm | None = None
    _cors_allowed: bool | None = None

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
        throttle = IntakeFormRateThrottle()
        if not throttle.allow_request(request, self):
            self.throttled(request, throttle.wait())

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
        form = _form_lookup(given.pop())
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
            self.form = _form_lookup(key)
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
