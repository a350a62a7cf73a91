"""The default model reproduces seed 002's scoring table and thresholds, rule by rule."""
import pytest

from scoring.models import ModelStatus, ScoreBand, ScoringRule
from tests.support.scoring import lines

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("title", "rule", "points"), [
    ("CEO", "Title: C-level", 25),
    ("Chief Revenue Officer", "Title: C-level", 25),
    ("Co-Founder & CTO", "Title: C-level", 25),
    ("VP Marketing", "Title: VP/Director", 20),
    ("Vice President, Sales", "Title: VP/Director", 20),
    ("Director of IT", "Title: VP/Director", 20),
    ("Head of Growth", "Title: VP/Director", 20),
    ("Marketing Manager", "Title: Manager", 10),
    ("Data Analyst", "Title: Individual contributor", 5),
])
def test_title_seniority(scored, title, rule, points):
    assert lines(scored(job_title=title)) == {rule: points}


def test_no_title_scores_nothing_for_title(scored):
    assert lines(scored(job_title="")) == {}


@pytest.mark.parametrize(("size", "rule", "points"), [
    (5000, "Company size: 500+ employees", 20), (500, "Company size: 500+ employees", 20),
    (499, "Company size: 100-499", 15), (100, "Company size: 100-499", 15),
    (99, "Company size: 20-99", 10), (20, "Company size: 20-99", 10),
    (19, "Company size: <20", 5), (1, "Company size: <20", 5),
])
def test_company_size_bands(scored, size, rule, points):
    assert lines(scored(company_size=size)) == {rule: points}


@pytest.mark.parametrize(("industry", "rule", "points"), [
    ("Software", "Industry: target", 15), ("saas", "Industry: target", 15),
    ("Financial Services", "Industry: adjacent", 10),
])
def test_industry(scored, industry, rule, points):
    assert lines(scored(industry=industry)) == {rule: points}


def test_primary_market(scored):
    assert lines(scored(country="US")) == {"Geography: primary market": 10}
    assert lines(scored(country="France")) == {}


@pytest.mark.parametrize(("signal", "rule", "points"), [
    ("pricing_page_view", "Web: pricing page view", 20),
    ("product_page_view", "Web: product page view", 10),
    ("blog_post_view", "Web: blog post view", 3),
    ("multi_page_session", "Web: 3+ pages/session", 5),
    ("email_open", "Email: open", 2),
    ("email_click", "Email: click", 5),
    ("unsubscribe", "Email: unsubscribe", -20),
    ("whitepaper_download", "Content: whitepaper download", 10),
    ("webinar_registration", "Content: webinar registration", 15),
    ("webinar_attendance", "Content: webinar attendance", 20),
    ("case_study_download", "Content: case study download", 15),
    ("demo_request", "Direct: demo request", 30),
    ("contact_form", "Direct: contact form", 25),
    ("free_trial_signup", "Direct: free trial signup", 25),
])
def test_engagement_signals(scored, signal, rule, points):
    assert lines(scored(signals=[(signal, 1)])) == {rule: points}


def test_negative_rules(scored, model):
    from datetime import timedelta

    from django.utils import timezone

    old = timezone.now() - timedelta(days=31)
    assert lines(scored(last_activity_at=old)) == {"Negative: 30+ days inactive": -15}
    assert lines(scored(email="kid@uni.edu")) == {"Negative: student email": -10}
    assert lines(scored(email="me@gmail.com", is_personal_email=True)) == {"Negative: free email": -10}
    competitor = ScoringRule.objects.unscoped().get(model=model, name="Negative: competitor email domain")
    competitor.value = ["rival.example"]
    competitor.save()
    assert lines(scored(email="spy@rival.example")) == {"Negative: competitor email domain": -30}


def test_thresholds_and_bands_are_seed_002(model):
    bands = [(b.key, b.name, b.min_score, b.max_score, b.action) for b in ScoreBand.objects.unscoped().filter(model=model)]
    assert bands == [
        ("cold", "Cold", 0, 20, "Awareness content, retargeting"),
        ("warm", "Warm", 21, 40, "Nurture sequence"),
        ("mql", "MQL", 41, 60, "Marketing nurture + BDR notification"),
        ("sal", "SAL", 61, 80, "BDR outreach within 24h"),
        ("sql", "SQL", 81, 100, "AE engagement, demo scheduling"),
    ]
    assert model.status == ModelStatus.PUBLISHED and model.hot_threshold == 75


def test_a_full_profile_adds_up_and_is_clamped(scored):
    lead = scored(job_title="VP Engineering", company_size=250, industry="Software", country="US",
                  signals=[("pricing_page_view", 1), ("demo_request", 2)])
    # 20 + 15 + 15 + 10 fit, 20 + 30 engagement = 110 -> clamped to 100
    assert (lead.fit_score, lead.engagement_score, lead.score, lead.band) == (60, 50, 100, "sql")
    assert sum(lines(lead).values()) == 110
    assert lead.lead_class == "high_fit" and "Fit 60 is high" in lead.lead_class_reason


def test_cold_lead_with_no_data(scored):
    lead = scored()
    assert (lead.score, lead.band, lead.lead_class, lead.score_breakdown) == (0, "cold", "low_fit", {})
