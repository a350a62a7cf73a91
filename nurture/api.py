"""Nurture API: the email provider's bounce callback, authenticated by the tenant's bounce secret."""
from __future__ import annotations

import hmac
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import QueryDict
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import (
    OpenApiExample,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import authentication, exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from leadmgmt.api import ERRORS_RESPONSE, TextField, errors_response
from leadmgmt.tenancy.context import set_current_tenant
from leadmgmt.tenancy.cross_tenant import cross_tenant
from leadmgmt.tenancy.models import Tenant
from leads.normalize import email_normalize

from .models import NurtureSettings, bounce_secret_hash
from .services.tracking import BounceKind, BounceOutcome, bounce_record

BOUNCE_MAX_BATCH = 500
BOUNCE_MAX_BODY_BYTES = 1024 * 1024
# Compared against when the tenant is unknown, so that answer takes as long as a wrong secret.
_NO_SECRET = "-" * 43


class BounceSecretAuthentication(authentication.BaseAuthentication):
    """The tenant's bounce secret (its hash is NurtureSettings.bounce_secret) as `Authorization: Bearer <secret>` or
    `X-Bounce-Secret: <secret>`, for the tenant named in the URL. An unknown tenant and a wrong secret get
    the same 401, so the endpoint does not tell which tenants exist."""

    keyword = "Bearer"

    def authenticate(self, request):
        secret = request.META.get("HTTP_X_BOUNCE_SECRET", "").strip()
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not secret and len(header) == 2 and header[0].lower() == self.keyword.lower():
            secret = header[1]
        if not secret:
            raise exceptions.NotAuthenticated(
                "Send the tenant's bounce secret: 'Authorization: Bearer <secret>' or 'X-Bounce-Secret: <secret>'.")
        slug = (request.parser_context or {}).get("kwargs", {}).get("tenant_slug", "")
        with cross_tenant("public_link"):  # the tenant of a provider's bounce callback, by its slug
            nurture = (NurtureSettings.objects.unscoped().select_related("tenant")
                       .filter(tenant__slug=slug, tenant__is_active=True).first())
        # Only the secret's hash is stored; an unknown tenant still costs one hash and one comparison.
        if nurture is None:
            hmac.compare_digest(bounce_secret_hash(secret), bounce_secret_hash(_NO_SECRET))
        if nurture is None or not nurture.bounce_secret_matches(secret):
            raise exceptions.AuthenticationFailed("Unknown tenant or wrong bounce secret.")
        tenant = nurture.tenant
        request.tenant = tenant
        request.membership = None
        request.api_key = None
        set_current_tenant(tenant)
        return AnonymousUser(), tenant

    def authenticate_header(self, request):
        return f'{self.keyword} realm="bounces"'


class BounceSecretScheme(OpenApiAuthenticationExtension):
    target_class = "nurture.api.BounceSecretAuthentication"
    name = "bounceSecret"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")
        scheme["description"] = ("The tenant's bounce secret (nurture settings): `Authorization: Bearer <secret>`; "
                                 "the header `X-Bounce-Secret: <secret>` works too.")
        return scheme


class IsBounceCaller(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Tenant)


class BounceEventSerializer(serializers.Serializer):
    """One bounce or complaint reported by the email provider."""

    email = TextField(max_length=320, help_text="The address that bounced or complained.")
    type = serializers.ChoiceField(choices=BounceKind.choices, help_text=(
        "`hard` (the address does not exist: suppressed), `complaint` (marked as spam: suppressed) or `soft` "
        "(temporary: written on the message, nothing suppressed)."))
    message_id = TextField(
        required=False, allow_blank=True, max_length=300, default="",
        help_text="The `X-Leadmgmt-Message-Id` header of the email, or its SMTP `Message-ID`. Without it the "
                  "latest nurture email to the address is taken.")
    reason = TextField(required=False, allow_blank=True, max_length=500, default="",
                                   help_text="The provider's diagnostic, e.g. `550 5.1.1 user unknown`.")
    occurred_at = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                            help_text="When it happened (ISO 8601); now when missing.")

    def validate_email(self, value):
        try:
            email = email_normalize(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        if not email:
            raise serializers.ValidationError("This field may not be blank.")
        return email

    def validate_occurred_at(self, value):
        if value is not None and value > timezone.now() + timedelta(
                seconds=settings.SIGNALS_MAX_FUTURE_SKEW_SECONDS):
            raise serializers.ValidationError("Must not be in the future.")
        return value


class BounceItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in the request (0 for a single object).")
    email = serializers.CharField()
    status = serializers.ChoiceField(choices=BounceOutcome.choices)
    message_id = serializers.UUIDField(allow_null=True, help_text="The nurture message it was matched to, if any.")


class BounceBatchResultSerializer(serializers.Serializer):
    results = BounceItemResultSerializer(many=True)
    suppressed = serializers.IntegerField(help_text="Addresses newly put on the suppression list.")
    recorded = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Events received before (retries); nothing changed.")
    ignored = serializers.IntegerField()


BOUNCE_EXAMPLE = {"email": "ada@example.com", "type": "hard", "reason": "550 5.1.1 user unknown",
                  "message_id": "3f0c8a52-7d1e-4e59-9f7a-2b8f0d4c6e11", "occurred_at": "2025-05-01T10:15:00Z"}


def _errors(serializer_errors, prefix: str) -> dict[str, list[str]]:
    out = {}
    for name, messages in serializer_errors.items():
        key = "detail" if name == "non_field_errors" else name
        out[f"{prefix}{key}"] = [str(m) for m in messages]
    return out


class BounceCallbackView(APIView):
    """`POST /api/v1/nurture/bounces/<tenant_slug>/`: the email provider reports bounces and complaints."""

    authentication_classes = [BounceSecretAuthentication]
    permission_classes = [IsBounceCaller]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="nurture_bounces_create",
        summary="Report bounces and spam complaints (email provider callback)",
        description=(
            "Point your email provider's bounce and complaint webhook here, with the tenant's bounce secret "
            "from its nurture settings. Send one event object or a list of up to 500. A `hard` bounce or a "
            "`complaint` puts the address on the tenant's suppression list (no nurture email is sent to it "
            "again), ends the nurture sequences of its leads and marks the email bounced; a `soft` bounce is "
            "written on the email and nothing is suppressed. Retries are safe: an event received before "
            "answers `duplicate` and changes nothing. The body is validated as a whole: if any event is "
            "invalid the answer is 400 with field errors (keyed `<index>.<field>` for a list) and nothing is "
            "written. An unknown tenant and a wrong secret both answer 401."
        ),
        request=PolymorphicProxySerializer(
            component_name="BounceBatch",
            serializers=[BounceEventSerializer, BounceEventSerializer(many=True)],
            resource_type_field_name=None,
            many=False,
        ),
        responses={200: BounceBatchResultSerializer, 400: ERRORS_RESPONSE, 401: ERRORS_RESPONSE,
                   413: ERRORS_RESPONSE, 415: ERRORS_RESPONSE},
        examples=[
            OpenApiExample("One hard bounce", value=BOUNCE_EXAMPLE, request_only=True),
            OpenApiExample("A batch", request_only=True, value=[
                BOUNCE_EXAMPLE, {"email": "grace@example.com", "type": "complaint"},
                {"email": "linus@example.com", "type": "soft", "reason": "452 4.2.2 mailbox full"}]),
        ],
        tags=["nurture"],
    )
    def post(self, request, tenant_slug: str):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > BOUNCE_MAX_BODY_BYTES:
            return errors_response({"detail": [f"The body is larger than {BOUNCE_MAX_BODY_BYTES} bytes; send "
                                               f"smaller batches."]}, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        data = request.data if length > 0 else None  # DRF reads an empty body as {}
        single = isinstance(data, dict) and not isinstance(data, QueryDict)
        items = [data] if single else data
        if not isinstance(items, list):
            raise exceptions.ValidationError({"detail": ["Send a bounce event object or a JSON list of them."]})
        if not items:
            raise exceptions.ValidationError({"detail": ["The list of bounce events is empty."]})
        if len(items) > BOUNCE_MAX_BATCH:
            raise exceptions.ValidationError(
                {"detail": [f"At most {BOUNCE_MAX_BATCH} events per request ({len(items)} sent)."]})

        events, errors = [], {}
        for index, raw in enumerate(items):
            prefix = "" if single else f"{index}."
            if not isinstance(raw, dict):
                errors[f"{prefix}detail"] = ["Each bounce event must be a JSON object."]
                continue
            serializer = BounceEventSerializer(data=raw)
            if serializer.is_valid():
                events.append((index, serializer.validated_data))
            else:
                errors.update(_errors(serializer.errors, prefix))
        if errors:
            return errors_response(errors, status.HTTP_400_BAD_REQUEST)

        results = []
        for index, event in events:
            outcome = bounce_record(tenant=request.tenant, email=event["email"], kind=event["type"],
                                    message_id=event["message_id"] or None, reason=event["reason"],
                                    occurred_at=event["occurred_at"])
            results.append({"index": index, "email": event["email"], "status": str(outcome.status),
                            "message_id": str(outcome.message_id) if outcome.message_id else None})
        counts = {value: sum(1 for r in results if r["status"] == value) for value in BounceOutcome.values}
        return Response({"results": results, "suppressed": counts[BounceOutcome.SUPPRESSED],
                         "recorded": counts[BounceOutcome.RECORDED], "duplicates": counts[BounceOutcome.DUPLICATE],
                         "ignored": counts[BounceOutcome.IGNORED]}, status=status.HTTP_200_OK)
