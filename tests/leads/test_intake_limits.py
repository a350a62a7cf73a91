"""The intake's rate limits count every POST once against its client IP, refused ones included, and check the
IP before the database; its forms are kept per process for a few seconds, and a deactivated form stops."""
from __future__ import annotations

import pytest
from django.test import Client

import leads.intake
from leads.intake import FORM_CACHE_SECONDS
from leads.models import Lead, LeadForm
from leads.throttles import IntakeFormRateThrottle, IntakeIpRateThrottle
from tests.support.factories import LeadFormFactory
from tests.support.intake import post_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return Client()


def test_refused_posts_count_against_the_ip_limit(client, lead_form, monkeypatch):
    monkeypatch.setattr(IntakeIpRateThrottle, "rate", "2/min")
    assert post_json(client, "{not json", form=lead_form).status_code == 400
    assert post_json(client, {"email": "a@limits.example"}, HTTP_X_FORM_KEY="lf_unknown").status_code == 403
    blocked = post_json(client, {"email": "ok@limits.example"}, form=lead_form)
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) > 0
    assert not Lead.objects.unscoped().filter(email="ok@limits.example").exists()


def test_over_the_ip_limit_any_post_is_answered_429_without_a_query(client, lead_form, monkeypatch,
                                                                     django_assert_num_queries):
    monkeypatch.setattr(IntakeIpRateThrottle, "rate", "1/min")
    assert post_json(client, {"email": "first@limits.example"}, form=lead_form).status_code == 201
    with django_assert_num_queries(0):
        responses = [
            post_json(client, "{not json", form=lead_form),
            post_json(client, {"email": "a@limits.example"}, HTTP_X_FORM_KEY="lf_unknown"),
            post_json(client, {"email": "b@limits.example"}, form=lead_form, HTTP_ORIGIN="https://evil.example"),
            post_json(client, {"email": "c@limits.example"}, form=lead_form),
        ]
    assert [r.status_code for r in responses] == [429] * 4
    assert all(int(r["Retry-After"]) > 0 for r in responses)


def test_a_post_over_its_forms_limit_still_counts_once_against_its_ip(client, lead_form, tenant, monkeypatch):
    monkeypatch.setattr(IntakeIpRateThrottle, "rate", "3/min")
    monkeypatch.setattr(IntakeFormRateThrottle, "rate", "1/min")
    other = LeadFormFactory(tenant=tenant, name="Other form")
    assert post_json(client, {"email": "f1@limits.example"}, form=lead_form).status_code == 201
    assert post_json(client, {"email": "f2@limits.example"}, form=lead_form).status_code == 429  # the form's
    assert post_json(client, {"email": "f3@limits.example"}, form=other).status_code == 201
    assert post_json(client, {"email": "f4@limits.example"}, form=other).status_code == 429  # the IP's (3 of 3)


def test_a_form_deactivated_after_submissions_is_refused_at_once(client, lead_form):
    assert post_json(client, {"email": "before@forms.example"}, form=lead_form).status_code == 201
    lead_form.is_active = False
    lead_form.save()
    assert post_json(client, {"email": "after@forms.example"}, form=lead_form).status_code == 403


def test_a_form_deactivated_by_another_process_is_refused_within_the_cache_seconds(client, lead_form, monkeypatch):
    assert post_json(client, {"email": "before@forms.example"}, form=lead_form).status_code == 201
    LeadForm.objects.unscoped().filter(pk=lead_form.pk).update(is_active=False)  # no signal reaches this process
    clock = leads.intake._clock
    monkeypatch.setattr(leads.intake, "_clock", lambda: clock() + FORM_CACHE_SECONDS)
    assert post_json(client, {"email": "after@forms.example"}, form=lead_form).status_code == 403


def test_a_kept_form_is_a_fresh_instance_for_each_request(lead_form):
    assert leads.intake._form_lookup(lead_form.key) is not None
    first, second = leads.intake._form_cached(lead_form.key), leads.intake._form_cached(lead_form.key)
    assert first == second == lead_form and first is not second and first.tenant is not second.tenant
    assert first.allowed_origins == lead_form.allowed_origins and first.allowed_origins is not second.allowed_origins
    assert first.tenant == lead_form.tenant and first.tenant.is_active


def test_with_redis_down_the_limits_fail_open_and_the_lead_is_captured(client, lead_form, settings, monkeypatch,
                                                                        caplog):
    """A Redis restart must not refuse every lead: the limits are skipped (logged) and capture, which needs
    only PostgreSQL, goes on; the pipeline task's publish failing after commit does not turn the 201 into a 500."""
    monkeypatch.setattr(IntakeIpRateThrottle, "rate", "1/min")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}  # nothing listens there
    with caplog.at_level("WARNING", logger="leads.throttles"):
        responses = [post_json(client, {"email": f"down{i}@limits.example"}, form=lead_form) for i in range(2)]
    assert [r.status_code for r in responses] == [201, 201]  # over the 1/min limit, but it cannot be counted
    assert Lead.objects.unscoped().filter(email__startswith="down").count() == 2
    assert "Redis unavailable" in caplog.text
