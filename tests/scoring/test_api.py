"""Scores in the leads API: explained breakdowns on list pages without N+1, isolation."""
import pytest
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM
from scoring.services import leads_score, scoring_default_model_create, scoring_model_draft_create
from tests.support.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_a_page_of_scored_leads_from_two_model_versions_has_bounded_queries(
        tenant, model, api_client, django_assert_max_num_queries):
    for i in range(30):
        LeadFactory(tenant=tenant, job_title="CEO" if i % 2 else "Analyst", last_activity_at=timezone.now())
    leads_score(tenant=tenant, cause="capture")
    draft = scoring_model_draft_create(tenant=tenant, actor=SYSTEM)
    for _ in range(20):
        LeadFactory(tenant=tenant, job_title="Director", last_activity_at=timezone.now())
    leads_score(tenant=tenant, cause="manual", model=draft)  # some leads now explained by another version
    api_client.get("/api/v1/leads/")  # warm-up (auth, content types)
    with django_assert_max_num_queries(8):
        body = api_client.get("/api/v1/leads/?page_size=50").json()
    assert len(body["results"]) == 50
    for row in body["results"]:
        assert row["score"] == max(0, min(100, sum(line["points"] for line in row["score_breakdown"]["lines"])))
        assert all(not line["rule"].startswith("Rule ") for line in row["score_breakdown"]["lines"])


def test_score_history_of_another_tenants_lead_is_not_found(tenant, other_tenant, model, api_client):
    scoring_default_model_create(tenant=other_tenant, actor=SYSTEM)
    theirs = LeadFactory(tenant=other_tenant, job_title="CEO")
    leads_score(tenant=other_tenant, cause="manual")
    assert api_client.get(f"/api/v1/leads/{theirs.pk}/score-history/").status_code == 404
