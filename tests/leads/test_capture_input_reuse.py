"""Capture validation reuses one serializer per thread: nothing of one submission leaks into the next, in
the same thread or side by side in others."""
from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError

from leads.capture_input import capture_input_validate


def test_an_error_or_a_value_of_one_submission_never_reaches_the_next():
    with pytest.raises(ValidationError) as bad:
        capture_input_validate(data={"email": "not-an-email", "first_name": "Ann"})
    assert "email" in bad.value.message_dict
    good = capture_input_validate(data={"email": "bo@example.com"})
    assert good.email == "bo@example.com" and not good.values.get("first_name")


def test_threads_validating_side_by_side_keep_their_own_results():
    results, errors = {}, []

    def validate(n):
        try:
            for i in range(200):
                email = f"t{n}-{i}@example.com"
                assert capture_input_validate(data={"email": email, "last_name": f"L{n}"}).email == email
            results[n] = True
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=validate, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 4
