"""Normalising what people type into forms: text, emails, phones, domains, countries, company sizes, consent.

Every function returns the canonical value (or "" / None for blank input) and raises Django's
`ValidationError` with a message fit to show next to the field when the value cannot be used.
Intake (leads/services/capture.py) and lead edits use the same helpers, so a value means the
same thing whichever way it came in.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from urllib.parse import urlsplit

import idna
import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from .countries import country_code
from .freemail import is_free_mail_domain

__all__ = [
    "consent_parse",
    "country_canonicalize",
    "country_region",
    "domain_canonicalize",
    "email_domain",
    "email_normalize",
    "employee_count_parse",
    "is_free_mail_domain",
    "name_split",
    "phone_normalize",
    "text_clean",
]

NUL_MESSAGE = "Null characters are not allowed."

# Control characters (C0, DEL, C1) and the bidirectional overrides/isolates used to disguise
# text; zero-width joiners stay, they are part of some scripts and of emoji.
_CONTROL_RE = re.compile("[\x01-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPACE_RE = re.compile(r"\s+")


def text_clean(value: str, *, multiline: bool = False) -> str:
    """NFC-normalise, refuse NUL, drop other control characters and collapse whitespace.

    NUL is refused rather than stripped: no form field legitimately contains one, PostgreSQL
    cannot store it, and silently removing it would hide a broken or hostile client.
    """
    if "\x00" in value:
        raise ValidationError(NUL_MESSAGE, code="null_characters_not_allowed")
    value = unicodedata.normalize("NFC", value)
    if multiline:
        lines = [_CONTROL_RE.sub("", line).strip() for line in value.replace("\r\n", "\n").split("\n")]
        return "\n".join(lines).strip()
    value = _CONTROL_RE.sub(" ", value)
    return _SPACE_RE.sub(" ", value).strip()


# --- Domains -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=16384)
def _idna_ascii(host: str) -> str:
    """The ASCII (IDNA 2008, UTS 46) form of a host name; raises idna.IDNAError or UnicodeError. Remembered per
    host: the idna package is pure Python, and an import of thousands of rows names the same domains again and
    again (errors are not remembered; they are rare)."""
    return idna.encode(host, uts46=True, std3_rules=True).decode("ascii")


_DOMAIN_MESSAGE = "Enter a valid domain or website address, e.g. acme.com."


def domain_canonicalize(value: str) -> str:
    """The one canonical form of a domain or website: lower-case ASCII (IDNA/punycode), no
    scheme, user info, `www.`, port, path or trailing dot.

    `https://www.Acme.com/`, `ACME.com:443/path`, `www.acme.com` → `acme.com`;
    `bücher.example` and `xn--bcher-kva.example` → `xn--bcher-kva.example`.
    """
    value = text_clean(value or "")
    if not value:
        return ""
    if "://" not in value:
        value = "//" + value  # let urlsplit find the host in "acme.com:443/path"
    try:
        host = urlsplit(value).hostname or ""
    except ValueError as exc:
        raise ValidationError(_DOMAIN_MESSAGE, code="invalid_domain") from exc
    host = host.strip().rstrip(".")
    try:
        host = _idna_ascii(host)
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValidationError(_DOMAIN_MESSAGE, code="invalid_domain") from exc
    if host.startswith("www."):
        host = host[4:]
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or labels[-1].isdigit() or not all(labels):
        raise ValidationError(_DOMAIN_MESSAGE, code="invalid_domain")
    return host


# --- Email ---------------------------------------------------------------------------------

# No allow-list: `someone@localhost` is not the address of a lead.
_email_validator = EmailValidator(message="Enter a valid email address.", allowlist=[])


def email_normalize(value: str) -> str:
    """Trimmed, lower-cased and validated; an IDN domain is stored in its ASCII form so that
    `a@bücher.example` and `a@xn--bcher-kva.example` are the same lead."""
    value = text_clean(value or "")
    if not value:
        return ""
    value = value.lower()
    if value.startswith("mailto:"):
        value = value[len("mailto:"):]
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain:
        raise ValidationError("Enter a valid email address.", code="invalid")
    try:
        domain = _idna_ascii(domain.rstrip("."))
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValidationError("Enter a valid email address.", code="invalid") from exc
    value = f"{local}@{domain}"
    if len(value) > 254:
        raise ValidationError("Ensure this field has no more than 254 characters.", code="max_length")
    _email_validator(value)
    return value


def email_domain(email: str) -> str:
    """The domain part of a normalised email ("" when there is none)."""
    return email.rpartition("@")[2] if "@" in email else ""


# --- Countries and phones ------------------------------------------------------------------

def country_region(value: str | None) -> str | None:
    """ISO 3166 alpha-2 code for a country as typed ("DE", "de", "Germany", "Deutschland",
    "USA"), or None when it is not recognised (the phone region of a lead's country)."""
    return country_code(value) or None


def country_canonicalize(value: str | None) -> tuple[str, str]:
    """(alpha-2 code, "") for a country we know; ("", the cleaned text) for one we do not; ("", "")
    when blank. Leads, territories and rules store the code (leads.countries)."""
    text = text_clean(value or "") if isinstance(value, str) else ""
    if not text:
        return "", ""
    code = country_code(text)
    return (code, "") if code else ("", text)


_PHONE_MESSAGE = "Enter a valid phone number, e.g. +1 415 555 0123."
_PHONE_CHARS_RE = re.compile(r"^[0-9+()\-./\s]*(?:(?:ext\.?|x|#|;ext=)\s*[0-9]{1,7})?$", re.IGNORECASE)


def phone_normalize(value: str, *, region: str | None = None) -> str:
    """E.164 (`+14155550123`) when the number is a valid number of `region` (default
    `settings.DEFAULT_PHONE_REGION`) or carries its own `+country` prefix.

    A number that looks like a phone number but cannot be placed (an unusual national format
    without a country) is kept as typed, whitespace collapsed, rather than losing the lead;
    anything that is not a phone number at all is refused.
    """
    value = text_clean(value or "")
    if not value:
        return ""
    region = (region or getattr(settings, "DEFAULT_PHONE_REGION", None) or "US").upper()
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    # A valid number, or a possible one typed with its own +country code, is placed for sure;
    # a merely "possible" national number may be a guess (0 12 34 56 is not +10123456).
    if number is not None and (
        phonenumbers.is_valid_number(number)
        or (value.startswith("+") and phonenumbers.is_possible_number(number))
    ):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    digits = sum(ch.isdigit() for ch in value)
    if _PHONE_CHARS_RE.match(value) and 6 <= digits <= 17 and len(value) <= 40:
        return value
    raise ValidationError(_PHONE_MESSAGE, code="invalid_phone")


# --- Company size --------------------------------------------------------------------------

_EMPLOYEES_MESSAGE = "Enter a number of employees, e.g. 250, 100-499 or 500+."
_NUMBER_RE = re.compile(r"(\d[\d,.'\s]*)\s*([km])?", re.IGNORECASE)
_FEWER_RE = re.compile(r"^\s*(?:<|less than|fewer than|under|up to|below)", re.IGNORECASE)
MAX_EMPLOYEES = 10_000_000


def _number(text: str, suffix: str | None) -> int:
    digits = re.sub(r"[\s,'.]", "", text)
    # "1.5k" is one and a half thousand; "1.200" / "1,200" are thousands separators.
    if suffix and re.fullmatch(r"\d+[.,]\d+", text.strip()):
        amount = float(text.strip().replace(",", "."))
    else:
        amount = float(digits)
    multiplier = {"k": 1_000, "m": 1_000_000}.get((suffix or "").lower(), 1)
    return int(amount * multiplier)


def employee_count_parse(value) -> int | None:
    """Employee count from what forms send: 250, "1,200", "100-499" and "100 to 499" (the lower
    bound: the company has at least that many), "500+", "10k+", "<50" (1). None when blank."""
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise ValidationError(_EMPLOYEES_MESSAGE, code="invalid")
    if isinstance(value, int):
        count = value
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(_EMPLOYEES_MESSAGE, code="invalid")
        count = int(value)
    elif isinstance(value, str):
        text = text_clean(value)
        if not text:
            return None
        if text.startswith("-"):
            raise ValidationError(_EMPLOYEES_MESSAGE, code="invalid")
        matches = _NUMBER_RE.findall(text)
        if not matches:
            raise ValidationError(_EMPLOYEES_MESSAGE, code="invalid")
        try:
            count = _number(*matches[0])
        except ValueError as exc:
            raise ValidationError(_EMPLOYEES_MESSAGE, code="invalid") from exc
        if _FEWER_RE.match(text):
            count = 1
    else:
        raise ValidationError(_EMPLOYEES_MESSAGE, code="invalid")
    if count < 0:
        raise ValidationError(_EMPLOYEES_MESSAGE, code="invalid")
    if count > MAX_EMPLOYEES:
        raise ValidationError(f"Ensure this value is at most {MAX_EMPLOYEES:,}.", code="max_value")
    return count


# --- Consent and names ---------------------------------------------------------------------

_TRUE = {"on", "true", "1", "yes", "y", "checked", "t", "opt-in", "opt_in", "agree", "agreed"}
_FALSE = {"", "off", "false", "0", "no", "n", "f", "unchecked", "none", "null"}


def consent_parse(value) -> bool:
    """A checkbox value as a boolean (on/true/1/yes → True; off/false/0/no/blank → False).

    A list (a hidden "0" plus the checkbox, a common HTML pattern) is True if any item is."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)):
        return any(consent_parse(item) for item in value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValidationError("Must be a yes/no value (on, true, 1, yes or off, false, 0, no).", code="invalid")


def name_split(full_name: str) -> tuple[str, str]:
    """("Ada", "Lovelace King") from "Ada Lovelace King"; a single word is a first name.

    Forms with one "name" box cannot tell given from family name reliably; the first word as
    the given name is the convention Salesforce and HubSpot imports use."""
    parts = full_name.split(" ", 1)
    return parts[0], (parts[1] if len(parts) > 1 else "")
