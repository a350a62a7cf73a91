"""The data migration: stored leads get ISO alpha-2 countries and sales regions, tenant by tenant, in SQL."""
from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.db import connection

from leads.country_backfill import lead_countries_canonicalize, lead_regions_canonicalize
from leads.models import Lead
from tests.support.factories import LeadFactory

pytestmark = pytest.mark.django_db
migration = importlib.import_module("leads.migrations.0008_canonical_countries")


def country_of(lead) -> tuple[str, dict]:
    row = Lead.objects.unscoped().values_list("country", "attributes").get(pk=lead.pk)
    return row[0], row[1]


def test_the_migration_turns_every_spelling_into_its_code_and_runs_again_harmlessly(tenant, other_tenant):
    raw = {"United States": "US", "USA": "US", "u.s.a.": "US", "us": "US", "UK": "GB", "Great Britain": "GB",
           "Deutschland": "DE", "DE": "DE", "": ""}
    leads = {typed: LeadFactory(tenant=tenant, country=typed) for typed in raw}
    theirs = LeadFactory(tenant=other_tenant, country="United Kingdom")
    migration.forwards(None, SimpleNamespace(connection=connection))
    assert {typed: country_of(lead)[0] for typed, lead in leads.items()} == raw
    assert country_of(theirs)[0] == "GB"
    with connection.cursor() as cursor:
        assert lead_countries_canonicalize(cursor=cursor, tenant_id=tenant.pk) == 0  # idempotent


def test_an_unknown_country_is_blanked_and_kept_as_sent(tenant):
    lead = LeadFactory(tenant=tenant, country="Narnia", attributes={"plan": "pro"})
    already = LeadFactory(tenant=tenant, country="Atlantis", attributes={"country_as_sent": "Atlantis (old)"})
    with connection.cursor() as cursor:
        assert lead_countries_canonicalize(cursor=cursor, tenant_id=tenant.pk) == 2
    assert country_of(lead) == ("", {"plan": "pro", "country_as_sent": "Narnia"})
    assert country_of(already) == ("", {"country_as_sent": "Atlantis (old)"})


def test_one_tenants_run_leaves_other_tenants_alone(tenant, other_tenant):
    ours = LeadFactory(tenant=tenant, country="Germany", attributes={"region": "Europe"})
    theirs = LeadFactory(tenant=other_tenant, country="Germany", attributes={"region": "Europe"})
    with connection.cursor() as cursor:
        lead_countries_canonicalize(cursor=cursor, tenant_id=tenant.pk)
        assert lead_regions_canonicalize(cursor=cursor, tenant_id=tenant.pk) == 1
        assert lead_regions_canonicalize(cursor=cursor, tenant_id=tenant.pk) == 0
    assert country_of(ours) == ("DE", {"region": "EMEA"})
    assert country_of(theirs) == ("Germany", {"region": "Europe"})


def test_a_region_that_is_no_sales_region_is_kept(tenant):
    lead = LeadFactory(tenant=tenant, country="DE", attributes={"region": "DACH", "other": 1})
    numeric = LeadFactory(tenant=tenant, attributes={"region": 7})
    with connection.cursor() as cursor:
        assert lead_regions_canonicalize(cursor=cursor, tenant_id=tenant.pk) == 0
    assert country_of(lead)[1] == {"region": "DACH", "other": 1} and country_of(numeric)[1] == {"region": 7}


def test_the_rewrite_is_set_based_a_few_statements_per_tenant_not_one_per_lead(tenant, django_assert_max_num_queries):
    for typed in ["USA", "United States", "Canada", "Deutschland"] * 25:
        LeadFactory(tenant=tenant, country=typed)
    with django_assert_max_num_queries(4), connection.cursor() as cursor:
        assert lead_countries_canonicalize(cursor=cursor, tenant_id=tenant.pk) == 100
    assert set(Lead.objects.unscoped().filter(tenant=tenant).values_list("country", flat=True)) == {"US", "CA", "DE"}
