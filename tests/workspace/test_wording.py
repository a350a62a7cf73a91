"""Wording: counts agree with their verb, a subject never shows a raw merge field, and managers and admins
get advice that fits their role instead of "ask your manager"."""
from __future__ import annotations

import pytest
from django.urls import reverse

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.models import Role
from nurture.models import Step
from nurture.services.enrollment import lead_enroll
from tests.support.nurture import sequence_with_steps
from tests.support.workspace import owned_lead, person

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("leads", "caption"), [(1, "1 lead matches the filters"), (2, "2 leads match the filters")])
def test_the_queue_count_agrees_with_its_verb(tenant, org, signed_in, leads, caption):
    for _ in range(leads):
        owned_lead(tenant, org["rep"], source="webinar")
    partial = signed_in(org["rep"], tenant).get("/queue/", {"source": "webinar"}, HTTP_HX_REQUEST="true")
    assert caption in partial.content.decode()


def test_the_manager_queue_count_agrees_with_its_verb(tenant, org, signed_in):
    owned_lead(tenant, org["rep"])
    html = signed_in(org["manager"], tenant).get(reverse("manager:queue"), {"rep": org["rep"].pk}).content.decode()
    assert "1 open lead matches the filters." in html


@pytest.mark.parametrize(("role", "expected", "unwanted"), [
    (Role.SDR, "ask your manager for more", "Manager → Unassigned"),
    (Role.MANAGER, "Manager → Unassigned", "ask your manager"),
    (Role.ADMIN, "Manager → Unassigned", "ask your manager"),
    (Role.MARKETING_OPS, "Dashboards", "ask your manager"),
])
def test_an_empty_queue_gives_advice_that_fits_the_role(tenant, signed_in, role, expected, unwanted):
    user = person(tenant, role=role, username=f"{role}@acme.test")
    html = signed_in(user, tenant).get(reverse("queue")).content.decode()
    assert 'data-testid="queue-empty-hint"' in html
    hint = html.split('data-testid="queue-empty-hint"', 1)[1].split("</p>", 1)[0]
    assert expected in hint and unwanted not in hint


@pytest.mark.parametrize(("role", "expected"), [
    (Role.SDR, "ask your manager"),
    (Role.MANAGER, "ask a tenant admin of Acme Corp"),
])
def test_the_403_page_points_to_who_can_help(tenant, signed_in, role, expected):
    user = person(tenant, role=role, username=f"{role}@acme.test")
    response = signed_in(user, tenant).get(reverse("team"))
    assert response.status_code == 403 and expected in response.content.decode()
    if role == Role.MANAGER:
        assert "ask your manager" not in response.content.decode()


def test_the_next_nurture_subject_is_shown_with_its_merge_fields_filled_in(tenant, org, signed_in):
    sequence = sequence_with_steps(tenant=tenant, steps=1, name="Welcome", kind="post_demo", auto_enroll=False)
    Step.objects.unscoped().filter(sequence=sequence).update(subject="Thanks for your interest in {{ tenant_name }}, {{ first_name|default:'there' }}")
    lead = owned_lead(tenant, org["rep"], first_name="Grace", marketing_consent=True)
    lead_enroll(lead=lead, sequence=sequence, actor=Actor.for_user(org["rep"]))
    html = signed_in(org["rep"], tenant).get(reverse("lead-page", args=[lead.pk])).content.decode()
    assert "Thanks for your interest in Acme Corp, Grace" in html
    assert "{{ tenant_name }}" not in html
    api = signed_in(org["rep"], tenant).get(f"/api/v1/leads/{lead.pk}/enrollments/")
    assert api.status_code == 200
    assert api.json()[0]["next_step"]["subject"] == "Thanks for your interest in Acme Corp, Grace"
