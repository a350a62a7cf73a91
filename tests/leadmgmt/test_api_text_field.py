"""A string field of a request body holds its schema's maxLength for the string as sent (DRF trims first, so a
note padded with trailing spaces past its limit was taken, against the published schema)."""
from __future__ import annotations

from rest_framework import serializers

from leadmgmt.api import SlugTextField, TextField


class NoteIn(serializers.Serializer):
    note = TextField(max_length=5, required=False, allow_blank=True)
    key = SlugTextField(max_length=5, required=False)


def test_a_string_longer_than_max_length_as_sent_is_refused_even_if_it_trims_to_fit():
    form = NoteIn(data={"note": "abc\u00a0\u00a0\u00a0"})
    assert not form.is_valid()
    assert form.errors["note"] == ["Ensure this field has no more than 5 characters."]
    assert not NoteIn(data={"key": "ab   "[:5] + " "}).is_valid()


def test_a_string_within_max_length_is_trimmed_as_before():
    form = NoteIn(data={"note": " abc "})
    assert form.is_valid(), form.errors
    assert form.validated_data["note"] == "abc"
    assert not NoteIn(data={"note": 12}).is_valid()
