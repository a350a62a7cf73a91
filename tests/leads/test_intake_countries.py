"""Intake stores countries as ISO alpha-2 codes; an unknown country keeps the lead; edits stay canonical."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from leadmgmt.audit.actors import SYSTEM
from leads.countries import COUNTRY_AS_SENT_ATTRIBUTE
from leads.models import Lead
from leads.services.lead_edit import lead_update
from tests.support.factories import LeadFactory
from tests.support.intake import post_json

pytestmark = pytest.mark.django_db


def captured(client, form, **fields) -> Lead:
    response = post_json(client, fields, form=form)
    assert response.status_code == 201, response.content
    return Lead.objects.unscoped().get(pk=response.json()["id"])


@pytest.mark.parametrize("typed", ["US", "USA", "United States", "u.s.a.", "United States of America"])
def test_intake_stores_the_country_as_its_iso_code(client, lead_form, typed):
    lead = captured(client, lead_form, email=f"{typed.replace(' ', '').replace('.', '')}@corp.example",
                    country=typed)
    assert lead.country == "US" and COUNTRY_AS_SENT_ATTRIBUTE not in lead.attributes


def test_the_country_code_alias_and_other_languages_are_understood(client, lead_form):
    assert captured(client, lead_form, email="a@corp.example", country_code="gb").country == "GB"
    assert captured(client, lead_form, email="b@corp.example", countryName="Deutschland").country == "DE"


def test_an_unknown_country_keeps_the_lead_with_the_text_as_sent(client, lead_form):
    lead = captured(client, lead_form, email="c@corp.example", country="Narnia", phone="+44 20 7946 0958")
    assert lead.country == "" and lead.attributes[COUNTRY_AS_SENT_ATTRIBUTE] == "Narnia"
    assert lead.phone == "+442079460958"


def test_a_region_sent_as_a_custom_field_becomes_a_sales_region(client, lead_form):
    lead = captured(client, lead_form, email="d@corp.example", country="Narnia", region="Europe")
    assert lead.attributes["region"] == "EMEA"
    kept = captured(client, lead_form, email="e@corp.example", region="Springfield district")
    assert kept.attributes["region"] == "Springfield district"


def test_a_merge_fills_a_blank_country_with_its_code(client, lead_form):
    captured(client, lead_form, email="f@corp.example")
    response = post_json(client, {"email": "f@corp.example", "country": "Canada"}, form=lead_form)
    assert response.status_code == 200
    assert Lead.objects.unscoped().get(email="f@corp.example").country == "CA"


def test_an_edit_stores_the_code_and_refuses_what_is_no_country(tenant):
    lead = LeadFactory(tenant=tenant, country="")
    edited = lead_update(lead=lead, data={"country": "united kingdom"}, actor=SYSTEM)
    assert edited.country == "GB" and "country" in edited.edited_fields
    with pytest.raises(ValidationError) as refused:
        lead_update(lead=edited, data={"country": "Atlantis"}, actor=SYSTEM)
    assert "Enter a country name or its ISO code" in refused.value.message_dict["country"][0]


def test_saving_a_legacy_country_unchanged_is_not_an_edit(tenant):
    lead = LeadFactory(tenant=tenant, country="Germany")
    same = lead_update(lead=lead, data={"country": "Germany"}, actor=SYSTEM)
    assert same.country == "Germany" and "country" not in same.edited_fields
    assert lead_update(lead=same, data={"country": "Deutschland"}, actor=SYSTEM).country == "Germany"
    assert lead_update(lead=same, data={"country": "France"}, actor=SYSTEM).country == "FR"
