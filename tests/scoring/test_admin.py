"""Scoring admin: drafts edited inline, published versions read-only, what-if and publish, bad input
refused on the field with nothing saved, tenant isolation, agent switches, the lead's score explanation."""
from __future__ import annotations

import pytest
from django import forms
from django.test import Client
from django.urls import reverse

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Agent, AgentSetting, Membership, Role, agent_enabled
from leads.models import Lead
from scoring.admin import score_breakdown_html
from scoring.models import ModelStatus, ScoreBand, ScoringModel, ScoringRule
from scoring.services import (
    leads_score,
    model_whatif,
    scoring_default_model_create,
    scoring_model_draft_create,
)
from tests.support.factories import LeadFactory

pytestmark = pytest.mark.django_db


# --- fixtures and helpers -----------------------------------------------------------------------


def staff_client(tenant, make_member, role) -> Client:
    user = make_member(tenant, role=role)
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def ops_client(tenant, make_member):
    return staff_client(tenant, make_member, Role.MARKETING_OPS)


@pytest.fixture
def admin_client_(tenant, make_member):
    return staff_client(tenant, make_member, Role.ADMIN)


@pytest.fixture
def published(tenant):
    return scoring_default_model_create(tenant=tenant, actor=SYSTEM)


@pytest.fixture
def draft(tenant, published):
    return scoring_model_draft_create(tenant=tenant, actor=SYSTEM, based_on=published)


@pytest.fixture
def their_model(other_tenant):
    return scoring_default_model_create(tenant=other_tenant, actor=SYSTEM)


def url(view: str, model: ScoringModel) -> str:
    return reverse(f"admin:scoring_scoringmodel_{view}", args=[model.pk])


def post_data(page) -> dict:
    """What the browser would post back for an admin change page, unchanged."""
    data: dict = {}

    def add(form):
        for name, field in form.fields.items():
            bound = form[name]
            value = bound.value()
            if isinstance(field, forms.BooleanField):
                if value:
                    data[bound.html_name] = "on"
            elif value is not None:
                data[bound.html_name] = value

    add(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[management[name].html_name] = management[name].value()
        for form in inline.formset.forms:
            add(form)
    return data


def formset(page, prefix: str):
    return next(i.formset for i in page.context["inline_admin_formsets"] if i.formset.prefix == prefix)


def form_for(page, prefix: str, name: str):
    """(index, form) of the inline row showing the rule or band called `name`."""
    return next((i, f) for i, f in enumerate(formset(page, prefix).forms) if f.instance.name == name)


def rows(model: ScoringModel) -> tuple[list, list]:
    return (list(ScoringRule.objects.unscoped().filter(model=model).order_by("id").values()),
            list(ScoreBand.objects.unscoped().filter(model=model).order_by("id").values()))


def add_rule(data: dict, **values) -> str:
    """Append a new rule row to the posted rules form set; returns its prefix."""
    index = int(data["rules-TOTAL_FORMS"])
    data["rules-TOTAL_FORMS"] = str(index + 1)
    prefix = f"rules-{index}"
    row = {"position": "500", "name": "New rule", "category": "firmographic", "field": "", "operator": "equals",
           "value": "", "signal_type": "", "points": "5", "cap": "", "once_per_days": "", "exclusive_group": "",
           "is_active": "on", **values}
    data.update({f"{prefix}-{k}": v for k, v in row.items()})
    return prefix


# --- tenant scoping and roles ---------------------------------------------------------------------


def test_changelist_shows_only_own_tenants_versions(ops_client, published, draft, their_model,
                                                    django_assert_max_num_queries):
    their_draft = scoring_model_draft_create(tenant=their_model.tenant, actor=SYSTEM, name="Globex secret model")
    with django_assert_max_num_queries(12):
        response = ops_client.get(reverse("admin:scoring_scoringmodel_changelist"))
    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert {m.pk for m in shown} == {published.pk, draft.pk}
    assert their_draft.name not in response.content.decode()
    assert {m.pk: m._rule_count for m in shown}[draft.pk] == ScoringRule.objects.unscoped().filter(model=draft).count()


def test_changelist_query_count_does_not_grow_with_versions(ops_client, tenant, published,
                                                            django_assert_max_num_queries):
    for _ in range(6):
        scoring_model_draft_create(tenant=tenant, actor=SYSTEM)
    with django_assert_max_num_queries(12):
        assert ops_client.get(reverse("admin:scoring_scoringmodel_changelist")).status_code == 200


def test_other_tenants_model_is_unreachable_by_url(ops_client, their_model):
    response = ops_client.get(url("change", their_model), follow=True)
    assert b"doesn" in response.content  # "… with ID … doesn't exist. Perhaps it was deleted?"
    assert their_model.name not in response.content.decode()
    assert ops_client.get(url("publish", their_model)).status_code == 404
    assert ops_client.post(url("publish", their_model)).status_code == 404
    assert ops_client.post(url("new_draft", their_model)).status_code == 404
    their_draft = scoring_model_draft_create(tenant=their_model.tenant, actor=SYSTEM)
    assert ops_client.post(url("publish", their_draft)).status_code == 404
    their_draft.refresh_from_db()
    assert their_draft.status == ModelStatus.DRAFT
    assert ScoringModel.objects.unscoped().filter(tenant=their_model.tenant).count() == 2


@pytest.mark.parametrize("role", [Role.SDR, Role.AE, Role.MANAGER])
def test_sales_roles_have_no_access_to_scoring_models(tenant, make_member, draft, role):
    client = staff_client(tenant, make_member, role)
    assert client.get(reverse("admin:scoring_scoringmodel_changelist")).status_code == 403
    assert client.get(url("change", draft)).status_code == 403
    assert client.get(url("publish", draft)).status_code == 403
    assert client.post(url("publish", draft)).status_code == 403
    assert client.post(url("new_draft", draft)).status_code == 403
    draft.refresh_from_db()
    assert draft.status == ModelStatus.DRAFT


# --- drafts, published versions, adding --------------------------------------------------------------


def test_marketing_ops_edits_a_draft_rule_and_band_and_it_is_audited(ops_client, draft):
    page = ops_client.get(url("change", draft))
    assert page.status_code == 200
    data = post_data(page)
    i, _ = form_for(page, "rules", "Title: C-level")
    data[f"rules-{i}-points"] = "30"
    j, _ = form_for(page, "bands", "Warm")
    data[f"bands-{j}-action"] = "Nurture sequence B"
    data["hot_threshold"] = "70"
    prefix = add_rule(data, name="Plan: enterprise", field_0="attributes", field_1="plan", operator="equals",
                      value="enterprise", points="10")
    del data[f"{prefix}-field"]  # posted as the widget posts it: the select and the key box

    response = ops_client.post(url("change", draft), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    rule = ScoringRule.objects.unscoped().get(model=draft, name="Title: C-level")
    assert rule.points == 30
    new = ScoringRule.objects.unscoped().get(model=draft, name="Plan: enterprise")
    assert (new.field, new.value, new.tenant_id) == ("attributes.plan", "enterprise", draft.tenant_id)
    assert ScoreBand.objects.unscoped().get(model=draft, key="warm").action == "Nurture sequence B"
    draft.refresh_from_db()
    assert draft.hot_threshold == 70
    events = AuditEvent.objects.unscoped().filter(tenant=draft.tenant, metadata__via="admin")
    updated = events.get(action="scoring_rule.updated", object_id=str(rule.pk))
    assert updated.changes == {"points": [25, 30]}
    assert events.filter(action="scoring_rule.created", object_id=str(new.pk)).exists()
    assert events.filter(action="score_band.updated").count() == 1
    assert events.get(action="scoring_model.updated").changes["hot_threshold"] == [75, 70]


def test_saving_a_draft_does_not_query_per_rule(ops_client, draft, django_assert_max_num_queries):
    page = ops_client.get(url("change", draft))
    data = post_data(page)
    assert len(formset(page, "rules").forms) > 25
    with django_assert_max_num_queries(45):  # one query per rule row would be 25 more
        assert ops_client.post(url("change", draft), data).status_code == 302


def test_platform_superuser_edits_a_tenants_draft(draft):
    from tests.support.factories import UserFactory

    root = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    page = client.get(url("change", draft))
    assert page.status_code == 200
    data = post_data(page)
    i, _ = form_for(page, "rules", "Title: Manager")
    data[f"rules-{i}-points"] = "12"
    assert client.post(url("change", draft), data).status_code == 302
    assert ScoringRule.objects.unscoped().get(model=draft, name="Title: Manager").points == 12


def test_draft_rule_can_be_deleted_and_the_deletion_is_audited(ops_client, draft):
    page = ops_client.get(url("change", draft))
    data = post_data(page)
    i, form = form_for(page, "rules", "Web: blog post view")
    data[f"rules-{i}-DELETE"] = "on"
    assert ops_client.post(url("change", draft), data).status_code == 302
    assert not ScoringRule.objects.unscoped().filter(model=draft, name="Web: blog post view").exists()
    assert AuditEvent.objects.unscoped().filter(action="scoring_rule.deleted", object_id=str(form.instance.pk)).exists()


def test_two_bands_can_swap_keys_in_one_save(ops_client, draft):
    page = ops_client.get(url("change", draft))
    data = post_data(page)
    i, _ = form_for(page, "bands", "SAL")
    j, _ = form_for(page, "bands", "SQL")
    data[f"bands-{i}-key"], data[f"bands-{j}-key"] = "sql", "sal"
    assert ops_client.post(url("change", draft), data).status_code == 302
    assert ScoreBand.objects.unscoped().get(model=draft, name="SAL").key == "sql"
    assert ScoreBand.objects.unscoped().get(model=draft, name="SQL").key == "sal"


def test_published_version_is_read_only(ops_client, published):
    page = ops_client.get(url("change", published))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'name="_save"' not in body
    assert "cannot be edited in place" in body
    assert "Create a new draft from this version" in body
    assert all(not i.has_add_permission and not i.has_change_permission and not i.has_delete_permission
               for i in page.context["inline_admin_formsets"])
    before = rows(published)
    data = {"name": "Hacked", "hot_threshold": "1", "rules-TOTAL_FORMS": "0", "rules-INITIAL_FORMS": "0",
            "bands-TOTAL_FORMS": "0", "bands-INITIAL_FORMS": "0"}
    assert ops_client.post(url("change", published), data).status_code == 403
    assert ops_client.post(url("delete", published), {"post": "yes"}).status_code == 403
    published.refresh_from_db()
    assert (published.name, published.hot_threshold) != ("Hacked", 1)
    assert rows(published) == before


def test_bulk_delete_refuses_a_published_version(ops_client, published, draft):
    response = ops_client.post(reverse("admin:scoring_scoringmodel_changelist"), {
        "action": "delete_selected", "_selected_action": [published.pk, draft.pk], "post": "yes"})
    assert response.status_code in (200, 403)
    assert ScoringModel.objects.unscoped().filter(pk__in=[published.pk, draft.pk]).count() == 2


def test_a_draft_can_be_deleted(ops_client, draft):
    assert ops_client.post(url("delete", draft), {"post": "yes"}).status_code == 302
    assert not ScoringModel.objects.unscoped().filter(pk=draft.pk).exists()
    assert AuditEvent.objects.unscoped().filter(action="scoring_model.deleted", object_id=str(draft.pk)).exists()


def test_adding_a_model_creates_a_draft_copied_from_the_published_one(ops_client, tenant, published):
    page = ops_client.get(reverse("admin:scoring_scoringmodel_add"))
    assert page.status_code == 200
    assert page.context["adminform"].form.initial["based_on"] == published.pk
    response = ops_client.post(reverse("admin:scoring_scoringmodel_add"),
                               {"name": "Q3 tuning", "based_on": published.pk, "notes": "More weight on demos"})
    draft = ScoringModel.objects.unscoped().get(tenant=tenant, status=ModelStatus.DRAFT)
    assert response.status_code == 302 and response["Location"] == url("change", draft)
    assert (draft.name, draft.version, draft.based_on_id, draft.notes) == (
        "Q3 tuning", 2, published.pk, "More weight on demos")
    assert ScoringRule.objects.unscoped().filter(model=draft).count() == \
        ScoringRule.objects.unscoped().filter(model=published).count()
    assert ScoreBand.objects.unscoped().filter(model=draft, tenant=tenant).count() == 5
    assert AuditEvent.objects.unscoped().filter(action="scoring_model.draft_created", object_id=str(draft.pk)).exists()


def test_add_form_cannot_copy_another_tenants_model(ops_client, tenant, published, their_model):
    response = ops_client.post(reverse("admin:scoring_scoringmodel_add"), {"name": "x", "based_on": their_model.pk})
    assert response.status_code == 200
    assert "based_on" in response.context["adminform"].form.errors
    assert not ScoringModel.objects.unscoped().filter(tenant=tenant, status=ModelStatus.DRAFT).exists()


def test_new_draft_from_a_published_version(ops_client, tenant, published):
    assert ops_client.get(url("new_draft", published)).status_code == 405
    response = ops_client.post(url("new_draft", published))
    draft = ScoringModel.objects.unscoped().get(tenant=tenant, status=ModelStatus.DRAFT)
    assert response.status_code == 302 and response["Location"] == url("change", draft)
    assert draft.based_on_id == published.pk
    assert ScoringRule.objects.unscoped().filter(model=draft).count() > 20


def test_new_draft_button_needs_a_csrf_token(tenant, make_member, published):
    user = make_member(tenant, role=Role.MARKETING_OPS)
    user.is_staff = True
    user.save()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(url("new_draft", published)).status_code == 403
    assert not ScoringModel.objects.unscoped().filter(tenant=tenant, status=ModelStatus.DRAFT).exists()


# --- what-if and publish ----------------------------------------------------------------------------


def scored_leads(tenant, n_c_level: int, n_blank: int) -> None:
    for i in range(n_c_level):
        LeadFactory(tenant=tenant, email=f"ceo{i}@corp.example", job_title="CEO", company_size=600,
                    industry="Software", country="US")
    for i in range(n_blank):
        LeadFactory(tenant=tenant, email=f"x{i}@corp.example", company="")
    leads_score(tenant=tenant, cause="manual")


def lower_c_level_points(draft) -> None:
    ScoringRule.objects.unscoped().filter(model=draft, name="Title: C-level").update(points=5)


def test_whatif_page_shows_leads_moving_between_bands(ops_client, tenant, published, draft,
                                                      django_assert_max_num_queries):
    scored_leads(tenant, n_c_level=3, n_blank=2)
    assert set(Lead.objects.unscoped().filter(tenant=tenant).values_list("band", flat=True)) == {"sal", "cold"}
    lower_c_level_points(draft)  # fit 70 → 50: SAL → MQL

    with django_assert_max_num_queries(28):
        page = ops_client.get(url("publish", draft))

    assert page.status_code == 200
    whatif = {row["key"]: row for row in page.context["whatif"]}
    assert (whatif["sal"]["now"], whatif["sal"]["after"], whatif["sal"]["moving_out"]) == (3, 0, 3)
    assert (whatif["mql"]["now"], whatif["mql"]["after"], whatif["mql"]["moving_in"]) == (0, 3, 3)
    assert (whatif["cold"]["now"], whatif["cold"]["after"]) == (2, 2)
    assert page.context["whatif"] == model_whatif(model=draft)
    assert page.context["can_publish"] and not page.context["problems"]
    body = page.content.decode()
    assert "Publish v2" in body and "+3" in body and "−3" in body
    changes = {c["name"]: c for c in page.context["rule_changes"]}
    assert changes["Title: C-level"]["kind"] == "changed" and "25 → 5" in changes["Title: C-level"]["details"]


def test_whatif_query_count_does_not_grow_with_leads(ops_client, tenant, published, draft,
                                                     django_assert_max_num_queries):
    scored_leads(tenant, n_c_level=40, n_blank=40)
    with django_assert_max_num_queries(28):
        assert ops_client.get(url("publish", draft)).status_code == 200


def test_publish_makes_the_draft_active_and_rescores_every_lead(ops_client, tenant, published, draft,
                                                                django_capture_on_commit_callbacks):
    scored_leads(tenant, n_c_level=2, n_blank=0)
    lower_c_level_points(draft)
    with django_capture_on_commit_callbacks(execute=True):
        response = ops_client.post(url("publish", draft), follow=True)
    assert response.redirect_chain[-1][0] == url("change", draft)
    assert "re-scored in the background" in response.content.decode()
    draft.refresh_from_db()
    published.refresh_from_db()
    assert (draft.status, published.status) == (ModelStatus.PUBLISHED, ModelStatus.RETIRED)
    assert Membership.objects.unscoped().get(user=draft.published_by).role == Role.MARKETING_OPS
    assert set(Lead.objects.unscoped().filter(tenant=tenant).values_list("band", "scoring_model_id")) == {
        ("mql", draft.pk)}
    # publishing twice (a double click, a retried request) changes nothing more
    again = ops_client.post(url("publish", draft), follow=True)
    assert "only a draft can be published" in again.content.decode()
    assert ScoringModel.objects.unscoped().filter(tenant=tenant, status=ModelStatus.PUBLISHED).get() == draft


def test_publish_is_refused_while_the_draft_has_problems(ops_client, tenant, published, draft):
    ScoringRule.objects.unscoped().create(tenant=tenant, model=draft, name="Bad", category="behavioral",
                                          operator="signal", signal_type="carrier_pigeon", points=5)
    ScoreBand.objects.unscoped().filter(model=draft, key="warm").update(min_score=25)

    page = ops_client.get(url("publish", draft))
    assert page.status_code == 200
    problems = " ".join(page.context["problems"])
    assert "carrier_pigeon" in problems and "Scores 21–24 fall in no band" in problems
    assert not page.context["can_publish"]
    assert "disabled" in page.content.decode()

    response = ops_client.post(url("publish", draft), follow=True)
    assert "carrier_pigeon" in response.content.decode()
    draft.refresh_from_db()
    published.refresh_from_db()
    assert (draft.status, published.status) == (ModelStatus.DRAFT, ModelStatus.PUBLISHED)


def test_publish_needs_a_csrf_token(tenant, make_member, draft):
    user = make_member(tenant, role=Role.MARKETING_OPS)
    user.is_staff = True
    user.save()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(url("publish", draft)).status_code == 403
    draft.refresh_from_db()
    assert draft.status == ModelStatus.DRAFT


def test_publish_page_of_a_published_version_sends_back_to_it(ops_client, published):
    response = ops_client.get(url("publish", published), follow=True)
    assert response.redirect_chain[-1][0] == url("change", published)
    assert "only a draft can be published" in response.content.decode()


# --- bad input: refused at save with a message on the field, nothing saved ---------------------------------


def post_expecting_errors(client, draft, edit) -> object:
    page = client.get(url("change", draft))
    data = post_data(page)
    edit(page, data)
    before = rows(draft)
    response = client.post(url("change", draft), data)
    assert response.status_code == 200
    assert rows(draft) == before  # nothing saved, not even the valid rows
    return response


def rule_row_errors(response, name: str) -> dict:
    _i, form = form_for(response, "rules", name)
    return {k: list(v) for k, v in form.errors.items()}


@pytest.mark.parametrize(("name", "changes", "field", "message"), [
    ("Negative: student email", {"value": "(unclosed"}, "value", "Invalid regular expression"),
    ("Industry: target", {"field": "favourite_colour"}, "field", "Unknown field 'favourite_colour'"),
    ("Web: pricing page view", {"signal_type": "carrier_pigeon"}, "signal_type", "Unknown signal type"),
    ("Title: C-level", {"points": "lots"}, "points", "Points must be a whole number."),
    ("Email: unsubscribe", {"cap": "-5"}, "cap", "A cap cannot be below zero."),
    ("Company size: 20-99", {"value": '{"min": 99, "max": 20}'}, "value", "minimum is above its maximum"),
    ("Company size: 20-99", {"operator": "keywords"}, "operator", "does not apply to the number field"),
    ("Negative: free email", {"value": "yes"}, "value", "This operator takes no value."),
])
def test_bad_rule_is_refused_with_a_message_on_its_field(ops_client, draft, name, changes, field, message):
    # a valid edit elsewhere in the same post must not be saved either
    def edit(page, data):
        i, _ = form_for(page, "rules", name)
        for key, value in changes.items():
            data[f"rules-{i}-{key}"] = value
        k, _ = form_for(page, "rules", "Web: blog post view")
        data[f"rules-{k}-points"] = "4"

    response = post_expecting_errors(ops_client, draft, edit)
    errors = rule_row_errors(response, name)
    assert any(message in m for m in errors.get(field, [])), errors


def test_new_rule_with_bad_points_gets_one_clear_message(ops_client, draft):
    def edit(page, data):
        add_rule(data, name="Plan", field="company", operator="contains", value="inc", points="ten")

    response = post_expecting_errors(ops_client, draft, edit)
    assert rule_row_errors(response, "Plan")["points"] == ["Points must be a whole number."]


@pytest.mark.parametrize(("edits", "message"), [
    ({"Warm": {"min_score": "15"}}, "Cold (0–20) overlaps Warm (15–40)"),
    ({"Warm": {"min_score": "25"}}, "Scores 21–24 fall in no band"),
    ({"SQL": {"max_score": "90"}}, "The highest band must end at 100"),
    ({"SQL": {"key": "mql"}}, "Band keys must be unique."),
])
def test_overlapping_or_gapped_bands_are_refused(ops_client, draft, edits, message):
    def edit(page, data):
        for name, values in edits.items():
            i, _ = form_for(page, "bands", name)
            data.update({f"bands-{i}-{k}": v for k, v in values.items()})

    response = post_expecting_errors(ops_client, draft, edit)
    problems = list(formset(response, "bands").non_form_errors())
    assert any(message in p for p in problems), problems


def test_deleting_a_band_that_leaves_a_gap_is_refused(ops_client, draft):
    def edit(page, data):
        i, _ = form_for(page, "bands", "Warm")
        data[f"bands-{i}-DELETE"] = "on"

    response = post_expecting_errors(ops_client, draft, edit)
    assert any("21–40 fall in no band" in p for p in formset(response, "bands").non_form_errors())


def test_band_ending_above_100_gets_a_message_on_its_max(ops_client, draft):
    def edit(page, data):
        i, _ = form_for(page, "bands", "SQL")
        data[f"bands-{i}-max_score"] = "120"

    response = post_expecting_errors(ops_client, draft, edit)
    _i, form = form_for(response, "bands", "SQL")
    assert "a band ends at 100 at most" in " ".join(form.errors["max_score"])


def test_model_thresholds_in_the_wrong_order_are_refused(ops_client, draft):
    def edit(page, data):
        data["cold_threshold"] = "80"

    response = post_expecting_errors(ops_client, draft, edit)
    assert response.context["adminform"].form.errors["hot_threshold"] == [
        "The cold threshold must be below the hot threshold."]


# --- agent switches -------------------------------------------------------------------------------------


def test_tenant_admin_switches_an_agent_off_and_it_is_audited(admin_client_, tenant, other_tenant):
    AgentSetting.objects.unscoped().create(tenant=other_tenant, agent=Agent.SCORING, enabled=True)
    response = admin_client_.post(reverse("admin:tenancy_agentsetting_add"), {"agent": "scoring"})
    assert response.status_code == 302
    assert not agent_enabled(tenant=tenant, agent=Agent.SCORING)
    assert agent_enabled(tenant=other_tenant, agent=Agent.SCORING)
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="agent_setting.created")
    assert event.actor_kind == "user"

    setting = AgentSetting.objects.unscoped().get(tenant=tenant)
    response = admin_client_.post(reverse("admin:tenancy_agentsetting_changelist"),
                                  {"action": "switch_on", "_selected_action": [setting.pk]})
    assert response.status_code == 302
    assert agent_enabled(tenant=tenant, agent=Agent.SCORING)
    assert AuditEvent.objects.unscoped().get(tenant=tenant, action="agent_setting.updated").changes == {
        "enabled": [False, True]}


def test_a_second_setting_for_the_same_agent_is_refused_on_the_field(admin_client_, tenant):
    AgentSetting.objects.unscoped().create(tenant=tenant, agent=Agent.ROUTING, enabled=False)
    response = admin_client_.post(reverse("admin:tenancy_agentsetting_add"), {"agent": "routing", "enabled": "on"})
    assert response.status_code == 200
    assert "already has a setting" in response.context["adminform"].form.errors["agent"][0]
    assert AgentSetting.objects.unscoped().filter(tenant=tenant).count() == 1


def test_agent_settings_are_tenant_scoped(admin_client_, tenant, other_tenant, make_member):
    mine = AgentSetting.objects.unscoped().create(tenant=tenant, agent=Agent.SLA, enabled=False)
    theirs = AgentSetting.objects.unscoped().create(tenant=other_tenant, agent=Agent.NURTURE, enabled=False)
    listed = admin_client_.get(reverse("admin:tenancy_agentsetting_changelist")).context["cl"].result_list
    assert list(listed) == [mine]
    response = admin_client_.get(reverse("admin:tenancy_agentsetting_change", args=[theirs.pk]), follow=True)
    assert b"doesn" in response.content
    admin_client_.post(reverse("admin:tenancy_agentsetting_changelist"),
                       {"action": "switch_on", "_selected_action": [theirs.pk]})
    theirs.refresh_from_db()
    assert theirs.enabled is False


def test_marketing_ops_sees_agent_switches_but_cannot_flip_them(ops_client, tenant):
    setting = AgentSetting.objects.unscoped().create(tenant=tenant, agent=Agent.SCORING, enabled=False)
    assert ops_client.get(reverse("admin:tenancy_agentsetting_changelist")).status_code == 200
    assert ops_client.get(reverse("admin:tenancy_agentsetting_add")).status_code == 403
    response = ops_client.post(reverse("admin:tenancy_agentsetting_change", args=[setting.pk]), {"enabled": "on"})
    assert response.status_code == 403
    setting.refresh_from_db()
    assert setting.enabled is False


# --- the score explanation on the lead page ------------------------------------------------------------------


def test_lead_page_explains_the_score_rule_by_rule(admin_client_, tenant, published):
    lead = LeadFactory(tenant=tenant, email="ceo@corp.example", job_title="CEO", company_size=600,
                       industry="Software", country="US")
    leads_score(tenant=tenant, cause="manual")
    lead.refresh_from_db()
    page = admin_client_.get(reverse("admin:leads_lead_change", args=[lead.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    for rule, points in [("Title: C-level", "+25"), ("Company size: 500+ employees", "+20"),
                         ("Industry: target", "+15"), ("Geography: primary market", "+10")]:
        assert f"<td>{rule}</td>" in body and f">{points}</td>" in body
    assert "Score explanation" in body and lead.lead_class_reason in body
    assert f">{lead.score}</th>" in body and "v1" in body


def test_unscored_lead_says_so(tenant):
    assert score_breakdown_html(LeadFactory(tenant=tenant)) == "Not scored yet."
