"""The lead page's Nurture card: enrolments with their state, next step and due time; enrol and stop by hand;
nurture emails on the timeline."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.models import Lead
from nurture.models import Enrollment, Message
from nurture.services.enrollment import lead_enroll
from tests.support.nurture import sequence_with_steps
from tests.support.workspace import owned_lead

pytestmark = pytest.mark.django_db


def page(lead):
    return reverse("lead-page", args=[lead.pk])


def url(lead, action):
    return reverse("lead-action", args=[lead.pk, action])


@pytest.fixture
def post_demo(tenant):
    return sequence_with_steps(tenant=tenant, steps=2, name="Post-demo", kind="post_demo", auto_enroll=False,
                               delays_days=(1, 3))


def test_a_lead_in_no_sequence_offers_the_tenants_active_sequences(tenant, other_tenant, org, signed_in, post_demo):
    sequence_with_steps(tenant=other_tenant, steps=1, name="Globex secret sequence")
    sequence_with_steps(tenant=tenant, steps=1, name="Draft one", status="draft")
    lead = owned_lead(tenant, org["rep"], marketing_consent=True)
    html = signed_in(org["rep"], tenant).get(page(lead)).content.decode()
    assert 'data-testid="no-enrollment"' in html and "Post-demo (Post-demo)" in html
    assert "Globex secret sequence" not in html and "Draft one" not in html


def test_enrol_by_hand_shows_state_next_step_and_due_time_then_stop(tenant, org, signed_in, post_demo):
    rep = org["rep"]
    lead = owned_lead(tenant, rep, marketing_consent=True)
    client = signed_in(rep, tenant)
    response = client.post(url(lead, "enroll"), {"enroll-sequence": post_demo.pk})
    assert response.status_code == 302
    enrollment = Enrollment.objects.unscoped().get(lead=lead)
    assert (enrollment.status, enrollment.automatic, enrollment.enrolled_by) == ("active", False, rep.get_username())
    html = client.get(page(lead)).content.decode()
    assert "Enrolled in “Post-demo”." in html
    assert 'data-testid="enrollment-status">Active<' in html
    due = timezone.localtime(enrollment.next_due_at).strftime("%b %-d, %H:%M")
    greeting = lead.first_name or "there"  # the subject's merge fields rendered for this lead, never raw
    assert f"Next: step 1, “Step 1 for {greeting}”, due {due}" in html
    assert "Enrolled in nurture: Post-demo" in html  # on the timeline

    response = client.post(url(lead, "stop-nurture"), {"stop-enrollment": enrollment.pk, "stop-note": "Bought"})
    assert response.status_code == 302
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.exit_reason, enrollment.exit_note) == ("exited", "manual", "Bought")
    html = client.get(page(lead)).content.decode()
    assert "Stopped by hand — Bought" in html and "Left nurture: Post-demo" in html


def test_enrolling_a_lead_without_consent_is_refused_beside_the_form(tenant, org, signed_in, post_demo):
    lead = owned_lead(tenant, org["rep"], marketing_consent=False)
    response = signed_in(org["rep"], tenant).post(url(lead, "enroll"), {"enroll-sequence": post_demo.pk})
    assert response.status_code == 400
    html = response.content.decode()
    assert "This lead has not given marketing consent." in html and 'data-testid="no-consent"' in html
    assert not Enrollment.objects.unscoped().exists()


def test_bad_enrol_and_stop_posts_are_field_errors_and_change_nothing(tenant, other_tenant, org, signed_in, post_demo):
    rep = org["rep"]
    lead = owned_lead(tenant, rep, marketing_consent=True)
    other_lead = owned_lead(tenant, rep, marketing_consent=True)
    theirs = sequence_with_steps(tenant=other_tenant, steps=1, name="Globex")
    client = signed_in(rep, tenant)
    for data in ({}, {"enroll-sequence": "abc"}, {"enroll-sequence": theirs.pk}):
        assert client.post(url(lead, "enroll"), data).status_code == 400
    assert not Enrollment.objects.unscoped().exists()
    elsewhere = lead_enroll(lead=other_lead, sequence=post_demo, actor=__import__(
        "leadmgmt.audit.actors", fromlist=["SYSTEM"]).SYSTEM)
    response = client.post(url(lead, "stop-nurture"), {"stop-enrollment": elsewhere.pk})
    assert response.status_code == 400
    assert "This enrolment is not on this lead; reload the page." in response.content.decode()
    assert client.post(url(lead, "stop-nurture"), {"stop-enrollment": "x"}).status_code == 400
    assert Enrollment.objects.unscoped().get(pk=elsewhere.pk).status == "active"


def test_csrf_less_and_out_of_reach_nurture_actions_are_refused(tenant, other_tenant, org, signed_in, post_demo):
    rep, rep2 = org["rep"], org["rep2"]
    lead = owned_lead(tenant, rep2, marketing_consent=True)
    assert signed_in(rep, tenant).post(url(lead, "enroll"), {"enroll-sequence": post_demo.pk}).status_code == 404
    mine = owned_lead(tenant, rep, marketing_consent=True)
    client = signed_in(rep, tenant, enforce_csrf_checks=True)
    assert client.post(url(mine, "enroll"), {"enroll-sequence": post_demo.pk}).status_code == 403
    theirs = Lead.objects.unscoped().create(tenant=other_tenant, email="x@globex.test", marketing_consent=True)
    assert signed_in(rep, tenant).post(url(theirs, "enroll"), {"enroll-sequence": post_demo.pk}).status_code == 404
    assert not Enrollment.objects.unscoped().exists()


def test_nurture_emails_are_on_the_timeline_with_opens_and_clicks(tenant, org, signed_in, post_demo):
    from leadmgmt.audit.actors import SYSTEM

    lead = owned_lead(tenant, org["rep"], marketing_consent=True)
    enrollment = lead_enroll(lead=lead, sequence=post_demo, actor=SYSTEM)
    now = timezone.now()
    Message.objects.unscoped().create(
        tenant=tenant, enrollment=enrollment, lead=lead, sequence=post_demo, step_position=1, to_email=lead.email,
        subject="Your demo recap", body_text="Hi", status="sent", claimed_at=now, sent_at=now, opened_at=now,
        open_count=2, clicked_at=now, click_count=1)
    html = signed_in(org["rep"], tenant).get(page(lead)).content.decode()
    assert "Email: Your demo recap" in html and "Post-demo · step 1 · opened 2×, clicked 1×" in html
