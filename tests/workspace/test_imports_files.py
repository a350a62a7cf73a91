"""Reading an import's CSV file: encoding, delimiter, header row, limits, and the suggested and validated mapping."""
from __future__ import annotations

import codecs

import pytest
from django.core.exceptions import ValidationError

from workspace.services.import_files import (
    ImportFileRefused,
    data_rows,
    file_detect,
    headers_key,
    mapping_suggest,
    mapping_validate,
)


def rows_of(content: bytes) -> list[tuple[int, list[str]]]:
    found = file_detect(content=content)
    return list(data_rows(content=content, encoding=found.encoding, delimiter=found.delimiter,
                          has_header=found.has_header))


def test_utf8_with_a_bom_is_read_without_the_bom_in_the_first_header():
    content = codecs.BOM_UTF8 + "Email,Prénom\nana@acme.example,Zoë\n".encode()
    found = file_detect(content=content)
    assert (found.encoding, found.delimiter, found.has_header) == ("utf-8-sig", ",", True)
    assert found.headers == ["Email", "Prénom"] and found.row_count == 1
    assert rows_of(content) == [(2, ["ana@acme.example", "Zoë"])]


def test_latin1_accents_are_decoded_as_windows_1252():
    content = "E-mail;Société;Ville\nfrancois@acme.example;Crème Brûlée SA;Besançon\n".encode("latin-1")
    found = file_detect(content=content)
    assert (found.encoding, found.delimiter) == ("cp1252", ";")
    assert rows_of(content) == [(2, ["francois@acme.example", "Crème Brûlée SA", "Besançon"])]


def test_plain_utf8_semicolons_tabs_and_pipes_are_detected():
    assert file_detect(content="email,first_name\na@x.example,Ä\n".encode()).encoding == "utf-8"
    assert file_detect(content=b"email;phone;company\na@x.example;+1 555 0100;Acme\nb@x.example;;Beta\n"
                       ).delimiter == ";"
    assert file_detect(content=b"email\tcompany\tcity\na@x.example\tAcme, Inc.\tParis\n").delimiter == "\t"
    assert file_detect(content=b"email|company|city\na@x.example|Acme|Oslo\nb@x.example|Beta|Rome\n").delimiter == "|"


def test_a_file_without_a_header_row_gets_numbered_columns():
    content = b"ana@acme.example,Ana,Lopez\nbo@beta.example,Bo,Berg\n"
    found = file_detect(content=content)
    assert not found.has_header and found.headers == ["Column 1", "Column 2", "Column 3"] and found.row_count == 2
    assert [line for line, _cells in rows_of(content)] == [1, 2]


def test_line_numbers_count_physical_lines_blank_lines_and_multiline_cells():
    content = b'email,notes\n\na@x.example,"two\nlines"\nb@x.example,one\n'
    assert rows_of(content) == [(3, ["a@x.example", "two\nlines"]), (5, ["b@x.example", "one"])]


def test_limits_are_refused_with_a_clear_message(settings):
    settings.IMPORT_MAX_BYTES = 100
    with pytest.raises(ImportFileRefused) as too_big:
        file_detect(content=b"email\n" + b"a@x.example\n" * 20)
    assert too_big.value.status == 413 and "limited to 100 bytes" in too_big.value.message_dict["file"][0]
    settings.IMPORT_MAX_BYTES = 10_000
    settings.IMPORT_MAX_ROWS = 3
    with pytest.raises(ImportFileRefused) as too_many:
        file_detect(content=b"email\n" + b"a@x.example\n" * 4)
    assert too_many.value.status == 400 and "more than 3 rows" in too_many.value.message_dict["file"][0]
    assert file_detect(content=b"email\n" + b"a@x.example\n" * 3).row_count == 3
    for empty in (b"", b"email\n", b"\x00\x01binary"):
        with pytest.raises(ImportFileRefused):
            file_detect(content=empty)


def test_mapping_suggests_standard_import_and_custom_fields():
    headers = ["E-mail Address", "First Name", "Surname", "Mobile", "Organisation", "Lead Owner", "Lifecycle Stage",
               "Lead Status", "CRM Id", "Created Date", "Opt In", "Consent Date", "Lead Source", "Favourite Colour",
               "email"]
    assert mapping_suggest(headers) == [
        "email", "first_name", "last_name", "phone", "company", "owner_email", "stage", "status", "external_id",
        "created_at", "marketing_consent", "consent_at", "source", "attributes.favourite_colour", "attributes.email"]


def test_mapping_validation_names_the_faulty_columns():
    headers = ["Email", "Mail 2", "Colour", "Phone"]
    assert mapping_validate(headers=headers, mapping=["email", "", "attributes.colour", "phone"]) == [
        "email", "", "attributes.colour", "phone"]
    with pytest.raises(ValidationError) as bad:
        mapping_validate(headers=headers, mapping=["email", "email", "favourite", "attributes."])
    errors = bad.value.message_dict
    assert "'Email' and 'Mail 2' are both mapped to 'email'" in errors["mapping.1"][0]
    assert errors["mapping.2"] == ["Column 'Colour': unknown field 'favourite'."]
    assert "custom attribute needs a name" in errors["mapping.3"][0]
    with pytest.raises(ValidationError) as no_contact:
        mapping_validate(headers=headers, mapping=["first_name", "", "", ""])
    assert "email or to phone" in no_contact.value.message_dict["mapping"][0]
    with pytest.raises(ValidationError) as wrong_length:
        mapping_validate(headers=headers, mapping=["email"])
    assert "a list of 4" in wrong_length.value.message_dict["mapping"][0]


def test_headers_key_ignores_case_and_punctuation_but_not_order():
    assert headers_key(["E-mail", "First Name"]) == headers_key(["e_mail", "first name"])
    assert headers_key(["E-mail", "First Name"]) != headers_key(["First Name", "E-mail"])
