"""Erased people, remembered only by a peppered hash of their email: `email_hash`, `erased_emails` (what intake and
nurture ask) and `erased_contact_record` (what an erasure writes)."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from leadmgmt.tenancy.models import Tenant

from .models import ErasedContact
from .normalize import email_normalize

# The field message batch intake answers for an erased person's email.
ERASED_MESSAGE = "This person's data was erased at the person's request; the address cannot be imported again."
# The item error of a signal about an erased person who has no lead (again).
ERASED_SIGNAL_MESSAGE = "This person's data was erased at the person's request; signals about them are not kept."


def email_key(email: str) -> str:
    """The email as intake stores it (`email_normalize`); an address intake would refuse is only trimmed and
    lower-cased, so that it still finds its hash."""
    try:
        return email_normalize(email or "")
    except ValidationError:
        return (email or "").strip().lower()


def email_hash_sql(column: str) -> str:
    """`email_hash` in SQL, of a column holding a normalised email, with the pepper as the `%(pepper)s` parameter
    (pass `settings.PRIVACY_HASH_PEPPER`): for set-based checks such as nurture's enrolment sweep."""
    return f"encode(sha256(convert_to(%(pepper)s || chr(10) || {column}, 'UTF8')), 'hex')"


def email_hash(email: str) -> str:
    """sha256 (hex) of the deployment's PRIVACY_HASH_PEPPER and the normalised email: not reversible without the
    pepper, the same for the same person on every path."""
    return hashlib.sha256(f"{settings.PRIVACY_HASH_PEPPER}\n{email_key(email)}".encode()).hexdigest()


def erased_emails(*, tenant: Tenant | int, emails: Iterable[str]) -> set[str]:
    """The emails among `emails` (as given) whose person was erased from `tenant`, in one query."""
    by_hash: dict[str, list[str]] = {}
    for email in emails:
        if email:
            by_hash.setdefault(email_hash(email), []).append(email)
    if not by_hash:
        return set()
    # One array parameter (`= ANY`): an import asks about a thousand emails at once, and an IN list of a thousand
    # values costs Django more to compile, value by value, than PostgreSQL takes to answer.
    with connection.cursor() as cursor:
        cursor.execute(_ERASED_SQL, [tenant if isinstance(tenant, int) else tenant.pk, list(by_hash)])
        found = [digest for (digest,) in cursor.fetchall()]
    return {email for digest in found for email in by_hash[digest]}


_ERASED_SQL = (f"SELECT email_hash FROM {ErasedContact._meta.db_table} "  # noqa: S608
               "WHERE tenant_id = %s AND email_hash = ANY(%s)")


def erased_contact_record(*, tenant: Tenant, digest: str) -> tuple[ErasedContact, bool]:
    """Remember an erased person by hash (once: a second erasure keeps the first date)."""
    return ErasedContact.objects.for_tenant(tenant).get_or_create(
        tenant=tenant, email_hash=digest, defaults={"erased_at": timezone.now()})
