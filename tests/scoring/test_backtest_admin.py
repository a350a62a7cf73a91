"""The scoring admin's backtest page: a draft beside the published model, the range form, the admin action, the
link on the change page, the role check and another tenant's model."""
from __future__ import annotations

import pytest
from django.test import Client

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy.models import Role
from scoring.models import ScoringRule
from scoring.services import scoring_default_model_create, scoring_model_draft_create
from tests.scoring.test_backtest import HISTORY, closed_leads
from tests.support.scoring_admin import url
from tests.support.workspace import person

pytestmark = pytest.mark.django_db


def staff(tenant, role):
    user = person(tenant, role=role, username=f"{role}@acme.test")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


def test_a_draft_is_backtested_beside_the_published_model(tenant, model, django_assert_max_num_queries):
    closed_leads(tenant, HISTORY)
    draft = scoring_model_draft_create(tenant=tenant, actor=SYSTEM)
    ScoringRule.objects.for_tenant(tenant).filter(model=draft, name="Title: Manager").update(points=55)
    ScoringRule.objects.for_tenant(tenant).filter(model=draft, name="Title: C-level").update(points=1)
    client = staff(tenant, Role.MARKETING_OPS)
    client.get(url("backtest", draft))  # warm-up
    with django_assert_max_num_queries(30):
        page = client.get(url("backtest", draft) + "?from=2026-03-01&to=2026-03-31")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="backtest-v{draft.version}"' in html and f'id="backtest-v{model.version}"' in html
    assert 'id="backtest-summary"' in html and "Top-decile lift" in html and "Calibration" in html
    columns = page.context["columns"]
    assert [c["model"]["version"] for c in columns] == [draft.version, model.version]
    assert columns[0]["auc"] != columns[1]["auc"] and columns[0]["count"] == 12


def test_the_published_model_alone_has_one_column_and_a_bad_range_says_why(tenant, model):
    client = staff(tenant, Role.ADMIN)
    page = client.get(url("backtest", model))
    assert page.status_code == 200 and len(page.context["columns"]) == 1
    assert "No closed leads" in page.content.decode()
    page = client.get(url("backtest", model) + "?from=2026-05-01&to=2026-04-01")
    assert page.status_code == 200 and page.context["columns"] == []
    assert "ends (2026-04-01) before it starts" in page.content.decode()


def test_the_change_page_links_to_it_and_the_admin_action_opens_it(tenant, model):
    client = staff(tenant, Role.MARKETING_OPS)
    assert url("backtest", model) in client.get(url("change", model)).content.decode()
    response = client.post("/admin/scoring/scoringmodel/", {"action": "backtest", "_selected_action": [model.pk]})
    assert response.status_code == 302 and response["Location"] == url("backtest", model)


def test_reps_and_managers_may_not_open_it(tenant, model):
    for role in (Role.SDR, Role.AE, Role.MANAGER):
        assert staff(tenant, role).get(url("backtest", model)).status_code == 403, role


def test_another_tenants_model_is_not_found(tenant, other_tenant, model):
    theirs = scoring_default_model_create(tenant=other_tenant, actor=SYSTEM)
    assert staff(tenant, Role.ADMIN).get(url("backtest", theirs)).status_code == 404
