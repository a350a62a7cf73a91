"""Countries in one canonical form: ISO alpha-2 codes from names, codes and variants; sales regions from them."""
from __future__ import annotations

import pytest

from leads.countries import (
    country_code,
    country_codes,
    country_sales_regions,
    country_spellings,
    country_values_canonical,
    region_code,
    sales_regions,
)
from leads.normalize import country_canonicalize


@pytest.mark.parametrize("typed", ["US", "us", "USA", "U.S.A.", "U.S.", "United States", "united states",
                                   "United States of America", "  The United States ", "America"])
def test_every_spelling_of_the_united_states_is_us(typed):
    assert country_code(typed) == "US"


@pytest.mark.parametrize("typed, code", [
    ("UK", "GB"), ("Great Britain", "GB"), ("United Kingdom", "GB"), ("England", "GB"), ("GBR", "GB"),
    ("Deutschland", "DE"), ("Germany", "DE"), ("de", "DE"), ("DEU", "DE"), ("Frankreich", "FR"),
    ("Holland", "NL"), ("The Netherlands", "NL"), ("México", "MX"), ("Mexico", "MX"), ("South Korea", "KR"),
    ("Korea, Republic of", "KR"), ("Côte d’Ivoire", "CI"), ("Czech Republic", "CZ"), ("Türkiye", "TR"),
    ("Brasil", "BR"), ("UAE", "AE"),
])
def test_names_codes_and_common_variants_are_canonical(typed, code):
    assert country_code(typed) == code


@pytest.mark.parametrize("typed", ["", "   ", "Narnia", "Europe", "N/A", "XX", None, 42])
def test_what_is_no_country_is_never_guessed(typed):
    assert country_code(typed) == ""


def test_canonicalize_keeps_the_text_of_an_unknown_country():
    assert country_canonicalize("  united   states ") == ("US", "")
    assert country_canonicalize("Narnia ") == ("", "Narnia")
    assert country_canonicalize("") == ("", "")


def test_lists_become_codes_in_order_without_repeats():
    assert country_codes(["United States", "USA", "Canada", "Narnia"]) == (["US", "CA"], ["Narnia"])
    assert country_values_canonical(["United States", "USA", "Narnia", "CA"]) == ["US", "Narnia", "CA"]


def test_the_sales_region_is_derived_from_the_country():
    assert country_sales_regions("US") == ("NA",) and country_sales_regions("Canada") == ("NA",)
    assert country_sales_regions("Deutschland") == ("EMEA",) and country_sales_regions("South Africa") == ("EMEA",)
    assert country_sales_regions("Japan") == ("APAC",) and country_sales_regions("AU") == ("APAC",)
    assert country_sales_regions("Brazil") == ("LATAM",)
    assert country_sales_regions("Mexico") == ("LATAM", "NA")  # a territory of either region takes it
    assert country_sales_regions("Narnia") == ()
    regions = sales_regions()
    assert set(regions) == {"NA", "LATAM", "EMEA", "APAC"}
    assert sum(len(codes) for codes in regions.values()) > 240  # every ISO country has a region


@pytest.mark.parametrize("typed, region", [
    ("emea", "EMEA"), ("Europe", "EMEA"), ("Asia Pacific", "APAC"), ("asia-pacific", "APAC"),
    ("North America", "NA"), ("na", "NA"), ("Latin America", "LATAM"), ("DACH", ""), ("", ""),
])
def test_regions_as_typed_become_the_four_sales_regions(typed, region):
    assert region_code(typed) == region


def test_spellings_of_a_country_include_its_code_names_and_variants():
    spellings = country_spellings("US")
    assert {"us", "usa", "united states", "united states of america", "u.s.a."} <= spellings
    assert "germany" in country_spellings("DE") and "deutschland" in country_spellings("DE")
