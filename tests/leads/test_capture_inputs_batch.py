"""A batch of submissions (an import's chunk) is validated exactly as each submission alone: the answers a batch
remembers for repeated values never change a result or an error, whatever the order."""
from __future__ import annotations

import random

from django.core.exceptions import ValidationError

from leads.capture_input import capture_input_validate, capture_inputs_validate

SUBMISSIONS = [
    {"email": "Ann@Example.com", "first_name": " Ann ", "country": "Germany", "phone": "030 1234567"},
    {"email": "bo@example.com", "country": "US", "phone": "030 1234567"},  # the same phone, another region
    {"email": "cy@example.com", "phone": "030 1234567"},  # and no region at all
    {"email": "not-an-email", "first_name": "Ann"},
    {"email": "not-an-email", "first_name": "Bo"},  # the same refused email again: the same message
    {"first_name": "No contact"},  # neither an email nor a phone: both fields refused
    {"name": "Dee Doe", "email": "dee@gmail.com", "company": "Acme", "website": "https://www.acme.example/x"},
    {"name": "Dee Doe", "email": "dee2@gmail.com", "company": "Acme"},
    {"name": "x" * 300, "email": "long@example.com"},  # a name too long to split
    {"email": "ed@example.com", "company_size": "51-200", "marketing_consent": "yes", "country": "Narnia"},
    {"email": "fi@example.com", "company_size": "lots", "marketing_consent": "maybe"},
    {"email": "gu@example.com", "country": "united kingdom", "attributes": {"Plan": "pro", "region": "Europe"}},
    {"email": "ha@example.com", "job_title": "CEO\x00"},  # a NUL refused
    {"email": "ha2@example.com", "job_title": "CEO", "Email Address": "other@example.com"},
    {"phone": "+1 415 555 0100"},
    {"phone": "+1 415 555 0100", "country": "France"},
    {"phone": "not a phone"},
    {"email": "ivy@example.com", "first_name": ["a", "list"]},  # not text: never remembered, still refused
    {"email": "jo@example.com", "company_domain": "jo-corp.example", "source": "Trade show"},
]


def _answer(result):
    if isinstance(result, ValidationError):
        return ("refused", result.message_dict)
    return ("valid", result.email, result.values, result.attributes, result.company_domain, result.is_personal_email,
            result.page_url)


def _alone(data):
    try:
        return _answer(capture_input_validate(data=data))
    except ValidationError as exc:
        return _answer(exc)


def test_a_batch_answers_each_submission_as_it_is_answered_alone():
    expected = [_alone(data) for data in SUBMISSIONS]
    assert [_answer(result) for result in capture_inputs_validate(items=SUBMISSIONS)] == expected
    rng = random.Random(7)
    for _ in range(5):
        order = list(range(len(SUBMISSIONS))) * 2
        rng.shuffle(order)
        batch = capture_inputs_validate(items=[SUBMISSIONS[i] for i in order])
        assert [_answer(result) for result in batch] == [expected[i] for i in order]
