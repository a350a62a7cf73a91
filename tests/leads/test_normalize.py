"""Normalising form input: domains, emails, phones, countries, company sizes, consent, text."""
import pytest
from django.core.exceptions import ValidationError

from leads.freemail import is_free_mail_domain
from leads.normalize import (
    consent_parse,
    country_region,
    domain_canonicalize,
    email_normalize,
    employee_count_parse,
    name_split,
    phone_normalize,
    text_clean,
)


@pytest.mark.parametrize(
    "raw",
    ["https://www.Acme.com/", "ACME.com:443/path", "www.acme.com", "acme.com", "http://user@acme.com:8080/x?y#z",
     " acme.com. ", "ＡＣＭＥ.com"],
)
def test_domain_canonicalize_gives_one_form(raw):
    assert domain_canonicalize(raw) == "acme.com"


def test_domain_canonicalize_idn_unicode_and_punycode_are_one():
    assert domain_canonicalize("bücher.example") == "xn--bcher-kva.example"
    assert domain_canonicalize("https://www.BÜCHER.example/shop") == "xn--bcher-kva.example"
    assert domain_canonicalize("xn--bcher-kva.example") == "xn--bcher-kva.example"


@pytest.mark.parametrize("raw", ["localhost", "not a domain", "acme..com", "-acme.com", "127.0.0.1", "http://[::1]/", "a_b.com"])
def test_domain_canonicalize_refuses_what_is_not_a_domain(raw):
    with pytest.raises(ValidationError):
        domain_canonicalize(raw)


def test_domain_canonicalize_blank_is_blank():
    assert domain_canonicalize("  ") == ""


def test_email_is_trimmed_lower_cased_and_idn_domain_ascii():
    assert email_normalize("  Ada.Lovelace@Example.COM ") == "ada.lovelace@example.com"
    assert email_normalize("jurgen@Bücher.example") == "jurgen@xn--bcher-kva.example"
    assert email_normalize("mailto:ada@example.com") == "ada@example.com"
    assert email_normalize("") == ""


@pytest.mark.parametrize("raw", ["ada", "ada@", "@example.com", "ada@localhost", "ada@exa mple.com", "a@b@c.com",
                                 "ada@example..com", "x" * 250 + "@example.com"])
def test_malformed_emails_are_refused(raw):
    with pytest.raises(ValidationError):
        email_normalize(raw)


def test_phone_is_e164_with_default_region_or_country():
    assert phone_normalize("(415) 555-0123") == "+14155550123"
    assert phone_normalize("+44 20 7946 0958") == "+442079460958"
    assert phone_normalize("030 1234567", region="DE") == "+49301234567"
    assert phone_normalize("") == ""


def test_phone_that_cannot_be_placed_is_kept_as_typed_and_garbage_refused():
    assert phone_normalize("0 12 34 56", region="US") == "0 12 34 56"
    for garbage in ["call me maybe", "12", "555-CALL-NOW", "1" * 30]:
        with pytest.raises(ValidationError):
            phone_normalize(garbage)


@pytest.mark.parametrize(
    "raw, region",
    [("DE", "DE"), ("de", "DE"), ("Germany", "DE"), ("Deutschland", "DE"), ("United States", "US"), ("USA", "US"),
     ("UK", "GB"), ("United Kingdom", "GB"), ("France", "FR"), ("Atlantis", None), ("", None)],
)
def test_country_region(raw, region):
    assert country_region(raw) == region


@pytest.mark.parametrize(
    "raw, count",
    [("100-499", 100), ("500+", 500), ("1,200", 1200), ("1.200", 1200), (250, 250), ("10k+", 10000), ("1.5k", 1500),
     ("5,000 - 10,000", 5000), ("<50", 1), ("Under 10", 1), ("100 to 499 employees", 100), ("", None), (None, None)],
)
def test_employee_count_parse(raw, count):
    assert employee_count_parse(raw) == count


@pytest.mark.parametrize("raw", ["lots", "-5", True, [1], "99999999999"])
def test_employee_count_refuses_nonsense(raw):
    with pytest.raises(ValidationError):
        employee_count_parse(raw)


@pytest.mark.parametrize("raw", ["on", "true", "1", "yes", "YES", True, 1, ["0", "on"]])
def test_consent_true_values(raw):
    assert consent_parse(raw) is True


@pytest.mark.parametrize("raw", ["off", "false", "0", "no", "", None, False, 0, ["0"]])
def test_consent_false_values(raw):
    assert consent_parse(raw) is False


def test_consent_refuses_other_values():
    with pytest.raises(ValidationError):
        consent_parse("maybe")


def test_text_clean_strips_control_characters_and_refuses_nul():
    assert text_clean("  Ada\x07 \x1b[31m Lovelace\u202e  ") == "Ada [31m Lovelace"
    assert text_clean("Zoë\u0301") == "Zoë\u0301"  # NFC keeps an already-composed ë, the combining accent stays
    assert text_clean("e\u0301") == "é"
    assert text_clean("line one\r\nline\x01 two", multiline=True) == "line one\nline two"
    with pytest.raises(ValidationError, match="Null characters"):
        text_clean("Ada\x00")


def test_name_split():
    assert name_split("Ada Lovelace King") == ("Ada", "Lovelace King")
    assert name_split("Ada") == ("Ada", "")


@pytest.mark.parametrize("domain", ["gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com",
                                    "proton.me", "yahoo.co.uk", "hotmail.fr", "gmx.de", "mailinator.com"])
def test_free_mail_domains(domain):
    assert is_free_mail_domain(domain)


@pytest.mark.parametrize("domain", ["acme.com", "live.acme.com", "outlook-consulting.com", "gmailer.io", ""])
def test_company_domains_are_not_free_mail(domain):
    assert not is_free_mail_domain(domain)
