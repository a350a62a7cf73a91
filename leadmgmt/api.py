"""Shared API plumbing of every app's endpoints: the `{"errors": {field: [messages]}}` exception handler,
pagination, the per-key throttle, the OpenAPI extensions that document the tenancy authentication and
tenant-scoped FilterSets, and `TenantApiView`, the base of the JSON endpoints."""
from __future__ import annotations

import datetime as dt
import logging
import math

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from redis.exceptions import RedisError
from rest_framework import exceptions, pagination, serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import ApiKey, ApiScope, Tenant

log = logging.getLogger(__name__)


def _as_lists(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub_key, sub_msgs in _as_lists(value).items():
                    out[f"{key}.{sub_key}"] = sub_msgs
            elif isinstance(value, list):
                flat = []
                for item in value:
                    if isinstance(item, dict):
                        for sub_key, sub_msgs in _as_lists(item).items():
                            out[f"{key}.{sub_key}"] = sub_msgs
                    else:
                        flat.append(str(item))
                if flat:
                    out[key] = flat
            else:
                out[key] = [str(value)]
        return out
    if isinstance(detail, list):
        return {"detail": [str(item) for item in detail]}
    return {"detail": [str(detail)]}


def errors_response(errors: dict[str, list[str]], status_code: int, headers=None) -> Response:
    return Response({"errors": errors}, status=status_code, headers=headers)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        key_name = "detail"
        data = exc.detail
        if isinstance(data, dict) and "non_field_errors" in data:
            data = {**data}
            data[key_name] = data.pop("non_field_errors")
        response.data = {"errors": _as_lists(data)}
    else:
        response.data = {"errors": _as_lists(response.data.get("detail", response.data)
                                             if isinstance(response.data, dict) else response.data)}
    return response


# --- Hostile input: values PostgreSQL cannot store or compare --------------------------------------


def is_ascii_digits(value) -> bool:
    """`str.isdigit()` without its surprises: only 0-9 (`"³".isdigit()` is true, `int("³")` fails), at most
    18 digits (a bigint)."""
    return isinstance(value, str) and 0 < len(value) <= 18 and value.isascii() and value.isdigit()


def text_problem(value, depth: int = 0, max_depth: int = 32) -> str | None:
    """Why a JSON value (keys included) cannot be stored in PostgreSQL text/jsonb: a NUL character, a
    lone surrogate (not encodable as UTF-8), a non-finite number or nesting deeper than `max_depth`;
    None when it can."""
    if depth > max_depth:
        return f"Nested more than {max_depth} levels deep."
    if isinstance(value, str):
        if "\x00" in value:
            return "Null characters are not allowed."
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "Contains characters that are not valid Unicode."
    elif isinstance(value, float) and not math.isfinite(value):
        return "Numbers must be finite."
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key, depth + 1, max_depth) or text_problem(item, depth + 1, max_depth)
            if problem:
                return problem
    elif isinstance(value, (list, tuple)):
        for item in value:
            problem = text_problem(item, depth + 1, max_depth)
            if problem:
                return problem
    return None


def printable_key(key) -> str:
    """A field name safe to echo in an error body (a lone surrogate becomes its `\\udfff` escape)."""
    return str(key).encode("utf-8", "backslashreplace").decode("utf-8")


def body_text_errors(data) -> dict[str, list[str]]:
    """Field errors for the top-level fields of a parsed JSON body that PostgreSQL could not store."""
    if isinstance(data, dict):
        return {printable_key(key): [problem] for key, item in data.items()
                if (problem := text_problem(key) or text_problem(item))}
    problem = text_problem(data)
    return {"detail": [problem]} if problem else {}


class StorableJSONParser(JSONParser):
    """JSON bodies whose every key and string PostgreSQL can store: a lone surrogate (`"\\udfff"`) or a
    NUL in a key is a 400 on that field instead of an encoding error deep in the database driver."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        errors = body_text_errors(data)
        if errors:
            raise exceptions.ValidationError(errors)
        return data


class _StrictString:
    """DRF's CharField turns a JSON number into text (`5` becomes "5"); a string field of a request body takes
    only strings, as the schema says (form posts send nothing else). Its `maxLength` holds for the string as sent:
    DRF checks the length after trimming, so 400 characters of which 200 are trailing spaces were taken."""

    default_error_messages = {"not_a_string": "Not a valid string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        max_length = getattr(self, "max_length", None)
        if max_length is not None and len(data) > max_length:
            self.fail("max_length", max_length=max_length)
        return super().to_internal_value(data)


class TextField(_StrictString, serializers.CharField):
    """A string field of a request body: a number or boolean is a 400, not turned into text."""


class SlugTextField(_StrictString, serializers.SlugField):
    """A slug field of a request body: a number or boolean is a 400, not turned into text."""


def aware_utc(value: dt.datetime | None) -> dt.datetime | None:
    """An aware datetime moved to UTC, or a Django ValidationError: PostgreSQL refuses offsets past ±15:59
    ("time zone displacement out of range") that Python parses happily."""
    if value is None or value.tzinfo is None:
        return value
    try:
        return value.astimezone(dt.UTC)
    except (OverflowError, ValueError) as exc:
        raise DjangoValidationError("Date and time out of range.", code="overflow") from exc


class Pagination(pagination.PageNumberPagination):
    """`?page=2&page_size=100`: a `page_size` that is not a whole number from 1 is a 400 (DRF would silently use
    the default), one above 500 gives 500; empty `page` or `page_size` are the defaults."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param, "")
        if raw == "":
            return self.page_size
        digits = raw.lstrip("0")
        if not (raw.isascii() and raw.isdigit()) or not digits:
            raise exceptions.ValidationError({self.page_size_query_param: ["Enter a whole number from 1."]})
        # Four digits are enough to read: 1000 and more is past the maximum (Python refuses a huge int anyway).
        return min(int(digits[:4]), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["allowEmptyValue"] = True
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = f"Results per page, at most {self.max_page_size} (more gives {self.max_page_size})."
        return parameters


UUID_RE = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
ERRORS_RESPONSE = OpenApiResponse(OpenApiTypes.OBJECT, description='`{"errors": {field: [messages]}}`')


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per API key request rate (`API_RATE_PER_KEY`); members signed in to the UI are not throttled."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        api_key = getattr(request, "api_key", None)
        if api_key is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": api_key.prefix}

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except RedisError as exc:
            # Redis down (a restart, a failover): the key's limit fails open rather than answer every
            # integration 500 until it is back; what the request writes needs only PostgreSQL.
            log.warning("API key rate limit not checked, Redis unavailable: %s", exc)
            return True


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "leadmgmt.tenancy.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")
        scheme["description"] = "A tenant API key: `Authorization: Bearer lm_…`, with the scope the operation needs."
        return scheme


class TenantSessionScheme(SessionScheme):
    target_class = "leadmgmt.tenancy.authentication.TenantSessionAuthentication"
    priority = 0


class TenantOwnedFilterExtension(DjangoFilterExtension):
    """Documents FilterSets of tenant-owned models: drf-spectacular builds an empty queryset through
    `Model.objects`, which fails closed without a tenant, so give it a tenant no row belongs to
    (the queryset is never evaluated). An empty value is documented as allowed where it means no filter (not
    for a multiple choice: `?status=` is an invalid choice)."""

    priority = 1

    def get_schema_operation_parameters(self, auto_schema, *args, **kwargs):
        with tenant_scope(Tenant(pk=0)):
            parameters = super().get_schema_operation_parameters(auto_schema, *args, **kwargs)
        for parameter in parameters:  # django-filter ignores a filter sent empty (`?q=`), not an empty choice
            if parameter.get("schema", {}).get("type") != "array":
                parameter["allowEmptyValue"] = True
        return parameters


class IsApiKeyRequest(BasePermission):
    """Only requests authenticated by a tenant API key (integrations), not a member's session."""

    message = "Use a tenant API key: 'Authorization: Bearer <api key>'."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiKey)


def actor_for(request) -> Actor:
    """Who acts for the audit trail: the request's API key, else the signed-in member."""
    api_key = getattr(request, "api_key", None)
    return Actor.for_api_key(api_key) if api_key is not None else Actor.for_user(request.user)


def flat_errors(errors) -> dict[str, list[str]]:
    """A serializer's errors as `{field: [messages]}`, nested ones flattened to "sub: message"."""
    out: dict[str, list[str]] = {}
    for name, messages in errors.items():
        key = "detail" if name == "non_field_errors" else name
        if isinstance(messages, dict):
            out[key] = [f"{sub}: {msg}" for sub, msgs in messages.items() for msg in (msgs if isinstance(msgs, list) else [msgs])]
        else:
            out[key] = [str(m) for m in messages]
    return out
COMMON_ERRORS = {400: ERRORS_RESPONSE, 401: ERRORS_RESPONSE, 403: ERRORS_RESPONSE, 404: ERRORS_RESPONSE}



class PaginatedMixin:
    """What `page` needs of an APIView that is not a GenericAPIView: a paginator (`Pagination`) and the
    serializer context."""

    pagination_class = Pagination

    @property
    def paginator(self):
        if not hasattr(self, "_paginator"):
            self._paginator = self.pagination_class()
        return self._paginator

    def paginate_queryset(self, queryset):
        return self.paginator.paginate_queryset(queryset, self.request, view=self)

    def get_paginated_response(self, data):
        return self.paginator.get_paginated_response(data)

    def get_serializer_context(self):
        return {"request": self.request, "view": self}


def page(view, queryset, serializer_class) -> Response:
    """One page of `queryset` through the view's paginator, serialized with the view's context."""
    rows = view.paginate_queryset(queryset)
    return view.get_paginated_response(serializer_class(rows, many=True, context=view.get_serializer_context()).data)


class TenantApiView(APIView):
    """Base of the JSON endpoints: tenant API key (with the method's scope) or a signed-in member."""

    parser_classes = [StorableJSONParser]
    throttle_classes = [ApiKeyRateThrottle]
    required_scopes = {"POST": ApiScope.LEADS_WRITE, "*": ApiScope.LEADS_READ}

    def valid(self, serializer_class) -> dict:
        """The request body validated by `serializer_class` (a 400 with field errors otherwise)."""
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def member(self, user_id: int, field: str):
        """A user of this tenant by id, or a 400 on `field` (another tenant's people are not there)."""
        user = get_user_model().objects.filter(
            pk=user_id, memberships__tenant=self.request.tenant).first() if user_id is not None else None
        if user is None:
            raise exceptions.ValidationError({field: ["No member of this tenant has this id."]})
        return user
