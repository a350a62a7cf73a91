"""The hashed list of erased people (leads.erasure): one hash per person however the email is written, the same in
Python and in SQL, peppered per deployment, per tenant, asked in one query."""
from __future__ import annotations

import hashlib

import pytest
from django.db import connection

from leads.erasure import email_hash, email_hash_sql, erased_contact_record, erased_emails
from leads.models import ErasedContact

pytestmark = pytest.mark.django_db


def test_the_hash_is_of_the_normalised_email_and_peppered(settings):
    assert email_hash(" Ada@Bücher.Example ") == email_hash("ada@xn--bcher-kva.example")
    expected = hashlib.sha256(f"{settings.PRIVACY_HASH_PEPPER}\nada@xn--bcher-kva.example".encode()).hexdigest()
    assert email_hash("ada@xn--bcher-kva.example") == expected
    before = email_hash("ada@example.com")
    settings.PRIVACY_HASH_PEPPER = "another deployment"
    assert email_hash("ada@example.com") != before


def test_the_sql_hash_is_the_python_hash(settings):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {email_hash_sql('%(email)s')}",
                       {"pepper": settings.PRIVACY_HASH_PEPPER, "email": "zoë@example.com"})
        assert cursor.fetchone()[0] == email_hash("zoë@example.com")


def test_erased_emails_answers_for_its_tenant_only_in_one_query(tenant, other_tenant, django_assert_num_queries):
    erased_contact_record(tenant=tenant, digest=email_hash("gone@example.com"))
    _contact, created = erased_contact_record(tenant=tenant, digest=email_hash("GONE@example.com"))
    assert created is False and ErasedContact.objects.unscoped().count() == 1
    with django_assert_num_queries(1):
        found = erased_emails(tenant=tenant, emails=["GONE@example.com ", "kept@example.com", "", "not an email"])
    assert found == {"GONE@example.com "}
    assert erased_emails(tenant=other_tenant, emails=["gone@example.com"]) == set()
    with django_assert_num_queries(0):
        assert erased_emails(tenant=tenant, emails=[]) == set()
