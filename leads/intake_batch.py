"""The batch intake endpoint (`POST /api/v1/leads/batch/`): an integration's or ad platform's leads, up to
`INTAKE_BATCH_MAX_ITEMS` per request, with a tenant API key (`leads:write`), answered item by item (207) by
`leads_capture_batch()`; body limits, the batch's shape and its documentation."""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from leadmgmt.api import (
    ERRORS_RESPONSE,
    ApiKeyRateThrottle,
    IsApiKeyRequest,
    actor_for,
    errors_response,
    printable_key,
)
from leadmgmt.api_schema import IMPLIED_RESPONSES
from leadmgmt.proxies import client_ip
from leadmgmt.tenancy.authentication import ApiKeyAuthentication
from leadmgmt.tenancy.models import ApiScope
from leadmgmt.tenancy.permissions import HasTenant

from .capture_input import FIELD_ALIASES, MAX_ATTRIBUTE_KEYS
from .intake import IDEMPOTENCY_HEADER, REPLAYED_HEADER
from .models import Lead
from .normalize import text_clean
from .services.capture_batch import DEFAULT_SOURCE, MULTI_STATUS, leads_capture_batch
from .services.intake import IdempotencyKeyInvalid, IdempotencyKeyReused

ENVELOPE_FIELDS = ("leads", "source")


# --- The request's shape (documentation: the validation is `capture_input_validate`, item by item) ------------

def _text(description: str, max_length: int | None = None, **extra) -> dict:
    schema = {"type": "string", "description": description, **extra}
    if max_length:
        schema["maxLength"] = max_length
    return schema


def _lead_max(name: str) -> int:
    return Lead._meta.get_field(name).max_length


def _also(name: str) -> str:
    aliases = [alias for alias in FIELD_ALIASES[name] if alias != name]
    return f" Also accepted as {', '.join(f'`{a}`' for a in aliases)}." if aliases else ""


LEAD_ITEM_SCHEMA = {
    "type": "object",
    "description": (
        "One lead, with the fields the web intake (`POST /api/v1/intake/`) understands, by these names or their "
        "aliases (any spelling: `FirstName`, `first-name`). It needs an email or a phone number. Any other field "
        f"is kept on the lead as an attribute (at most {MAX_ATTRIBUTE_KEYS})."
    ),
    "properties": {
        "email": _text("Matched case-insensitively: an existing lead with this email gets the lead merged in."
                       + _also("email"), 320),
        "phone": _text("Any common format; stored as E.164 (the country helps). Matched when there is no email."
                       + _also("phone"), 64),
        "first_name": _text("First name." + _also("first_name"), _lead_max("first_name")),
        "last_name": _text("Last name." + _also("last_name"), _lead_max("last_name")),
        "name": _text("A full name, split into first and last when they are not given." + _also("name"),
                      _lead_max("first_name") + _lead_max("last_name") + 1),
        "company": _text("Company name." + _also("company"), _lead_max("company")),
        "job_title": _text("Job title." + _also("job_title"), _lead_max("job_title")),
        "company_size": {"oneOf": [{"type": "integer"}, {"type": "string", "maxLength": 64}],
                         "description": "Employees: a number or a range such as `51-200`." + _also("company_size")},
        "industry": _text("Industry." + _also("industry"), _lead_max("industry")),
        "country": _text("A country name or ISO code; stored as the ISO 3166-1 alpha-2 code." + _also("country"),
                         _lead_max("country")),
        "company_domain": _text("The company's domain, when the email is a free-mail address.",
                                _lead_max("company_domain")),
        "website": _text("The company's website." + _also("website"), 2000),
        **{name: _text(f"Attribution: `{name}`.", _lead_max(name))
           for name in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")},
        "campaign": _text("The campaign (of an ad platform, an event …)." + _also("campaign"), _lead_max("campaign")),
        "source": _text(f"Where the lead came from (`facebook_ads`, `event` …); else the batch's `source`, else "
                        f"`{DEFAULT_SOURCE}`." + _also("source"), _lead_max("source")),
        "marketing_consent": {
            "oneOf": [{"type": "boolean"}, {"type": "string", "maxLength": 20}],
            "description": "Consent to marketing email: `true`, or `yes`/`on`/`1`. Recorded with its time and source; "
                           "a later `false` never takes it away." + _also("marketing_consent"),
        },
        "page_url": _text("The page the lead converted on (kept with the consent)." + _also("page_url"), 2000),
        "attributes": {"type": "object", "additionalProperties": True,
                       "description": "Extra fields to keep on the lead, as an object."},
    },
    "additionalProperties": True,
}
LEADS_SCHEMA = {"type": "array", "items": LEAD_ITEM_SCHEMA, "minItems": 1, "maxItems": settings.INTAKE_BATCH_MAX_ITEMS}
BATCH_REQUEST_SCHEMA = {
    "oneOf": [
        LEADS_SCHEMA,
        {
            "type": "object",
            "properties": {
                "leads": LEADS_SCHEMA,
                "source": _text(f"The source of the leads that name none (else `{DEFAULT_SOURCE}`).",
                                _lead_max("source")),
            },
            "required": ["leads"],
            "additionalProperties": False,
        },
    ],
}


class LeadBatchItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the lead in the request's list.")
    status = serializers.ChoiceField(choices=[201, 200, 400], help_text="201 created, 200 merged, 400 refused.")
    result = serializers.ChoiceField(choices=["created", "merged", "error"])
    id = serializers.UUIDField(required=False, help_text="The lead created or merged into (not for an error).")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="Field name (as sent) → messages, for an error.",
    )


class LeadBatchResultSerializer(serializers.Serializer):
    results = LeadBatchItemResultSerializer(many=True)
    created = serializers.IntegerField()
    merged = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="Leads refused (see their results).")


EXAMPLE_LEAD = {"email": "ada@analytical.example", "first_name": "Ada", "last_name": "Lovelace",
                "company": "Analytical Engines", "utm_source": "linkedin", "utm_campaign": "q3-demo",
                "marketing_consent": True}


# --- The view ---------------------------------------------------------------------------------------------------

class LeadBatchIntakeView(APIView):
    """`POST /api/v1/leads/batch/`: a list of leads from an integration's API key, one transaction, one answer per
    lead."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsApiKeyRequest, HasTenant]
    required_scopes = {"POST": ApiScope.LEADS_WRITE}
    # Not StorableJSONParser: a value PostgreSQL cannot store is that lead's error, not the whole batch's.
    parser_classes = [JSONParser]
    throttle_classes = [ApiKeyRateThrottle]  # a batch is one request

    @extend_schema(
        operation_id="leads_batch_create",
        summary="Capture a batch of leads",
        description=(
            "For integrations and ad platforms: a JSON list of up to "
            f"{settings.INTAKE_BATCH_MAX_ITEMS} leads, or `{{\"leads\": [...], \"source\": \"...\"}}`. Each lead is "
            "captured as the web intake captures one (the same fields, normalisation, consent and attribution): "
            "created, or merged into the lead with the same email (with no email, the same phone), also within "
            "the batch. The answer is 207 with a result per lead (201 created, 200 merged, 400 refused with field "
            "errors), even when every lead was refused; 400 only when the body itself is wrong (not a list or an "
            "object with `leads`, an empty list, too many leads). The batch is one transaction: a refused lead "
            "leaves nothing behind and the others are kept. "
            f"Send `{IDEMPOTENCY_HEADER}` to make retries safe for {settings.INTAKE_IDEMPOTENCY_TTL_HOURS} hours: "
            f"the same key and body get the first answer again (`{REPLAYED_HEADER}: true`), another body a 422."
        ),
        parameters=[OpenApiParameter(IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False,
                                     description="1 to 200 printable ASCII characters, unique per batch.")],
        request={"application/json": BATCH_REQUEST_SCHEMA},
        responses={
            MULTI_STATUS: LeadBatchResultSerializer,
            400: ERRORS_RESPONSE, 401: ERRORS_RESPONSE, 403: ERRORS_RESPONSE,
            413: OpenApiResponse(ERRORS_RESPONSE.response, description="The body is larger than "
                                 f"{settings.INTAKE_BATCH_MAX_BODY_BYTES} bytes (send smaller batches)."),
            414: IMPLIED_RESPONSES["414"], 415: ERRORS_RESPONSE,
            422: OpenApiResponse(ERRORS_RESPONSE.response,
                                 description=f"`{IDEMPOTENCY_HEADER}` reused with a different body."),
            429: ERRORS_RESPONSE,
        },
        examples=[
            OpenApiExample("A list of leads", request_only=True, value=[
                EXAMPLE_LEAD, {"email": "grace@navy.example", "name": "Grace Hopper", "phone": "+1 202 555 0147"}]),
            OpenApiExample("Leads with their source", request_only=True,
                           value={"source": "linkedin_ads", "leads": [EXAMPLE_LEAD]}),
        ],
        tags=["leads"],
    )
    def post(self, request):
        max_bytes = settings.INTAKE_BATCH_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise exceptions.ValidationError({"detail": ["Invalid Content-Length header."]}) from None
        if length > max_bytes:
            return errors_response({"detail": [f"The body is larger than {max_bytes} bytes; send smaller batches."]},
                                   status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        try:
            data = request.data if length > 0 else None  # DRF reads an empty body as {}
        except RecursionError:
            raise exceptions.ValidationError({"detail": ["JSON parse error - nested too deeply."]}) from None
        items, source = _batch_read(data)
        try:
            result = leads_capture_batch(
                tenant=request.tenant, items=items, actor=actor_for(request), source=source,
                api_key=request.api_key, idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
                ip_address=client_ip(request), user_agent=request.headers.get("User-Agent", ""),
            )
        except IdempotencyKeyInvalid as exc:
            raise exceptions.ValidationError({IDEMPOTENCY_HEADER: [str(exc)]}) from None
        except IdempotencyKeyReused as exc:
            return errors_response({IDEMPOTENCY_HEADER: [str(exc)]}, status.HTTP_422_UNPROCESSABLE_ENTITY)
        response = Response(result.body, status=result.status_code)
        if result.replayed:
            response[REPLAYED_HEADER] = "true"
        return response


def _batch_read(data) -> tuple[list, str | None]:
    """(the leads, the batch's source) of a body that is a list of leads or `{"leads": [...], "source": "..."}`;
    a 400 for anything else (an item that is not an object is that item's error, not the batch's)."""
    source = None
    if isinstance(data, dict):
        unknown = [key for key in data if key not in ENVELOPE_FIELDS]
        if unknown:
            raise exceptions.ValidationError({printable_key(key): [
                'Unknown field: send a list of leads, or {"leads": [...]} with an optional "source".'
            ] for key in unknown})
        if "leads" not in data:
            raise exceptions.ValidationError({"leads": ["This field is required."]})
        source = _source_clean(data.get("source"))
        data = data["leads"]
        where = "leads"
    else:
        where = "detail"
    if not isinstance(data, list):
        raise exceptions.ValidationError({where: [
            'Send a JSON list of leads, or {"leads": [...]} (one lead alone goes to POST /api/v1/intake/).'
        ]})
    if not data:
        raise exceptions.ValidationError({where: ["The list of leads is empty."]})
    limit = settings.INTAKE_BATCH_MAX_ITEMS
    if len(data) > limit:
        raise exceptions.ValidationError({where: [f"At most {limit} leads per request ({len(data)} sent)."]})
    return data, source


def _source_clean(value) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise exceptions.ValidationError({"source": ["Not a valid string."]})
    try:
        value = text_clean(value)
        value.encode("utf-8")
    except DjangoValidationError as exc:
        raise exceptions.ValidationError({"source": exc.messages}) from None
    except UnicodeEncodeError:
        raise exceptions.ValidationError({"source": ["Contains characters that are not valid Unicode."]}) from None
    limit = Lead._meta.get_field("source").max_length
    if len(value) > limit:
        raise exceptions.ValidationError({"source": [f"Ensure this field has no more than {limit} characters."]})
    return value or None
