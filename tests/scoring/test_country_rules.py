"""Scoring rules on the country compare ISO codes in SQL, are saved as codes, and the migration rewrites them."""
from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from leadmgmt.audit.actors import SYSTEM
from leads.signal_catalog import BUILTIN_SIGNAL_NAMES
from scoring.country_backfill import scoring_countries_canonicalize
from scoring.engine import country_match_values
from scoring.models import ScoringRule
from scoring.services import scoring_default_model_create
from scoring.validation import rule_errors
from tests.support.scoring import lines

pytestmark = pytest.mark.django_db
migration = importlib.import_module("scoring.migrations.0005_canonical_countries")
PRIMARY = "Geography: primary market"


def primary_market(model) -> ScoringRule:
    return ScoringRule.objects.unscoped().get(model=model, name=PRIMARY)


def test_the_default_primary_market_is_stored_as_codes(model):
    assert primary_market(model).value == ["US", "CA"]


@pytest.mark.parametrize("country", ["US", "CA", "USA", "United States", "canada"])
def test_a_lead_of_a_primary_market_scores_however_its_country_was_stored(scored, country):
    assert lines(scored(country=country)) == {PRIMARY: 10}


def test_a_rule_typed_with_names_scores_leads_stored_as_codes(scored, model):
    ScoringRule.objects.unscoped().filter(pk=primary_market(model).pk).update(value=["United Kingdom", "Germany"])
    assert lines(scored(country="GB")) == {PRIMARY: 10}
    assert lines(scored(country="DE")) == {PRIMARY: 10}
    assert lines(scored(country="US")) == {}


def test_equals_on_the_country_compares_codes(scored, model):
    ScoringRule.objects.unscoped().filter(pk=primary_market(model).pk).update(operator="equals", value="Deutschland")
    assert lines(scored(country="DE")) == {PRIMARY: 10}
    assert lines(scored(country="FR")) == {}


def test_the_sql_values_of_a_country_rule_are_its_codes_and_their_spellings():
    values = country_match_values(["United States", "Narnia"])
    assert {"us", "usa", "united states", "narnia"} <= set(values) and "ca" not in values


def test_saving_a_rule_stores_codes_and_an_unknown_country_is_a_field_message(in_tenant, tenant, model):
    rule = ScoringRule(tenant=tenant, model=model, name="EU", category="demographic", field="country",
                       operator="in_list", value=["Germany", "France", "DE"], points=5)
    rule.full_clean()
    assert rule.value == ["DE", "FR"]
    bad = ScoringRule(tenant=tenant, model=model, name="Nowhere", category="demographic", field="country",
                      operator="in_list", value=["Germany", "Narnia"], points=5)
    with pytest.raises(ValidationError) as refused:
        bad.full_clean()
    assert "Unknown country 'Narnia'" in refused.value.message_dict["value"][0]
    assert rule_errors(ScoringRule(field="industry", operator="in_list", value=["Narnia"], points=1,
                                   category="firmographic", name="x"), signal_types=BUILTIN_SIGNAL_NAMES) == {}


def test_the_migration_rewrites_country_rules_tenant_by_tenant(tenant, other_tenant, model):
    theirs = scoring_default_model_create(tenant=other_tenant, actor=SYSTEM)
    ScoringRule.objects.unscoped().filter(model__in=[model, theirs], name=PRIMARY).update(
        value=["USA", "United States", "Canada", "Narnia"])
    with connection.cursor() as cursor:
        assert scoring_countries_canonicalize(cursor=cursor, tenant_id=tenant.pk) == 1
    assert primary_market(model).value == ["US", "CA", "Narnia"]
    assert primary_market(theirs).value == ["USA", "United States", "Canada", "Narnia"]  # another tenant's run
    migration.forwards(None, SimpleNamespace(connection=connection))
    assert primary_market(theirs).value == ["US", "CA", "Narnia"]
    with connection.cursor() as cursor:
        assert scoring_countries_canonicalize(cursor=cursor, tenant_id=tenant.pk) == 0
