"""Nurture admin: marketing ops edit sequences (with steps, merge-field help and previews), settings and the
suppression list; enrolments and messages are read-only but can be stopped; other roles are refused;
another tenant's rows are not there; lists stay within a fixed number of queries; every save is audited."""
from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from nurture.models import (
    Enrollment,
    EnrollmentStatus,
    ExitReason,
    Message,
    NurtureSettings,
    Sequence,
    SequenceStatus,
    Step,
    Suppression,
    SuppressionReason,
)
from nurture.services.enrollment import lead_enroll
from scoring.services import scoring_default_model_create
from tests.support.factories import MembershipFactory, TenantFactory, UserFactory
from tests.support.nurture import (
    NurtureLeadFactory,
    NurtureSettingsFactory,
    SequenceFactory,
    StepFactory,
    sequence_with_steps,
)

pytestmark = pytest.mark.django_db


def staff(tenant, role) -> Client:
    user = UserFactory()
    MembershipFactory(tenant=tenant, user=user, role=role)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def ops(tenant):
    return staff(tenant, Role.MARKETING_OPS)


def url(model, view="changelist", *args) -> str:
    return reverse(f"admin:nurture_{model._meta.model_name}_{view}", args=args)


def enrolled(tenant, sequence, n=1) -> list[Enrollment]:
    return [lead_enroll(lead=NurtureLeadFactory(tenant=tenant), sequence=sequence, actor=SYSTEM) for _ in range(n)]


# --- sequences ---------------------------------------------------------------------------------------


def test_marketing_ops_see_their_sequences_with_step_and_active_enrolment_counts(tenant, ops):
    sequence = sequence_with_steps(tenant=tenant, steps=3, name="Webinar follow-up")
    enrolled(tenant, sequence, n=2)

    response = ops.get(url(Sequence))

    assert response.status_code == 200
    row = response.context["cl"].result_list.get(pk=sequence.pk)
    assert (row._steps, row._active) == (3, 2)
    assert "Webinar follow-up" in response.content.decode()


def test_the_sequence_page_lists_the_merge_fields_and_previews_each_step_for_a_sample_lead(tenant, ops):
    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    sequence = sequence_with_steps(tenant=tenant, steps=1, name="Preview me")
    Step.objects.unscoped().filter(sequence=sequence).update(
        subject="Hello {{ first_name }} at {{ company }}", body="From {{ owner_name }} of {{ tenant_name }}")

    page = ops.get(url(Sequence, "change", sequence.pk)).content.decode()

    assert "Merge fields for subjects and bodies" in page
    assert "{{ unsubscribe_url }}" in page and "{{ owner_name }}" in page
    assert "Hello Jane at Northwind Analytics" in page
    assert f"From Alex Morgan of {tenant.name}" in page
    assert "MQL (41–60)" in page, "audience bands are offered by name and range from the published scoring model"


def test_editing_a_step_saves_it_and_audits_the_change(tenant, ops):
    sequence = sequence_with_steps(tenant=tenant, steps=1, name="Edit me")
    step = Step.objects.unscoped().get(sequence=sequence)
    post = {"name": "Edit me", "goal": "", "kind": "new_lead", "status": "active", "priority": 5, "ready_score": 41,
            "audience_classes": ["nurture"], "audience_sources": "webinar, content",
            "steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "1", "steps-MIN_NUM_FORMS": "0",
            "steps-MAX_NUM_FORMS": "1000", "steps-0-id": step.pk, "steps-0-sequence": sequence.pk,
            "steps-0-position": 1, "steps-0-delay_days": 2, "steps-0-delay_hours": 0,
            "steps-0-subject": "A new subject for {{ first_name|default:\"you\" }}", "steps-0-body": step.body,
            "steps-0-condition": "always", "steps-0-when_false": "skip"}

    response = ops.post(url(Sequence, "change", sequence.pk), post)

    assert response.status_code == 302
    step.refresh_from_db()
    sequence.refresh_from_db()
    assert step.subject.startswith("A new subject") and step.delay_days == 2
    assert sequence.priority == 5 and sequence.audience_sources == ["webinar", "content"]
    audited = AuditEvent.objects.unscoped().filter(tenant=tenant)
    assert audited.filter(action="nurture_step.updated", object_id=str(step.pk)).exists()
    assert audited.get(action="nurture_sequence.updated", object_id=str(sequence.pk)).changes["priority"] == [100, 5]


def test_a_sequence_without_enrolments_can_be_deleted_and_the_delete_is_audited(tenant, ops):
    sequence = sequence_with_steps(tenant=tenant, steps=2, name="Old", status=SequenceStatus.DRAFT)

    response = ops.post(url(Sequence, "delete", sequence.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Sequence.objects.unscoped().filter(pk=sequence.pk).exists()
    assert AuditEvent.objects.unscoped().filter(action="nurture_sequence.deleted", object_id=str(sequence.pk)).exists()


def test_activate_refuses_a_sequence_without_steps_and_activates_the_others(tenant, ops):
    empty = SequenceFactory(tenant=tenant, name="Empty", status=SequenceStatus.DRAFT)
    ready = sequence_with_steps(tenant=tenant, steps=2, name="Ready", status=SequenceStatus.DRAFT)

    response = ops.post(url(Sequence), {"action": "activate", "_selected_action": [empty.pk, ready.pk]}, follow=True)

    texts = [str(m) for m in response.context["messages"]]
    assert any("“Empty” was not activated" in t and "at least one step" in t for t in texts), texts
    assert any(t.startswith("Activated: Ready") for t in texts), texts
    empty.refresh_from_db()
    ready.refresh_from_db()
    assert (empty.status, ready.status) == (SequenceStatus.DRAFT, SequenceStatus.ACTIVE)
    assert AuditEvent.objects.unscoped().filter(action="nurture_sequence.updated", object_id=str(ready.pk),
                                                changes={"status": ["draft", "active"]}).exists()


def test_activate_refuses_a_sequence_whose_saved_step_is_broken(tenant, ops):
    broken = sequence_with_steps(tenant=tenant, steps=1, name="Broken", status=SequenceStatus.PAUSED)
    Step.objects.unscoped().filter(sequence=broken).update(subject="{{ shoe_size }}")

    response = ops.post(url(Sequence), {"action": "activate", "_selected_action": [broken.pk]}, follow=True)

    assert any("Step 1 (subject): Unknown merge field “shoe_size”" in str(m) for m in response.context["messages"])
    broken.refresh_from_db()
    assert broken.status == SequenceStatus.PAUSED


def test_pause_stops_a_sequence_and_is_audited(tenant, ops):
    sequence = sequence_with_steps(tenant=tenant, steps=1, name="Running")

    ops.post(url(Sequence), {"action": "pause", "_selected_action": [sequence.pk]})

    sequence.refresh_from_db()
    assert sequence.status == SequenceStatus.PAUSED
    assert AuditEvent.objects.unscoped().filter(action="nurture_sequence.updated", object_id=str(sequence.pk)).exists()


def test_the_sequence_list_stays_within_a_fixed_number_of_queries(tenant, ops, django_assert_max_num_queries):
    def grow(n):
        for i in range(n):
            sequence = sequence_with_steps(tenant=tenant, steps=3, name=f"Bulk {Sequence.objects.unscoped().count()}-{i}")
            enrolled(tenant, sequence, n=2)

    grow(2)
    with django_assert_max_num_queries(12) as few:
        assert ops.get(url(Sequence)).status_code == 200
    grow(10)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert ops.get(url(Sequence)).status_code == 200


def test_another_tenants_sequence_is_not_listed_opened_changed_or_deleted(tenant, ops):
    other = TenantFactory(slug="globex")
    theirs = sequence_with_steps(tenant=other, steps=1, name="Globex secret")
    mine = sequence_with_steps(tenant=tenant, steps=1, name="Mine")

    listed = ops.get(url(Sequence)).context["cl"].result_list
    assert list(listed.values_list("pk", flat=True)) == [mine.pk]
    for view in ("change", "history", "delete"):
        response = ops.get(url(Sequence, view, theirs.pk), follow=True)
        assert "doesn’t exist" in response.content.decode() and "Globex secret" not in response.content.decode()
    ops.post(url(Sequence, "change", theirs.pk), {"name": "Hijacked", "status": "paused"})
    ops.post(url(Sequence), {"action": "pause", "_selected_action": [theirs.pk]})
    ops.post(url(Sequence), {"action": "delete_selected", "_selected_action": [theirs.pk], "post": "yes"})
    theirs.refresh_from_db()
    assert (theirs.name, theirs.status) == ("Globex secret", SequenceStatus.ACTIVE)


@pytest.mark.parametrize("role", [Role.SDR, Role.AE, Role.MANAGER])
def test_other_roles_are_refused_every_nurture_admin(tenant, role):
    client = staff(tenant, role)
    sequence = sequence_with_steps(tenant=tenant, steps=1)
    for model in (Sequence, NurtureSettings, Suppression, Enrollment, Message):
        assert client.get(url(model)).status_code == 403, model
    assert client.get(url(Sequence, "change", sequence.pk)).status_code == 403
    assert client.post(url(Sequence), {"action": "pause", "_selected_action": [sequence.pk]}).status_code == 403
    sequence.refresh_from_db()
    assert sequence.status == SequenceStatus.ACTIVE


def test_a_tenant_admin_edits_nurture_too(tenant):
    client = staff(tenant, Role.ADMIN)
    assert client.get(url(Sequence, "add")).status_code == 200
    assert client.get(url(Suppression, "add")).status_code == 200


# --- settings ----------------------------------------------------------------------------------------


def test_settings_show_the_bounce_callback_read_only_and_warn_without_a_postal_address(tenant, ops, settings):
    settings.PUBLIC_BASE_URL = "https://leads.acme.test"
    row = NurtureSettingsFactory(tenant=tenant, postal_address="")
    secret = row.bounce_secret

    listed = ops.get(url(NurtureSettings))
    assert any("sends nothing until you enter your postal address" in str(m) for m in listed.context["messages"])
    page = ops.get(url(NurtureSettings, "change", row.pk))

    html = page.content.decode()
    assert f"https://leads.acme.test/api/v1/nurture/bounces/{tenant.slug}/" in html
    assert secret not in html and "only its hash is stored" in html  # never shown again after generation
    assert any("sends nothing until you enter your postal address" in str(m) for m in page.context["messages"])
    response = ops.post(url(NurtureSettings, "change", row.pk), {
        "from_name": "Acme Marketing", "from_email": "", "reply_to": "", "postal_address": "Acme, 1 Main St",
        "max_per_minute": 30, "quiet_hours_start": "", "quiet_hours_end": "", "working_pause_days": 14,
        "bounce_secret": "chosen-by-the-attacker"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.postal_address, row.max_per_minute, row.bounce_secret) == ("Acme, 1 Main St", 30, secret)
    assert AuditEvent.objects.unscoped().filter(action="nurture_settings.updated", object_id=str(row.pk)).exists()
    later = ops.get(url(NurtureSettings, "change", row.pk))
    assert not any("postal address" in str(m) for m in later.context["messages"])


def test_settings_are_one_per_tenant_cannot_be_deleted_and_quiet_hours_need_both_ends(tenant, ops):
    row = NurtureSettingsFactory(tenant=tenant)

    assert ops.get(url(NurtureSettings, "add")).status_code == 403
    assert ops.get(url(NurtureSettings, "delete", row.pk)).status_code == 403
    response = ops.post(url(NurtureSettings, "change", row.pk), {
        "from_name": "x", "postal_address": "Somewhere", "max_per_minute": 0, "quiet_hours_start": "20:00",
        "quiet_hours_end": "", "working_pause_days": 14})
    errors = response.context["adminform"].form.errors
    assert "quiet_hours_end" in errors and "max_per_minute" in errors


def test_rotating_the_bounce_secret_replaces_it_and_is_audited(tenant, ops):
    row = NurtureSettingsFactory(tenant=tenant)
    old = row.bounce_secret

    response = ops.post(url(NurtureSettings), {"action": "rotate_bounce_secret", "_selected_action": [row.pk]})

    row.refresh_from_db()
    shown = re.search(r'<code class="bounce-secret">([^<]+)</code>', response.content.decode()).group(1)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"] and len(shown) >= 32
    assert row.bounce_secret != old and row.bounce_secret_matches(shown) and shown not in row.bounce_secret
    assert AuditEvent.objects.unscoped().filter(action="nurture_settings.bounce_secret_rotated").exists()
    page = ops.get(url(NurtureSettings, "change", row.pk)).content.decode()
    assert shown not in page  # shown once: the settings page never shows it again


# --- suppression list --------------------------------------------------------------------------------


def test_an_address_added_by_hand_is_lower_cased_once_per_tenant_and_searchable(tenant, ops):
    response = ops.post(url(Suppression, "add"), {"email": "  Jane.Doe@Example.COM ", "reason": "manual",
                                                  "note": "Asked by phone"})

    assert response.status_code == 302
    row = Suppression.objects.unscoped().get(tenant=tenant)
    assert row.email == "jane.doe@example.com"
    assert AuditEvent.objects.unscoped().filter(action="suppression.created", object_id=str(row.pk)).exists()
    again = ops.post(url(Suppression, "add"), {"email": "JANE.DOE@example.com", "reason": "manual"})
    assert again.context["adminform"].form.errors["email"] == ["This address is already suppressed."]
    assert Suppression.objects.unscoped().filter(tenant=tenant).count() == 1
    found = ops.get(url(Suppression), {"q": "jane.doe"}).context["cl"].result_list
    assert [r.pk for r in found] == [row.pk]


def test_the_same_address_may_be_suppressed_in_another_tenant(tenant, ops):
    Suppression.objects.unscoped().create(tenant=TenantFactory(slug="globex"), email="jane@example.com")

    assert ops.post(url(Suppression, "add"), {"email": "jane@example.com", "reason": "manual"}).status_code == 302


def test_an_unsubscribe_cannot_be_deleted_or_filtered_away_but_a_manual_entry_can(tenant, ops):
    unsubscribed = Suppression.objects.unscoped().create(tenant=tenant, email="out@example.com",
                                                         reason=SuppressionReason.UNSUBSCRIBED)
    manual = Suppression.objects.unscoped().create(tenant=tenant, email="manual@example.com")

    assert ops.get(url(Suppression, "delete", unsubscribed.pk)).status_code == 403
    listed = ops.get(url(Suppression), {"reason__exact": "unsubscribed"}).context["cl"].result_list
    assert [r.pk for r in listed] == [unsubscribed.pk]
    both = {"action": "delete_selected", "_selected_action": [unsubscribed.pk, manual.pk], "post": "yes"}
    refused = ops.post(url(Suppression), both)
    assert refused.status_code == 403, "a bulk delete that includes an unsubscribe is refused as a whole"
    assert Suppression.objects.unscoped().count() == 2
    ops.post(url(Suppression), {**both, "_selected_action": [manual.pk]})
    assert list(Suppression.objects.unscoped().values_list("email", flat=True)) == ["out@example.com"]


# --- enrolments and messages -------------------------------------------------------------------------


def test_enrolments_are_read_only_but_marketing_ops_can_stop_them(tenant, ops):
    sequence = sequence_with_steps(tenant=tenant, steps=2)
    live, other = enrolled(tenant, sequence, n=2)

    assert ops.get(url(Enrollment, "add")).status_code == 403
    page = ops.get(url(Enrollment, "change", live.pk))
    assert page.status_code == 200 and page.context["adminform"].form.fields == {}
    ops.post(url(Enrollment, "change", live.pk), {"status": "completed"})
    live.refresh_from_db()
    assert live.status == EnrollmentStatus.ACTIVE

    response = ops.post(url(Enrollment), {"action": "stop", "_selected_action": [live.pk]}, follow=True)

    live.refresh_from_db()
    other.refresh_from_db()
    assert (live.status, live.exit_reason) == (EnrollmentStatus.EXITED, ExitReason.MANUAL)
    assert other.status == EnrollmentStatus.ACTIVE
    assert any("Stopped 1 enrolment" in str(m) for m in response.context["messages"])
    assert AuditEvent.objects.unscoped().filter(action="nurture.exited", object_id=str(live.lead_id)).exists()


def test_enrolment_list_filters_by_this_tenants_sequences_only(tenant, ops, django_assert_max_num_queries):
    mine = sequence_with_steps(tenant=tenant, steps=1, name="Mine")
    second = sequence_with_steps(tenant=tenant, steps=1, name="Second", kind="mql_nurture")
    theirs = sequence_with_steps(tenant=TenantFactory(slug="globex"), steps=1, name="Globex secret")
    enrolled(tenant, mine, n=3)
    enrolled(tenant, second, n=1)
    enrolled(theirs.tenant, theirs, n=1)

    with django_assert_max_num_queries(12):
        response = ops.get(url(Enrollment), {"sequence": str(second.pk)})

    assert response.context["cl"].result_count == 1
    html = response.content.decode()
    assert "Second" in html and "Globex secret" not in html
    assert ops.get(url(Enrollment), {"sequence": str(theirs.pk)}).context["cl"].result_count == 0


def test_messages_are_read_only_and_another_tenants_are_not_there(tenant, ops):
    sequence = sequence_with_steps(tenant=tenant, steps=1)
    enrollment = enrolled(tenant, sequence)[0]
    message = Message.objects.unscoped().create(
        tenant=tenant, enrollment=enrollment, lead=enrollment.lead, sequence=sequence, step_position=1,
        to_email=enrollment.lead.email, subject="Hello", body_text="Body")
    other = TenantFactory(slug="globex")
    their_sequence = sequence_with_steps(tenant=other, steps=1)
    their_enrollment = enrolled(other, their_sequence)[0]
    theirs = Message.objects.unscoped().create(
        tenant=other, enrollment=their_enrollment, lead=their_enrollment.lead, sequence=their_sequence,
        step_position=1, to_email=their_enrollment.lead.email, subject="Their secret", body_text="Body")

    listed = ops.get(url(Message)).context["cl"].result_list
    assert [m.pk for m in listed] == [message.pk]
    assert ops.get(url(Message, "change", message.pk)).status_code == 200
    assert ops.get(url(Message, "change", theirs.pk)).status_code == 302
    assert ops.get(url(Message, "add")).status_code == 403
    assert ops.get(url(Message, "delete", message.pk)).status_code == 403


def test_a_platform_superuser_opens_a_tenants_sequence_and_saves_it_inside_that_tenant(tenant):
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser("root@nurture.test", "root@nurture.test", "pw-for-tests-123")
    client = Client()
    client.force_login(root)
    sequence = sequence_with_steps(tenant=tenant, steps=1, name="Theirs to keep")
    StepFactory(sequence=sequence, tenant=tenant, position=2)

    assert client.get(url(Sequence)).status_code == 200
    assert client.get(url(Sequence, "change", sequence.pk)).status_code == 200
    assert client.get(url(Sequence, "add")).status_code == 403
