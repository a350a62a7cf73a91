"""`rows_copy` writes new rows through COPY and one INSERT … SELECT: every value arrives as `save()` would write it
(text with COPY's special characters, JSON, NULL, UUIDs, datetimes, booleans, foreign keys), and the tenant policy
still refuses a row of another tenant."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import transaction
from django.db.utils import ProgrammingError

from leadmgmt.db.bulk import instance_builder, rows_copy, values_copy
from leadmgmt.tenancy.context import tenant_scope
from leads.models import Lead, Touch, TouchKind
from tests.support.factories import TenantFactory

pytestmark = pytest.mark.django_db


def test_rows_copy_writes_every_value_as_save_would():
    tenant = TenantFactory()
    at = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    awkward = "tab\there, new\nline, back\\slash, \\N, cr\r, ünïcødé ✓"
    with tenant_scope(tenant), transaction.atomic():
        leads = [Lead(tenant=tenant, email=f"p{i}@example.com", first_name=awkward if i == 0 else "Ann",
                      attributes={"note": awkward, "n": i, "list": [1, None, "x"]}, marketing_consent=i % 2 == 0,
                      company_size=None if i else 250, created_at=at, last_activity_at=at) for i in range(3)]
        rows_copy(leads)
        touches = [Touch(tenant=tenant, lead=lead, kind=TouchKind.CREATED, source="import",
                         payload={"Email": lead.email, "Raw": awkward}, filled_fields=["email"], received_at=at)
                   for lead in leads]
        rows_copy(touches)

    with tenant_scope(tenant):
        stored = {lead.pk: lead for lead in Lead.objects.for_tenant(tenant)}
        assert set(stored) == {lead.pk for lead in leads}
        first = stored[leads[0].pk]
        assert first.first_name == awkward
        assert first.attributes == {"note": awkward, "n": 0, "list": [1, None, "x"]}
        assert first.marketing_consent is True and stored[leads[1].pk].marketing_consent is False
        assert first.company_size == 250 and stored[leads[1].pk].company_size is None
        assert first.created_at == at and first.updated_at is not None  # auto_now filled as save() fills it
        assert first.status == Lead._meta.get_field("status").default
        saved = {t.lead_id: t for t in Touch.objects.for_tenant(tenant)}
        assert saved[leads[2].pk].payload == {"Email": "p2@example.com", "Raw": awkward}
        assert saved[leads[2].pk].filled_fields == ["email"]


def test_rows_copy_of_nothing_writes_nothing():
    rows_copy([])


def test_rows_copy_is_held_to_the_tenant_of_the_transaction():
    mine, other = TenantFactory(), TenantFactory()
    at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with tenant_scope(mine), pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
        rows_copy([Lead(id=uuid.uuid4(), tenant=other, email="x@example.com", created_at=at, last_activity_at=at)])
    with tenant_scope(other):
        assert not Lead.objects.for_tenant(other).exists()


def test_an_instance_builder_builds_what_the_model_builds_with_fresh_defaults_each_time():
    tenant = TenantFactory()
    at = dt.datetime(2024, 5, 31, 14, 30, tzinfo=dt.UTC)
    values = {"tenant": tenant, "email": "a@x.example", "attributes": {"Plan": "pro"}, "created_at": at,
              "last_activity_at": at, "first_name": "Ann"}
    build = instance_builder(Lead)
    first, second, django = build(**values), build(**{**values, "email": "b@x.example"}), Lead(**values)
    plain = {name: value for name, value in django.__dict__.items() if name not in ("_state", "id")
             and not type(value).__name__ == "DatabaseDefault"}
    assert {name: first.__dict__[name] for name in plain} == plain
    assert first.tenant is tenant and first._state.adding and first.pk and first.pk != second.pk
    assert first.edited_fields == [] and first.edited_fields is not second.edited_fields
    with tenant_scope(tenant), transaction.atomic():
        rows_copy([first, second])
    assert sorted(Lead.objects.unscoped().filter(tenant=tenant).values_list("email", flat=True)) == [
        "a@x.example", "b@x.example"]


def test_values_copy_writes_plain_rows_as_save_would():
    tenant = TenantFactory()
    at = dt.datetime(2024, 5, 31, 14, 30, tzinfo=dt.UTC)
    lead = Lead(id=uuid.uuid4(), tenant=tenant, email="x@example.com", created_at=at, last_activity_at=at)
    columns = ("tenant_id", "lead_id", "kind", "form_id", "source", "payload", "filled_fields", "ip_address",
               "user_agent", "received_at")
    with tenant_scope(tenant), transaction.atomic():
        rows_copy([lead])
        values_copy(Touch, columns, [(tenant.pk, lead.pk, TouchKind.CREATED.value, None, "import",
                                      {"Note": "tab\there\nline \\ back"}, ["email"], None, "", at)])
    touch = Touch.objects.unscoped().get(lead_id=lead.pk)
    assert touch.payload == {"Note": "tab\there\nline \\ back"} and touch.filled_fields == ["email"]
    assert touch.received_at == at and touch.form_id is None and touch.user_agent == ""
