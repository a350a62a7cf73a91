"""What a form submission means: field aliases mapped to Lead fields, validated and normalised,
unknown fields bounded into `attributes` (errors keyed by the field name the form sent)."""
from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from rest_framework import serializers
from rest_framework.fields import SkipField, get_error_detail
from rest_framework.serializers import as_serializer_error

from leadmgmt.api import printable_key, text_problem
from leads.countries import COUNTRY_AS_SENT_ATTRIBUTE, region_code
from leads.models import Lead
from leads.normalize import (
    consent_parse,
    country_canonicalize,
    country_region,
    domain_canonicalize,
    email_domain,
    email_normalize,
    employee_count_parse,
    is_free_mail_domain,
    name_split,
    phone_normalize,
    text_clean,
)

# Form field names as web forms, form builders and ad platforms send them (after snake_casing)
# → the Lead field they fill. Anything else is kept in `Lead.attributes`.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "email": ("email", "email_address", "e_mail", "emailaddress", "work_email", "business_email", "your_email"),
    "first_name": ("first_name", "firstname", "given_name", "givenname", "fname", "forename"),
    "last_name": ("last_name", "lastname", "surname", "family_name", "familyname", "lname"),
    "name": ("name", "full_name", "fullname", "your_name", "contact_name"),
    "phone": ("phone", "phone_number", "phonenumber", "telephone", "tel", "mobile", "mobile_phone",
              "mobilephone", "cell", "cell_phone", "work_phone", "your_phone"),
    "company": ("company", "company_name", "companyname", "organization", "organisation",
                "organization_name", "organisation_name", "org", "business_name"),
    "job_title": ("job_title", "jobtitle", "title", "position", "job_role"),
    "company_size": ("company_size", "employees", "employee_count", "number_of_employees",
                     "num_employees", "numemployees", "headcount", "company_employees"),
    "industry": ("industry", "sector"),
    "country": ("country", "country_code", "country_name", "country_region"),
    "company_domain": ("company_domain",),
    "website": ("website", "company_website", "web_site", "homepage", "company_url", "domain"),
    "utm_source": ("utm_source",),
    "utm_medium": ("utm_medium",),
    "utm_campaign": ("utm_campaign",),
    "utm_term": ("utm_term",),
    "utm_content": ("utm_content",),
    "campaign": ("campaign", "campaign_name"),
    "source": ("source", "lead_source", "leadsource"),
    "marketing_consent": ("marketing_consent", "consent", "opt_in", "optin", "email_opt_in",
                          "marketing_opt_in", "gdpr_consent", "accept_marketing"),
    "page_url": ("page_url", "pageurl", "page_uri", "landing_page"),
}
_ALIAS_TO_FIELD = {alias: name for name, aliases in FIELD_ALIASES.items() for alias in aliases}
# Submitted with most HTML forms but never worth keeping on the lead.
_NOISE_KEYS = {"csrfmiddlewaretoken", "submit", "g_recaptcha_response", "h_captcha_response"}

MAX_ATTRIBUTE_KEYS = 50
MAX_ATTRIBUTE_KEY_LENGTH = 100
MAX_ATTRIBUTE_VALUE_LENGTH = 2000
MAX_PAYLOAD_DEPTH = 5

# Lead fields a capture writes (besides email, account, form and the derived flags).
LEAD_FIELDS = (
    "first_name", "last_name", "phone", "job_title", "company", "company_domain", "company_size",
    "industry", "country", "source", "utm_source", "utm_medium", "utm_campaign", "utm_term",
    "utm_content", "campaign", "marketing_consent", "consent_at", "consent_source",
)


@dataclass
class CaptureInput:
    """A validated, normalised submission."""

    email: str
    values: dict[str, Any]  # LEAD_FIELDS that were given (non-blank)
    attributes: dict[str, Any]
    company_domain: str  # the Account key: "" for free-mail / unknown domains
    is_personal_email: bool
    page_url: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


# --- Validation ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _snake(key: str) -> str:
    key = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


class _Text(serializers.CharField):
    """A single-line text field: NUL refused, control characters dropped, whitespace collapsed."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, list):
            self.fail("invalid")
        value = super().to_internal_value(data)
        try:
            return text_clean(value)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


def _max(name: str) -> int:
    return Lead._meta.get_field(name).max_length


class _NormalizedField(serializers.Field):
    """Wraps a normaliser from leads.normalize (Django ValidationError → field error)."""

    def __init__(self, normalizer, **kwargs):
        self.normalizer = normalizer
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return self.normalizer(data)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def to_representation(self, value):
        return value


class LeadCaptureSerializer(serializers.Serializer):
    """The known fields of a submission, by their canonical names."""

    email = _Text(max_length=320)
    first_name = _Text(max_length=_max("first_name"))
    last_name = _Text(max_length=_max("last_name"))
    name = _Text(max_length=_max("first_name") + _max("last_name") + 1)
    phone = _Text(max_length=64)
    job_title = _Text(max_length=_max("job_title"))
    company = _Text(max_length=_max("company"))
    company_domain = _Text(max_length=_max("company_domain"))
    website = _Text(max_length=2000)
    company_size = _NormalizedField(employee_count_parse)
    industry = _Text(max_length=_max("industry"))
    country = _Text(max_length=_max("country"))
    source = _Text(max_length=_max("source"))
    utm_source = _Text(max_length=_max("utm_source"))
    utm_medium = _Text(max_length=_max("utm_medium"))
    utm_campaign = _Text(max_length=_max("utm_campaign"))
    utm_term = _Text(max_length=_max("utm_term"))
    utm_content = _Text(max_length=_max("utm_content"))
    campaign = _Text(max_length=_max("campaign"))
    marketing_consent = _NormalizedField(consent_parse)
    page_url = _Text(max_length=2000)

    def validate_email(self, value):
        return _normalized(email_normalize, value)

    def validate_company_domain(self, value):
        return _normalized(domain_canonicalize, value)

    def validate_website(self, value):
        return _normalized(domain_canonicalize, value)

    def validate_phone(self, value):
        country = self.initial_data.get("country")
        region = country_region(country) if isinstance(country, str) else None
        return _normalized(lambda v: phone_normalize(v, region=region), value)

    def validate(self, attrs):
        attrs = {key: ("" if value is None else value) for key, value in attrs.items()}
        errors: dict[str, list[str]] = {}
        if attrs.get("name") and not attrs.get("first_name") and not attrs.get("last_name"):
            first, last = name_split(attrs["name"])
            if len(first) > _max("first_name") or len(last) > _max("last_name"):
                errors["name"] = [
                    f"The first name is limited to {_max('first_name')} characters and the last name "
                    f"to {_max('last_name')}."
                ]
            attrs["first_name"], attrs["last_name"] = first, last
        if not attrs.get("email") and not attrs.get("phone"):
            message = "Enter an email address or a phone number."
            errors["email"] = [message]
            errors["phone"] = [message]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _normalized(normalizer, value):
    try:
        return normalizer(value or "")
    except ValidationError as exc:
        raise serializers.ValidationError(exc.messages) from exc


def _json_problem(value) -> str | None:
    """Why a submitted value cannot be stored as JSON in PostgreSQL (None when it can)."""
    return text_problem(value, max_depth=MAX_PAYLOAD_DEPTH)


def _attribute_value_clean(value):
    if isinstance(value, str):
        value = text_clean(value, multiline=True)
        if len(value) > MAX_ATTRIBUTE_VALUE_LENGTH:
            raise ValidationError(f"Ensure this field has no more than {MAX_ATTRIBUTE_VALUE_LENGTH} characters.")
    elif isinstance(value, list):
        return [_attribute_value_clean(item) for item in value]
    elif isinstance(value, dict):
        return {str(key): _attribute_value_clean(item) for key, item in value.items()}
    return value


def _attributes_clean(extra: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    """Unknown fields, bounded: key count, key length, value length and total JSON size."""
    attributes: dict[str, Any] = {}
    for key, value in extra.items():
        if value in ("", None, [], {}):
            continue
        clean_key = text_clean(key)
        if not clean_key or len(clean_key) > MAX_ATTRIBUTE_KEY_LENGTH:
            errors.setdefault("attributes", []).append(
                f"Field names must be 1 to {MAX_ATTRIBUTE_KEY_LENGTH} characters long."
            )
            continue
        try:
            attributes[clean_key] = _attribute_value_clean(value)
        except ValidationError as exc:
            errors[key] = exc.messages
    if len(attributes) > MAX_ATTRIBUTE_KEYS:
        errors.setdefault("attributes", []).append(f"At most {MAX_ATTRIBUTE_KEYS} extra fields are accepted.")
    size = len(json.dumps(attributes, ensure_ascii=False).encode("utf-8"))
    if size > settings.INTAKE_MAX_ATTRIBUTES_BYTES:
        errors.setdefault("attributes", []).append(
            f"Extra fields are limited to {settings.INTAKE_MAX_ATTRIBUTES_BYTES} bytes in total (got {size})."
        )
    return attributes


def _country_apply(values: dict[str, Any], attributes: dict[str, Any]) -> None:
    """The country as its ISO alpha-2 code; one we do not know never loses the lead: the country stays
    blank (so it matches no territory, rule or dashboard by accident) and the text as sent is kept in
    `attributes["country_as_sent"]` for a person to fix. A sales region sent as a custom field
    ("region": "Europe") is stored as NA, LATAM, EMEA or APAC when it is one of them."""
    code, as_sent = country_canonicalize(values.pop("country", ""))
    if code:
        values["country"] = code
    elif as_sent:
        attributes.setdefault(COUNTRY_AS_SENT_ATTRIBUTE, as_sent)
    for key in [k for k in attributes if isinstance(k, str) and k.strip().lower() == "region"]:
        region = region_code(attributes[key])
        if region:
            attributes[key] = region


_reused = threading.local()


def _capture_serializer(known: dict[str, Any]) -> LeadCaptureSerializer:
    """A LeadCaptureSerializer for `known`, one per thread and reused: DRF deep-copies the declared fields into
    every new instance, which was a third of a capture's validation (its fields keep no per-call state; the
    per-call results `is_valid` caches are cleared here)."""
    serializer = getattr(_reused, "capture", None)
    if serializer is None:
        serializer = _reused.capture = LeadCaptureSerializer(data={})
    for cached in ("_validated_data", "_errors", "_data"):
        serializer.__dict__.pop(cached, None)
    serializer.initial_data = known
    return serializer


def _known_clean_memoized(known: dict[str, Any], memo: dict) -> tuple[dict[str, Any], dict[str, list]]:
    """What `LeadCaptureSerializer(data=known).is_valid()` gives — (validated data, errors) — with each field's
    answer for a text value remembered in `memo` across the submissions of one batch: an import's country, company
    or job title repeats thousands of times. The same fields, `validate_<field>` methods and `validate()` run, in
    DRF's order (the phone's answer is remembered per country region, which `validate_phone` reads)."""
    serializer = _capture_serializer(known)
    clean: dict[str, Any] = {}
    errors: dict[str, list] = {}
    for name, serializer_field in serializer.fields.items():
        if name not in known:
            continue  # a field not sent is skipped (none is required)
        value = known[name]
        key = None
        if type(value) is str:
            country = known.get("country")
            key = (name, value, country_region(country) if name == "phone" and isinstance(country, str) else None)
            answer = memo.get(key)
            if answer is not None:
                (clean if answer[0] else errors)[name] = answer[1]
                continue
        validate_method = getattr(serializer, f"validate_{name}", None)
        try:
            validated = serializer_field.run_validation(value)
            if validate_method is not None:
                validated = validate_method(validated)
        except serializers.ValidationError as exc:
            answer = (False, exc.detail)
        except ValidationError as exc:
            answer = (False, get_error_detail(exc))
        except SkipField:
            continue
        else:
            answer = (True, validated)
        if key is not None:
            memo[key] = answer
        (clean if answer[0] else errors)[name] = answer[1]
    if errors:
        return {}, errors
    try:
        return serializer.validate(clean), {}
    except serializers.ValidationError as exc:
        return {}, as_serializer_error(exc)


def capture_input_validate(*, data: dict[str, Any]) -> CaptureInput:
    """Map aliases to Lead fields, validate and normalise; errors are keyed by the submitted name."""
    return _capture_input(data=data, memo=None)


def capture_inputs_validate(*, items: Sequence[dict[str, Any]]) -> list[CaptureInput | ValidationError]:
    """`capture_input_validate` of each submission of a batch (an import's chunk): its CaptureInput, or the
    ValidationError it raises. The fields' answers for repeated values are worked out once per batch."""
    memo: dict = {}
    out: list[CaptureInput | ValidationError] = []
    for data in items:
        try:
            out.append(_capture_input(data=data, memo=memo))
        except ValidationError as exc:
            out.append(exc)
    return out


def _capture_input(*, data: dict[str, Any], memo: dict | None) -> CaptureInput:
    if not isinstance(data, dict):
        raise ValidationError({"detail": ["Send an object of form fields."]})
    errors: dict[str, list[str]] = {}
    for key, value in data.items():
        problem = _json_problem(key) or _json_problem(value)
        if problem:
            errors[printable_key(key)] = [problem]
    if errors:
        raise ValidationError(errors)

    known: dict[str, Any] = {}
    submitted_as: dict[str, str] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        snake = _snake(str(key))
        name = _ALIAS_TO_FIELD.get(snake)
        if snake == "attributes" and isinstance(value, dict):
            extra.update(value)
        elif name is None:
            if snake not in _NOISE_KEYS:
                extra[key] = value
        elif name not in known or known[name] in ("", None):
            known[name], submitted_as[name] = value, key

    if memo is None:
        serializer = _capture_serializer(known)
        valid = serializer.is_valid()
        clean, field_errors = (serializer.validated_data, {}) if valid else ({}, serializer.errors)
    else:
        clean, field_errors = _known_clean_memoized(known, memo)
    for name, messages in field_errors.items():
        errors[submitted_as.get(name, name)] = [str(m) for m in messages]
    attributes = _attributes_clean(extra, errors)
    if errors:
        raise ValidationError(errors)

    email = clean.get("email", "")
    domain_of_email = email_domain(email)
    personal = bool(email) and is_free_mail_domain(domain_of_email)
    company_domain = ""
    for candidate in (domain_of_email, clean.get("company_domain", ""), clean.get("website", "")):
        if candidate and not is_free_mail_domain(candidate):
            company_domain = candidate
            break
    if clean.get("website") and "website" in submitted_as:
        attributes.setdefault("website", known["website"])
    values = {name: clean[name] for name in LEAD_FIELDS if clean.get(name) not in (None, "", False)}
    _country_apply(values, attributes)
    if company_domain:
        values["company_domain"] = company_domain
    else:
        values.pop("company_domain", None)
    return CaptureInput(
        email=email, values=values, attributes=attributes, company_domain=company_domain,
        is_personal_email=personal, page_url=clean.get("page_url", ""), payload=dict(data),
    )
