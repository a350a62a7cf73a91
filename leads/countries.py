"""Countries and sales regions in one canonical form: ISO 3166-1 alpha-2 codes and NA/LATAM/EMEA/APAC.

A lead's `country` is stored as its alpha-2 code ("US", "GB", "DE"), whatever the form sent
("USA", "U.S.A.", "United States of America", "united states", "UK", "Great Britain",
"Deutschland" …); territories, routing conditions and scoring rules are saved the same way, so
every comparison is code against code. The ISO list comes from django-countries (offline, kept
up to date with the standard), names in other languages from phonenumbers' geodata, and a short
table of the variants people type that neither knows ("UK", "Holland", "America").

A value that is not a country is never guessed: `country_code` returns "" and the caller decides
(intake keeps the lead with a blank country and the text as sent in `attributes`).
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

__all__ = [
    "COUNTRY_AS_SENT_ATTRIBUTE",
    "SALES_REGION_CODES",
    "country_code",
    "country_codes",
    "country_name",
    "country_sales_regions",
    "country_spellings",
    "country_values_canonical",
    "iso_codes",
    "region_code",
    "sales_regions",
]

# Where intake keeps a country it could not recognise (the lead is kept, its `country` blank).
COUNTRY_AS_SENT_ATTRIBUTE = "country_as_sent"

# Variants that neither the ISO list nor the translated names contain (lower case, as typed).
_ALIASES = {
    "us": "US", "u.s.": "US", "u.s.a.": "US", "usa": "US", "u s a": "US", "united states": "US",
    "united states of america": "US", "america": "US", "the united states": "US", "the us": "US",
    "uk": "GB", "u.k.": "GB", "great britain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northern ireland": "GB", "united kingdom": "GB", "the uk": "GB",
    "holland": "NL", "the netherlands": "NL", "south korea": "KR", "korea": "KR", "republic of korea": "KR",
    "russia": "RU", "russian federation": "RU", "czech republic": "CZ", "czechia": "CZ", "uae": "AE",
    "u.a.e.": "AE", "emirates": "AE", "viet nam": "VN", "vietnam": "VN", "turkey": "TR", "türkiye": "TR",
    "turkiye": "TR", "deutschland": "DE", "brasil": "BR", "méxico": "MX", "españa": "ES", "schweiz": "CH",
    "suisse": "CH", "österreich": "AT", "polska": "PL", "sverige": "SE", "norge": "NO", "danmark": "DK",
    "suomi": "FI", "nederland": "NL", "italia": "IT", "ivory coast": "CI", "cote d'ivoire": "CI",
    "hong kong sar": "HK", "macau": "MO", "taiwan, province of china": "TW", "prc": "CN",
    "mainland china": "CN", "eire": "IE", "kingdom of saudi arabia": "SA", "ksa": "SA",
    "korea, republic of": "KR", "iran, islamic republic of": "IR", "russian federation (the)": "RU",
}
_NAME_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt", "sv", "pl", "da", "no", "fi")

SALES_REGION_CODES = ("NA", "LATAM", "EMEA", "APAC")
# Sales regions as sales teams use them. Mexico is both Latin America and North America (LATAM
# first), so a territory of either region takes it. The other ISO countries are EMEA.
_NA = ("US", "CA", "PR", "VI", "UM", "BM", "GL", "PM")
_LATAM = (
    "MX", "GT", "BZ", "SV", "HN", "NI", "CR", "PA", "CU", "DO", "HT", "JM", "BS", "BB", "TT", "AG", "DM",
    "GD", "KN", "LC", "VC", "AI", "AW", "BQ", "CW", "SX", "MF", "BL", "GP", "MQ", "KY", "TC", "VG", "MS",
    "CO", "VE", "EC", "PE", "BO", "BR", "PY", "UY", "AR", "CL", "GY", "SR", "GF", "FK", "GS",
)
_APAC = (
    "AU", "NZ", "JP", "CN", "HK", "MO", "TW", "KR", "KP", "MN", "IN", "PK", "BD", "LK", "NP", "BT", "MV",
    "AF", "SG", "MY", "ID", "PH", "TH", "VN", "KH", "LA", "MM", "BN", "TL", "PG", "FJ", "SB", "VU", "NC",
    "PF", "WS", "TO", "KI", "TV", "NR", "FM", "MH", "PW", "GU", "MP", "AS", "CK", "NU", "TK", "WF", "NF",
    "CX", "CC", "PN", "HM", "IO",
)
_NO_REGION = ("AQ", "BV")
_REGION_ALIASES = {
    "na": "NA", "nam": "NA", "noram": "NA", "north america": "NA", "northern america": "NA",
    "latam": "LATAM", "lac": "LATAM", "latin america": "LATAM", "south america": "LATAM",
    "central america": "LATAM", "caribbean": "LATAM", "latin america and the caribbean": "LATAM",
    "emea": "EMEA", "europe": "EMEA", "eu": "EMEA", "middle east": "EMEA", "africa": "EMEA", "mea": "EMEA",
    "europe, middle east and africa": "EMEA", "europe middle east and africa": "EMEA",
    "apac": "APAC", "apj": "APAC", "asia": "APAC", "asia pacific": "APAC", "asia-pacific": "APAC",
    "oceania": "APAC", "anz": "APAC", "asia/pacific": "APAC",
}


def _key(value: str) -> str:
    """The lookup form of a typed name: case-folded, accents and dots dropped, spaces collapsed."""
    value = unicodedata.normalize("NFKD", value.casefold())
    value = "".join(ch for ch in value if not unicodedata.combining(ch))
    value = value.replace(".", "").replace("’", "'")
    value = re.sub(r"[\s\-_,/()]+", " ", value).strip()
    return value[4:] if value.startswith("the ") else value


@functools.cache
def _iso() -> tuple[dict[str, str], dict[str, str]]:
    """(alpha-2 → English ISO name, alpha-3 → alpha-2) from django-countries' offline ISO list."""
    from django_countries.data import ALT_CODES, COUNTRIES

    names = {code: str(name) for code, name in COUNTRIES.items()}
    alpha3 = {codes[0]: code for code, codes in ALT_CODES.items() if codes[0]}
    return names, alpha3


@functools.cache
def _lookup() -> dict[str, str]:
    """Every spelling we know (in `_key` form) → alpha-2; explicit aliases win over translations."""
    from django_countries.base import CountriesBase
    from phonenumbers.geodata.locale import LOCALE_DATA

    names, alpha3 = _iso()
    table: dict[str, str] = {}
    for raw, code in _ALIASES.items():
        table[_key(raw)] = code
    for code in names:
        table.setdefault(_key(code), code)
    for a3, code in alpha3.items():
        table.setdefault(_key(a3), code)
    for code, name in names.items():
        table.setdefault(_key(name), code)
    for code, name in CountriesBase.COMMON_NAMES.items():
        table.setdefault(_key(str(name)), code)
    for code, old in CountriesBase.OLD_NAMES.items():
        for name in old:
            table.setdefault(_key(str(name)), code)
    for code, by_language in LOCALE_DATA.items():
        if code not in names:
            continue
        for language in _NAME_LANGUAGES:
            name = by_language.get(language, "")
            if name and not name.startswith("*"):
                table.setdefault(_key(name), code)
    return table


def iso_codes() -> list[str]:
    """Every ISO 3166-1 alpha-2 code, sorted."""
    return sorted(_iso()[0])


def country_code(value: object) -> str:
    """The ISO 3166-1 alpha-2 code of a country as typed ("US", "usa", "U.S.A.", "United States",
    "Deutschland", "GBR"), or "" when blank or not a country we know."""
    if not isinstance(value, str):
        return ""
    key = _key(value)
    return _lookup().get(key, "") if key else ""


def country_codes(values: Iterable[object]) -> tuple[list[str], list[str]]:
    """(codes in the given order without repeats, the values that are not countries)."""
    codes: list[str] = []
    unknown: list[str] = []
    for value in values:
        code = country_code(value)
        if not code:
            unknown.append(str(value))
        elif code not in codes:
            codes.append(code)
    return codes, unknown


def country_values_canonical(values: list) -> list:
    """Each value that is a country as its code, any other kept as it is, in order without repeats
    (["United States", "USA", "Narnia"] → ["US", "Narnia"]): for rewriting stored configuration."""
    out: list = []
    for value in values:
        value = (country_code(value) or value) if isinstance(value, str) else value
        if value not in out:
            out.append(value)
    return out


def country_name(code: str) -> str:
    """The English name of an alpha-2 code ("United States of America"); the input when unknown."""
    return _iso()[0].get((code or "").upper(), code or "")


@functools.cache
def _spellings() -> dict[str, frozenset[str]]:
    spellings: dict[str, set[str]] = {}
    for raw, code in _ALIASES.items():
        spellings.setdefault(code, set()).add(raw)
    for key, code in _lookup().items():
        spellings.setdefault(code, set()).add(key)
    names, alpha3 = _iso()
    for code, name in names.items():
        spellings.setdefault(code, set()).update({code.lower(), name.lower()})
    for a3, code in alpha3.items():
        spellings[code].add(a3.lower())
    return {code: frozenset(values) for code, values in spellings.items()}


def country_spellings(code: str) -> frozenset[str]:
    """Lower-case spellings of one country (its code, names, aliases), for matching legacy text."""
    return _spellings().get((code or "").upper(), frozenset({(code or "").lower()}))


@functools.cache
def _regions_by_country() -> dict[str, tuple[str, ...]]:
    regions: dict[str, tuple[str, ...]] = {}
    for code in _iso()[0]:
        if code in _NO_REGION:
            regions[code] = ()
        elif code == "MX":
            regions[code] = ("LATAM", "NA")
        elif code in _NA:
            regions[code] = ("NA",)
        elif code in _LATAM:
            regions[code] = ("LATAM",)
        elif code in _APAC:
            regions[code] = ("APAC",)
        else:
            regions[code] = ("EMEA",)
    return regions


def country_sales_regions(value: object) -> tuple[str, ...]:
    """The sales regions of a country (code or name): ("EMEA",), ("LATAM", "NA") for Mexico, () unknown."""
    return _regions_by_country().get(country_code(value), ())


@functools.cache
def sales_regions() -> dict[str, frozenset[str]]:
    """{NA, LATAM, EMEA, APAC: the alpha-2 codes of each}."""
    sets: dict[str, set[str]] = {name: set() for name in SALES_REGION_CODES}
    for code, regions in _regions_by_country().items():
        for region in regions:
            sets[region].add(code)
    return {name: frozenset(codes) for name, codes in sets.items()}


def region_code(value: object) -> str:
    """A sales region as typed ("emea", "Europe", "Asia Pacific", "NA") → NA, LATAM, EMEA or APAC;
    "" when it is none of them."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    if text.upper() in SALES_REGION_CODES:
        return text.upper()
    return _REGION_ALIASES.get(text.casefold(), _REGION_ALIASES.get(_key(text), ""))
