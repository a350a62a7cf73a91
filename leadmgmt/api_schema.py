"""The OpenAPI schema class of every endpoint: documents the statuses the shared plumbing can answer."""
from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import is_serializer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse


def _errors(description: str) -> OpenApiResponse:
    return OpenApiResponse(OpenApiTypes.OBJECT, description=f'{description} `{{"errors": {{field: [messages]}}}}`')


IMPLIED_RESPONSES = {
    "400": _errors("Invalid body or query parameters:"),
    "401": _errors("No or unknown credentials:"),
    "403": _errors("Not allowed for this API key's scopes or this member's role:"),
    "404": _errors("Not found (another tenant's rows are not found either; an out-of-range `page` too):"),
    "414": OpenApiResponse(description="The request line is too long (answered before the app)."),
    "415": _errors("Unsupported `Content-Type` of the body (send `application/json`):"),
    "429": _errors("Too many requests for this API key; retry after the `Retry-After` header's seconds:"),
}

MEMBER_SCHEMES = {"apiKeyAuth", "cookieAuth"}
FORM_MEDIA_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def form_schema(schema: dict) -> dict:
    """A serializer's request schema for a form post, where every value is text: DRF reads an empty optional
    field as one not sent, and an empty nullable field as null, so those also take ``."""
    required = set(schema.get("required", []))
    properties = {
        name: {"anyOf": [field, {"type": "string", "maxLength": 0}]}
        if (name not in required or field.get("nullable")) and not _takes_empty_text(field) else field
        for name, field in schema.get("properties", {}).items()
    }
    return {**schema, "properties": properties}


def _takes_empty_text(field: dict) -> bool:
    return field.get("type") == "string" and not {"format", "enum", "pattern", "minLength"} & set(field)


class AutoSchema(SpectacularAutoSchema):
    """Documents the answers every operation can give besides its own: 400 when it takes a body or query
    parameters, 401 when it needs credentials, 403 for a tenant's API key or member (scopes, roles), 404 with
    a path parameter (an id that is not one is a JSON 404 too) or pages, 414 with parameters in the URL, 415
    with a body, 429 when it is throttled. An operation's own `responses` win.

    Request bodies say what their serializer enforces beyond its fields: `refuses_unknown_fields = True` is
    `additionalProperties: false`, and `one_of_required = (("a",), ("b",))` means exactly one of those sets of
    fields is given (a `oneOf` of `required` lists). A form post's schema lets optional and nullable fields be
    empty (`form_schema`)."""

    def _get_request_body(self, direction="request"):
        request_body = super()._get_request_body(direction)
        if request_body is None or not FORM_MEDIA_TYPES & set(request_body["content"]):
            return request_body
        serializer = self.get_request_serializer()
        if not is_serializer(serializer):
            return request_body
        for media_type, media in request_body["content"].items():
            if media_type in FORM_MEDIA_TYPES:
                media["schema"] = form_schema(self._map_serializer(serializer, direction))
        return request_body

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request":
            if getattr(serializer, "refuses_unknown_fields", False):
                schema["additionalProperties"] = False
            one_of = getattr(serializer, "one_of_required", ())
            if one_of:
                schema["oneOf"] = [{"required": list(fields)} for fields in one_of]
        return schema

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return operation
        responses = operation.setdefault("responses", {})
        for code in self.implied_status_codes(operation):
            if code not in responses:
                responses[code] = self._get_response_for_code(IMPLIED_RESPONSES[code], code)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def implied_status_codes(self, operation) -> list[str]:
        where = {parameter.get("in") for parameter in operation.get("parameters", [])}
        has_body = "requestBody" in operation
        paginated = self._is_list_view() and getattr(self.view, "pagination_class", None) is not None
        codes = []
        if has_body or "query" in where:
            codes.append("400")
        schemes = {name for requirement in operation.get("security") or [] for name in requirement}
        if schemes:
            codes.append("401")
        if schemes & MEMBER_SCHEMES:  # scopes and roles; a provider's shared secret is right or a 401
            codes.append("403")
        if "path" in where or paginated:
            codes.append("404")
        if where & {"path", "query"}:
            codes.append("414")
        if has_body:
            codes.append("415")
        if getattr(self.view, "throttle_classes", None):
            codes.append("429")
        return codes
