"""Bad nurture input is refused at save with the message beside the field (issue 6, "Bad input"): a
template with a syntax error or an unknown merge field, a negative delay, a sequence with no steps being
activated; plus the condition and audience checks. Through the admin as marketing ops, and through
`full_clean()`."""
from __future__ import annotations

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.test import Client
from django.urls import reverse

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Role
from nurture.models import Sequence, SequenceStatus, Step
from nurture.validation import NO_STEPS_MESSAGE, sequence_problems, step_problems
from routing.defaults import routing_defaults_create
from scoring.services import scoring_default_model_create
from tests.support.factories import MembershipFactory, UserFactory
from tests.support.nurture import SequenceFactory, StepFactory

pytestmark = pytest.mark.django_db

GOOD_SUBJECT = 'Hello {{ first_name|default:"there" }}'
GOOD_BODY = "Hi {{ first_name }},\n\nA short note from {{ tenant_name }}.\n\n{{ owner_name }}"


# --- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def configured(tenant):
    """The tenant's published scoring model (band keys) and rejection taxonomy (reason codes)."""
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    return tenant


@pytest.fixture
def ops(configured):
    user = UserFactory()
    MembershipFactory(tenant=configured, user=user, role=Role.MARKETING_OPS)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


def step_row(position=1, **values) -> dict:
    row = {"position": position, "delay_days": 0, "delay_hours": 0, "subject": GOOD_SUBJECT, "body": GOOD_BODY,
           "condition": "always", "condition_score": "", "when_false": "skip", "goto_position": ""}
    row.update(values)
    return row


def sequence_post(client, data=None, steps=(), obj=None):
    """POST the sequence admin form with its step inline (existing steps carry their `id`)."""
    post = {"name": "Webinar follow-up", "goal": "Qualify to MQL", "kind": "other", "status": "draft",
            "priority": 100, "ready_score": 41, "audience_classes": ["nurture"], "audience_sources": ""}
    post.update(data or {})
    existing = [s for s in steps if s.get("id")]
    post.update({"steps-TOTAL_FORMS": str(len(steps)), "steps-INITIAL_FORMS": str(len(existing)),
                 "steps-MIN_NUM_FORMS": "0", "steps-MAX_NUM_FORMS": "1000"})
    for i, row in enumerate(steps):
        for key, value in row.items():
            post[f"steps-{i}-{key}"] = value
        if obj is not None:
            post[f"steps-{i}-sequence"] = obj.pk
    url = reverse("admin:nurture_sequence_change", args=[obj.pk]) if obj else reverse("admin:nurture_sequence_add")
    return client.post(url, post)


def errors_of(response) -> dict:
    assert response.status_code == 200, "a refused save shows the form again"
    errors = {f"sequence.{k}": list(v) for k, v in response.context["adminform"].form.errors.items()}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        errors["steps"] = list(formset.non_form_errors())
        for i, form_errors in enumerate(formset.errors):
            for field, messages in form_errors.items():
                errors[f"step{i}.{field}"] = list(messages)
    return errors


# --- the bad input, through the admin ---------------------------------------------------------


def test_a_valid_sequence_with_steps_is_saved_active_and_audited(tenant, ops):
    response = sequence_post(ops, {"status": "active"}, steps=[step_row(1), step_row(2, delay_days=3)])

    assert response.status_code == 302, errors_of(response)
    sequence = Sequence.objects.unscoped().get(tenant=tenant, name="Webinar follow-up")
    assert sequence.status == SequenceStatus.ACTIVE and sequence.audience_classes == ["nurture"]
    steps = list(Step.objects.unscoped().filter(sequence=sequence).order_by("position"))
    assert [(s.position, s.delay_days, s.tenant_id) for s in steps] == [(1, 0, tenant.pk), (2, 3, tenant.pk)]
    audited = AuditEvent.objects.unscoped().filter(tenant=tenant)
    assert audited.filter(action="nurture_sequence.created", object_id=str(sequence.pk)).exists()
    assert audited.filter(action="nurture_step.created").count() == 2


def test_a_template_syntax_error_is_refused_beside_the_body_and_nothing_is_saved(tenant, ops):
    response = sequence_post(ops, steps=[step_row(1, body="Hi {% if first_name %}{{ first_name }}")])

    errors = errors_of(response)
    assert any("syntax" in m.lower() or "endif" in m for m in errors["step0.body"]), errors
    assert not Sequence.objects.unscoped().filter(tenant=tenant, name="Webinar follow-up").exists()


def test_an_unknown_merge_field_is_refused_beside_the_subject(tenant, ops):
    response = sequence_post(ops, steps=[step_row(1, subject="Hello {{ nickname }}")])

    errors = errors_of(response)
    assert any("Unknown merge field “nickname”" in m for m in errors["step0.subject"]), errors
    assert not Step.objects.unscoped().filter(tenant=tenant).exists()


def test_a_negative_delay_is_refused_beside_the_delay(tenant, ops):
    response = sequence_post(ops, steps=[step_row(1), step_row(2, delay_days=-2)])

    errors = errors_of(response)
    assert any("cannot be negative" in m for m in errors["step1.delay_days"]), errors
    assert not Sequence.objects.unscoped().filter(tenant=tenant).exists()


def test_adding_an_active_sequence_without_steps_is_refused(tenant, ops):
    response = sequence_post(ops, {"status": "active"}, steps=[])

    assert errors_of(response)["steps"] == [NO_STEPS_MESSAGE]
    assert not Sequence.objects.unscoped().filter(tenant=tenant).exists()


def test_activating_a_draft_without_steps_is_refused_and_it_stays_a_draft(tenant, ops):
    draft = SequenceFactory(tenant=tenant, name="Empty", status=SequenceStatus.DRAFT)

    response = sequence_post(ops, {"name": "Empty", "status": "active"}, steps=[], obj=draft)

    assert errors_of(response)["steps"] == [NO_STEPS_MESSAGE]
    draft.refresh_from_db()
    assert draft.status == SequenceStatus.DRAFT


def test_deleting_the_last_step_of_an_active_sequence_is_refused(tenant, ops):
    sequence = SequenceFactory(tenant=tenant, name="Live")
    step = StepFactory(sequence=sequence, tenant=tenant, position=1)
    row = step_row(1, id=step.pk, subject=step.subject, body=step.body, DELETE="on")

    response = sequence_post(ops, {"name": "Live", "status": "active"}, steps=[row], obj=sequence)

    assert errors_of(response)["steps"] == [NO_STEPS_MESSAGE]
    assert Step.objects.unscoped().filter(pk=step.pk).exists()


def test_activating_a_draft_while_adding_its_first_step_is_fine(tenant, ops):
    draft = SequenceFactory(tenant=tenant, name="Growing", status=SequenceStatus.DRAFT)

    response = sequence_post(ops, {"name": "Growing", "status": "active"}, steps=[step_row(1)], obj=draft)

    assert response.status_code == 302, errors_of(response)
    draft.refresh_from_db()
    assert draft.status == SequenceStatus.ACTIVE
    assert Step.objects.unscoped().filter(sequence=draft).count() == 1


def test_step_conditions_are_checked_against_the_other_steps(tenant, ops):
    response = sequence_post(ops, steps=[
        step_row(1, condition="opened_previous"),
        step_row(2, condition="score_at_least"),
        step_row(3, condition="clicked_previous", when_false="goto", goto_position=7),
        step_row(4, when_false="goto", goto_position=2),
    ])

    errors = errors_of(response)
    assert "first step has no previous email" in errors["step0.condition"][0]
    assert "Enter N" in errors["step1.condition_score"][0]
    assert "no step at position 7" in errors["step2.goto_position"][0]
    assert "later step" in errors["step3.goto_position"][0]
    assert not Sequence.objects.unscoped().filter(tenant=tenant).exists()


def test_two_steps_at_one_position_is_a_message_not_a_500(tenant, ops):
    response = sequence_post(ops, steps=[step_row(1), step_row(1)])

    assert "already has position 1" in errors_of(response)["step1.position"][0]


def test_swapping_two_steps_in_one_save_works(tenant, ops):
    sequence = SequenceFactory(tenant=tenant, name="Swap")
    first = StepFactory(sequence=sequence, tenant=tenant, position=1, subject="First")
    second = StepFactory(sequence=sequence, tenant=tenant, position=2, subject="Second")

    response = sequence_post(ops, {"name": "Swap", "status": "active"}, obj=sequence, steps=[
        step_row(2, id=first.pk, subject="First", body=first.body),
        step_row(1, id=second.pk, subject="Second", body=second.body)])

    assert response.status_code == 302, errors_of(response)
    order = list(Step.objects.unscoped().filter(sequence=sequence).order_by("position").values_list("subject", flat=True))
    assert order == ["Second", "First"]


def test_audience_values_the_tenant_does_not_have_are_named_beside_their_fields(tenant, ops):
    response = sequence_post(ops, {"audience_bands": ["warm", "scorching"], "audience_rejection_reasons": ["not_now",
                                                                                                           "bored"],
                                   "audience_stages": ["raw", "limbo"], "ready_score": 140}, steps=[step_row(1)])

    errors = errors_of(response)
    assert "“scorching”" in errors["sequence.audience_bands"][0] and "warm" in errors["sequence.audience_bands"][0]
    assert "“bored”" in errors["sequence.audience_rejection_reasons"][0]
    assert "“limbo”" in errors["sequence.audience_stages"][0]
    assert errors["sequence.ready_score"]
    assert not Sequence.objects.unscoped().filter(tenant=tenant).exists()


def test_a_second_sequence_with_the_same_name_is_a_message_beside_the_name(tenant, ops):
    SequenceFactory(tenant=tenant, name="Webinar follow-up")

    response = sequence_post(ops, steps=[step_row(1)])

    assert "already exists" in errors_of(response)["sequence.name"][0]


# --- the same rules through full_clean() ---------------------------------------------------------------


def refused(obj) -> dict[str, list[str]]:
    with tenant_scope(obj.tenant), pytest.raises(ValidationError) as caught:
        obj.full_clean()
    return caught.value.message_dict


def test_full_clean_refuses_a_template_syntax_error_and_an_unknown_field(tenant):
    sequence = SequenceFactory(tenant=tenant, status=SequenceStatus.DRAFT)
    step = Step(tenant=tenant, sequence=sequence, position=1, subject="Hi {{ first_name ", body="{{ shoe_size }}")

    errors = refused(step)

    assert errors["subject"] and "shoe_size" in errors["body"][0]


def test_full_clean_refuses_a_negative_delay(tenant):
    sequence = SequenceFactory(tenant=tenant, status=SequenceStatus.DRAFT)
    step = Step(tenant=tenant, sequence=sequence, position=1, subject=GOOD_SUBJECT, body=GOOD_BODY, delay_hours=-3)

    assert "cannot be negative" in refused(step)["delay_hours"][0]


def test_full_clean_refuses_activating_a_sequence_without_steps(tenant):
    sequence = SequenceFactory(tenant=tenant, status=SequenceStatus.DRAFT)
    sequence.status = SequenceStatus.ACTIVE

    assert refused(sequence)["status"] == [NO_STEPS_MESSAGE]

    StepFactory(sequence=sequence, tenant=tenant, position=1)
    with tenant_scope(tenant):
        sequence.full_clean()  # with a step it may be active


def test_full_clean_checks_a_step_against_the_saved_steps_of_its_sequence(tenant):
    sequence = SequenceFactory(tenant=tenant, status=SequenceStatus.DRAFT)
    StepFactory(sequence=sequence, tenant=tenant, position=1)
    goto_missing = Step(tenant=tenant, sequence=sequence, position=2, subject=GOOD_SUBJECT, body=GOOD_BODY,
                        condition="opened_previous", when_false="goto", goto_position=5)

    assert "no step at position 5" in refused(goto_missing)["goto_position"][0]

    first = Step(tenant=tenant, sequence=SequenceFactory(tenant=tenant, status=SequenceStatus.DRAFT), position=1,
                 subject=GOOD_SUBJECT, body=GOOD_BODY, condition="not_clicked_previous")
    assert "first step" in refused(first)["condition"][0]


def test_full_clean_refuses_audience_values_unknown_to_the_tenant(configured):
    sequence = SequenceFactory.build(tenant=configured, name="Audience", status=SequenceStatus.DRAFT,
                                     audience_classes=["hot_prospect"], audience_statuses=["sleeping"],
                                     audience_bands=["mql", "lukewarm"], audience_rejection_reasons=["not_now"])

    errors = refused(sequence)

    assert set(errors) == {"audience_classes", "audience_statuses", "audience_bands"}
    assert "“lukewarm”" in errors["audience_bands"][0]


def test_sequence_problems_reports_each_step_of_a_sequence_being_activated(configured):
    sequence = SequenceFactory(tenant=configured, status=SequenceStatus.ACTIVE)
    good = StepFactory.build(tenant=configured, sequence=sequence, position=1)
    bad = StepFactory.build(tenant=configured, sequence=sequence, position=2, subject="{{ first_name|slugify }}")

    problems = sequence_problems(sequence, [good, bad])

    assert list(problems) == ["steps"] and problems["steps"][0].startswith("Step 2 (subject): Filter “slugify”")
    assert sequence_problems(sequence, [good]) == {}


def test_step_problems_is_empty_for_a_good_step_and_skips_sibling_checks_without_positions(tenant):
    step = StepFactory.build(tenant=tenant, position=2, condition="opened_previous", when_false="goto",
                             goto_position=4)

    assert step_problems(step) == {}
    assert set(step_problems(step, positions=[2])) == {"goto_position", "condition"}


def test_a_sequence_clean_reports_step_problems_as_non_field_errors(tenant):
    sequence = SequenceFactory(tenant=tenant, status=SequenceStatus.ACTIVE)
    Step.objects.unscoped().create(tenant=tenant, sequence=sequence, position=1, subject="{{ nope }}", body="x")

    errors = refused(sequence)

    assert "Step 1 (subject)" in errors[NON_FIELD_ERRORS][0]
