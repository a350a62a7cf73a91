"""Routing compares countries as ISO codes and regions as NA/LATAM/EMEA/APAC, however either side was typed;
territories and conditions are saved canonical; the data migration rewrites stored configuration."""
from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from routing.conditions import conditions_canonicalize, conditions_errors, conditions_match
from routing.country_backfill import routing_countries_canonicalize
from routing.defaults import routing_defaults_create
from routing.models import RoutingRule, Strategy, Territory
from routing.services.assign import lead_route
from routing.strategies import territory_match
from tests.support.routing import NOW, lead, rep, rule, team

pytestmark = pytest.mark.django_db
migration = importlib.import_module("routing.migrations.0005_canonical_countries")


def territory(tenant, name, **fields) -> Territory:
    return Territory.objects.unscoped().create(tenant=tenant, name=name, team=team(tenant, name), **fields)


# --- matching -------------------------------------------------------------------------------------------


def test_a_territory_typed_with_names_takes_leads_stored_as_codes_and_the_other_way_round(tenant):
    named = territory(tenant, "North America", countries=["United States", "canada"])
    coded = territory(tenant, "DACH", countries=["DE", "AT", "CH"], position=2)
    for typed in ("US", "USA", "United States", "u.s.a.", "CA"):
        assert territory_match([named, coded], {"country": typed}) == named, typed
    assert territory_match([named, coded], {"country": "Deutschland"}) == coded
    assert territory_match([named, coded], {"country": "France"}) is None


def test_the_region_comes_from_the_country_and_a_sent_region_only_fills_an_unknown_one(tenant):
    emea = territory(tenant, "EMEA", regions=["emea"])
    na = territory(tenant, "NA", regions=["North America"], position=2)
    latam = territory(tenant, "LATAM", regions=["LATAM"], position=3)
    assert territory_match([emea, na], {"country": "DE"}) == emea
    assert territory_match([emea, na], {"country": "US", "attributes": {"region": "EMEA"}}) == na
    assert territory_match([emea, na], {"country": "", "attributes": {"region": "Europe"}}) == emea
    assert territory_match([emea, na], {"country": "Narnia", "attributes": {"region": "emea"}}) == emea
    assert territory_match([latam, na], {"country": "Mexico"}) == latam
    assert territory_match([na], {"country": "MX"}) == na


def test_routing_places_a_code_lead_in_a_territory_of_names(tenant):
    aes = team(tenant, "AEs")
    ae = rep(tenant, aes, role=Role.AE)
    Territory.objects.unscoped().create(tenant=tenant, name="US", team=aes, countries=["United States"])
    rule(tenant, 10, Strategy.TERRITORY)
    assignment = lead_route(lead=lead(tenant, country="US"), actor=SYSTEM, trigger="capture", now=NOW)
    assert assignment.owner_id == ae.pk


def test_a_country_condition_compares_codes_however_either_side_is_typed():
    c = [{"field": "country", "operator": "in_list", "value": ["United States", "Canada"]}]
    for typed in ("US", "usa", "United States of America", "CA"):
        assert conditions_match({"country": typed}, c)[0], typed
    assert not conditions_match({"country": "GB"}, c)[0]
    assert not conditions_match({"country": ""}, c)[0]
    equals = [{"field": "country", "operator": "equals", "value": "UK"}]
    assert conditions_match({"country": "GB"}, equals)[0] and conditions_match({"country": "Great Britain"}, equals)[0]
    outside = [{"field": "country", "operator": "not_in_list", "value": ["USA"]}]
    assert conditions_match({"country": "DE"}, outside)[0] and not conditions_match({"country": "US"}, outside)[0]


def test_a_condition_naming_no_country_is_a_field_message():
    errors = conditions_errors([{"field": "country", "operator": "in_list", "value": ["US", "Narnia"]}])
    assert errors == {"conditions": ["Condition 1: unknown country 'Narnia': use a country name or its ISO code, "
                                     "e.g. Germany or DE."]}
    assert conditions_errors([{"field": "country", "operator": "contains", "value": "land"}]) == {}


def test_conditions_are_saved_with_country_codes():
    saved = conditions_canonicalize([
        {"field": "country", "operator": "in_list", "value": ["United States", "USA", "Canada"]},
        {"field": "country", "operator": "equals", "value": "Deutschland"},
        {"field": "industry", "operator": "equals", "value": "Software"},
        {"field": "country", "operator": "in_list", "value": ["Narnia"]},
    ])
    assert [c["value"] for c in saved] == [["US", "CA"], "DE", "Software", ["Narnia"]]


# --- the admin saves canonical values --------------------------------------------------------------------


@pytest.fixture
def ops(tenant):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    user = rep(tenant, role=Role.MARKETING_OPS)
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def territory_post(client, tenant, **fields):
    data = {"name": "North America", "position": 100, "countries": '["United States", "canada", "USA"]',
            "regions": "[]", "industries": "[]", "company_size_min": "", "company_size_max": "",
            "team": team(tenant, "AEs").pk, "is_active": "on"} | fields
    return client.post(reverse("admin:routing_territory_add"), data)


def test_the_territory_admin_saves_countries_and_regions_as_codes(tenant, ops):
    response = territory_post(ops, tenant, regions='["Europe", "emea"]')
    assert response.status_code == 302, response.content.decode()[:3000]
    saved = Territory.objects.unscoped().get(tenant=tenant, name="North America")
    assert (saved.countries, saved.regions) == (["US", "CA"], ["EMEA"])


def test_the_territory_admin_refuses_an_unknown_country_or_region(tenant, ops):
    response = territory_post(ops, tenant, countries='["United States", "Narnia"]', regions='["DACH"]')
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "Unknown country 'Narnia'" in errors["countries"][0]
    assert "Unknown region 'DACH'" in errors["regions"][0]
    assert not Territory.objects.unscoped().filter(tenant=tenant, name="North America").exists()


def test_the_rule_admin_saves_country_conditions_as_codes(tenant, ops):
    data = {"position": 50, "name": "NA", "is_active": "on", "strategy": "round_robin", "team": team(tenant).pk,
            "roles": "[]", "fall_through": "on", "members-TOTAL_FORMS": "0", "members-INITIAL_FORMS": "0",
            "conditions": '[{"field": "country", "operator": "in_list", "value": ["United States", "Canada"]}]'}
    response = ops.post(reverse("admin:routing_routingrule_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    saved = RoutingRule.objects.unscoped().get(tenant=tenant, position=50)
    assert saved.conditions == [{"field": "country", "operator": "in_list", "value": ["US", "CA"]}]


# --- the data migration ----------------------------------------------------------------------------------


def test_the_migration_rewrites_territories_and_rules_tenant_by_tenant(tenant, other_tenant):
    ours = territory(tenant, "Mixed", countries=["United States", "USA", "Narnia"], regions=["europe", "DACH"])
    theirs = territory(other_tenant, "Theirs", countries=["Germany"])
    country_rule = rule(tenant, 10, conditions=[
        {"field": "country", "operator": "in_list", "value": ["United Kingdom", "UK"]},
        {"field": "score", "operator": "range", "value": {"min": 80}}])
    migration.forwards(None, SimpleNamespace(connection=connection))
    ours.refresh_from_db()
    theirs.refresh_from_db()
    country_rule.refresh_from_db()
    assert (ours.countries, ours.regions) == (["US", "Narnia"], ["EMEA", "DACH"])
    assert theirs.countries == ["DE"]
    assert country_rule.conditions[0]["value"] == ["GB"] and country_rule.conditions[1]["value"] == {"min": 80}
    with connection.cursor() as cursor:
        assert routing_countries_canonicalize(cursor=cursor, tenant_id=tenant.pk) == 0
