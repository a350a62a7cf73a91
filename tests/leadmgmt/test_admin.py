"""Tenant-scoped admin: each tenant's staff see and reach only their own rows; writes are audited."""
import re
from html import unescape
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leads.models import Lead, LeadForm
from tests.support.factories import AccountFactory, LeadFactory, LeadFormFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_client(client, tenant, make_member):
    user = make_member(tenant, role=Role.MARKETING_OPS)
    user.is_staff = True
    user.save()
    client.force_login(user)
    return client


@pytest.fixture
def admin_member_client(client, tenant, make_member):
    user = make_member(tenant, role=Role.ADMIN)
    user.is_staff = True
    user.save()
    client.force_login(user)
    return client


def test_lead_changelist_shows_only_own_tenant(ops_client, tenant, other_tenant):
    mine = LeadFactory(tenant=tenant, email="mine@acme.test")
    LeadFactory(tenant=other_tenant, email="theirs@globex.test")
    response = ops_client.get(reverse("admin:leads_lead_changelist"))
    assert response.status_code == 200
    body = response.content.decode()
    assert mine.email in body
    assert "theirs@globex.test" not in body


def test_other_tenants_lead_is_unreachable_by_url(ops_client, other_tenant):
    theirs = LeadFactory(tenant=other_tenant, email="theirs@globex.test")
    response = ops_client.get(reverse("admin:leads_lead_change", args=[theirs.pk]), follow=True)
    assert "theirs@globex.test" not in response.content.decode()
    assert b"doesn" in response.content  # "… with ID … doesn't exist. Perhaps it was deleted?"


@pytest.mark.parametrize("url_name", ["admin:tenancy_tenant_changelist", "admin:auth_user_changelist",
                                      "admin:django_celery_beat_periodictask_changelist"])
def test_superuser_only_models_are_refused_to_tenant_staff(ops_client, url_name):
    assert ops_client.get(reverse(url_name)).status_code == 403


def test_marketing_ops_cannot_edit_memberships_or_keys(ops_client):
    assert ops_client.get(reverse("admin:tenancy_apikey_add")).status_code == 403
    assert ops_client.get(reverse("admin:tenancy_membership_changelist")).status_code == 403


def test_admin_edit_of_a_lead_is_audited_and_marked_as_edited(admin_member_client, tenant):
    lead = LeadFactory(tenant=tenant, email="x@acme.test", company="Acme", job_title="")
    url = reverse("admin:leads_lead_change", args=[lead.pk])
    page = admin_member_client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update({"job_title": "VP Sales", "attributes": "{}"})
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = admin_member_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    lead = Lead.objects.unscoped().get(pk=lead.pk)
    assert lead.job_title == "VP Sales"
    assert "job_title" in lead.edited_fields
    event = AuditEvent.objects.unscoped().get(action="lead.updated", object_id=str(lead.pk))
    assert event.changes["job_title"] == ["", "VP Sales"]
    assert event.actor_kind == "user"


def test_owner_choices_are_members_of_the_tenant_only(admin_member_client, tenant, other_tenant, make_member):
    # A lead's owner changes only through routing (read-only in its admin form); an Account's
    # owner (named-account routing) is chosen in the admin, among the tenant's members only.
    rep = make_member(tenant, role=Role.SDR)
    outsider = make_member(other_tenant, role=Role.SDR)
    UserFactory()
    account = AccountFactory(tenant=tenant)
    page = admin_member_client.get(reverse("admin:leads_account_change", args=[account.pk]))
    owner_qs = page.context["adminform"].form.fields["owner"].queryset
    assert rep in owner_qs and outsider not in owner_qs


def test_lead_page_shows_its_touches_to_tenant_staff(admin_member_client, tenant):
    from leads.models import Touch

    lead = LeadFactory(tenant=tenant)
    Touch.objects.unscoped().create(tenant=tenant, lead=lead, kind="created", payload={"utm_source": "linkedin-xyz"})
    page = admin_member_client.get(reverse("admin:leads_lead_change", args=[lead.pk]))
    assert "linkedin-xyz" in page.content.decode()


def test_lead_form_admin_shows_an_embeddable_snippet(admin_member_client, lead_form):
    page = admin_member_client.get(reverse("admin:leads_leadform_change", args=[lead_form.pk]))
    body = page.content.decode()
    assert lead_form.key in body and "/api/v1/intake/" in body


# --- lead forms: the ready-to-paste snippet ---------------------------------------------------------


class _SnippetParser(HTMLParser):
    """Collects the form, its inputs, the labels (by `for`) and scripts of a snippet."""

    def __init__(self):
        super().__init__()
        self.form, self.inputs, self.labels, self.scripts, self.hidden_blocks = None, [], {}, [], []
        self._label_for, self._label_text, self._in_hidden_block = None, [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.form = attrs
        elif tag == "input":
            self.inputs.append({**attrs, "_in_hidden_block": self._in_hidden_block > 0})
        elif tag == "label":
            self._label_for, self._label_text = attrs.get("for"), []
        elif tag == "script":
            self.scripts.append(attrs)
        elif tag == "div" and attrs.get("aria-hidden") == "true":
            self._in_hidden_block += 1

    def handle_endtag(self, tag):
        if tag == "label" and self._label_for:
            self.labels[self._label_for] = " ".join("".join(self._label_text).split())
            self._label_for = None
        elif tag == "div" and self._in_hidden_block:
            self._in_hidden_block -= 1

    def handle_data(self, data):
        if self._label_for is not None:
            self._label_text.append(data)


def _snippet(client, lead_form) -> tuple[str, str]:
    page = client.get(reverse("admin:leads_leadform_change", args=[lead_form.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    match = re.search(r'<textarea id="lead-form-snippet"[^>]*>(.*?)</textarea>', html, re.S)
    assert match, "the snippet is shown in a read-only text area"
    return unescape(match.group(1)), html


def test_lead_form_snippet_is_a_complete_plain_html_form(ops_client, lead_form):
    snippet, page = _snippet(ops_client, lead_form)
    parsed = _SnippetParser()
    parsed.feed(snippet)
    assert parsed.form["method"] == "post"
    assert parsed.form["action"] == "http://testserver/api/v1/intake/"  # absolute: it is pasted on other sites
    inputs = {i["name"]: i for i in parsed.inputs}
    assert inputs["form_key"] == {"type": "hidden", "name": "form_key", "value": lead_form.key,
                                  "_in_hidden_block": False}
    for name, label in [("first_name", "First name"), ("last_name", "Last name"), ("email", "Work email *"),
                        ("phone", "Phone"), ("company", "Company"), ("job_title", "Job title"),
                        ("country", "Country")]:
        assert parsed.labels[inputs[name]["id"]] == label, name
    assert "required" in inputs["email"] and inputs["email"]["type"] == "email"
    assert inputs["marketing_consent"]["type"] == "checkbox"
    honeypot = inputs[settings.INTAKE_HONEYPOT_FIELD]
    assert honeypot["_in_hidden_block"] and honeypot["tabindex"] == "-1" and honeypot["autocomplete"] == "off"
    assert f"taken to {lead_form.success_url}" in snippet
    assert all("src" not in script for script in parsed.scripts), "no external script: nothing from a CDN"
    assert not re.search(r'<(?:script|link)[^>]+(?:src|href)="https?://', page), "the admin page loads no CDN"
    assert 'data-copy-snippet="lead-form-snippet"' in page and 'src="/static/js/lead_form_snippet.js"' in page


def _snippet_submission(snippet: str, **values) -> dict:
    parsed = _SnippetParser()
    parsed.feed(snippet)
    data = {i["name"]: i.get("value", "") for i in parsed.inputs if i.get("type") != "checkbox"}
    data.update(values)
    return data


def test_the_snippet_posted_from_an_allowed_site_captures_a_lead_and_redirects(ops_client, lead_form, client):
    snippet, _page = _snippet(ops_client, lead_form)
    data = _snippet_submission(snippet, email="buyer@bigco.test", first_name="Bea", company="BigCo",
                               marketing_consent="yes", page_url="https://www.acme-site.test/pricing")
    headers = {"HTTP_ORIGIN": "https://www.acme-site.test", "HTTP_SEC_FETCH_MODE": "navigate",
               "HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}
    response = Client().post("/api/v1/intake/", data, **headers)
    assert response.status_code == 303 and response["Location"] == lead_form.success_url
    lead = Lead.objects.unscoped().get(tenant=lead_form.tenant, email="buyer@bigco.test")
    assert (lead.first_name, lead.company, lead.marketing_consent, lead.form_id) == ("Bea", "BigCo", True,
                                                                                    lead_form.pk)


def test_a_bot_filling_the_snippets_honeypot_is_dropped(ops_client, lead_form):
    snippet, _page = _snippet(ops_client, lead_form)
    data = _snippet_submission(snippet, email="bot@spam.test", **{settings.INTAKE_HONEYPOT_FIELD: "http://spam"})
    response = Client().post("/api/v1/intake/", data, HTTP_ORIGIN="https://www.acme-site.test",
                             HTTP_SEC_FETCH_MODE="navigate")
    assert response.status_code == 303  # the bot is told it worked ...
    assert not Lead.objects.unscoped().filter(email="bot@spam.test").exists()  # ... and nothing is kept


def test_snippet_warns_when_no_site_may_post_and_escapes_the_form_name(ops_client, tenant):
    form = LeadFormFactory(tenant=tenant, name='Fair "2025" <booth>', allowed_origins=[], success_url="")
    snippet, page = _snippet(ops_client, form)
    assert "No site may post this form from a browser yet" in page
    assert "leadmgmt's thank-you page" in snippet
    assert '"Fair &quot;2025&quot; &lt;booth&gt;"' in snippet  # the name cannot break out of the comment


def test_marketing_ops_create_a_lead_form_and_it_is_audited_in_their_tenant(ops_client, tenant, other_tenant):
    response = ops_client.post(reverse("admin:leads_leadform_add"), {
        "name": "Webinar signup", "default_source": "webinar", "allowed_origins": '["https://events.acme.test"]',
        "success_url": "https://events.acme.test/thanks", "is_active": "on", "tenant": other_tenant.pk})
    assert response.status_code == 302
    form = LeadForm.objects.unscoped().get(name="Webinar signup")
    assert form.tenant == tenant and form.key.startswith("lf_")  # a posted tenant id is ignored
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="lead_form.created",
                                                object_id=str(form.pk)).exists()


def test_a_bad_success_url_is_a_message_beside_the_field(ops_client):
    response = ops_client.post(reverse("admin:leads_leadform_add"), {
        "name": "Broken", "default_source": "web_form", "allowed_origins": "[]", "success_url": "not a url"})
    assert response.status_code == 200
    assert "success_url" in response.context["adminform"].form.errors
    assert not LeadForm.objects.unscoped().filter(name="Broken").exists()


# --- the rejection and disqualification reason taxonomy ------------------------------------------------


def _reason(tenant, code, **kwargs):
    from routing.models import RejectionReason

    values = {"label": code.replace("_", " ").title(), "position": 10, **kwargs}
    return RejectionReason.objects.unscoped().create(tenant=tenant, code=code, **values)


def _reason_post(client, reason=None, **data):
    values = {"code": "wrong_region", "label": "Outside our regions", "position": "120", "is_active": "on", **data}
    values = {k: v for k, v in values.items() if v is not None}
    url = (reverse("admin:routing_rejectionreason_change", args=[reason.pk]) if reason
           else reverse("admin:routing_rejectionreason_add"))
    return client.post(url, values)


def test_marketing_ops_add_a_reason_to_their_taxonomy_and_it_is_audited(ops_client, tenant, other_tenant):
    from routing.models import RejectionReason

    _reason(other_tenant, "wrong_region")  # the same code in another tenant is no conflict
    response = _reason_post(ops_client, nurture="on")
    assert response.status_code == 302
    reason = RejectionReason.objects.unscoped().get(tenant=tenant, code="wrong_region")
    assert reason.nurture and reason.is_active and reason.label == "Outside our regions"
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="rejection_reason.created",
                                                object_id=str(reason.pk)).exists()


@pytest.mark.parametrize(("data", "field"), [
    ({"code": "not_icp"}, "code"),  # already used in this tenant
    ({"code": "not icp!"}, "code"),  # not a slug
    ({"code": ""}, "code"),
    ({"label": ""}, "label"),
])
def test_a_bad_reason_is_a_message_beside_its_field_and_nothing_is_written(ops_client, tenant, data, field):
    from routing.models import RejectionReason

    _reason(tenant, "not_icp")
    before = RejectionReason.objects.unscoped().count()
    response = _reason_post(ops_client, **data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert RejectionReason.objects.unscoped().count() == before


def test_the_code_of_a_reason_leads_use_cannot_change_but_its_label_can(ops_client, tenant):
    reason = _reason(tenant, "no_budget", label="No budget")
    _reason(tenant, "not_now")
    LeadFactory(tenant=tenant, status="rejected", rejection_reason="no_budget")
    response = _reason_post(ops_client, reason, code="budget", label="No budget")
    assert "renaming the code would cut" in str(response.context["adminform"].form.errors["code"])
    assert _reason_post(ops_client, reason, code="no_budget", label="No budget this year").status_code == 302
    reason.refresh_from_db()
    assert (reason.code, reason.label) == ("no_budget", "No budget this year")


def test_the_last_active_reason_cannot_be_switched_off(ops_client, tenant):
    only = _reason(tenant, "not_icp")
    _reason(tenant, "retired", is_active=False)
    response = _reason_post(ops_client, only, code="not_icp", label="Not ICP", is_active=None)
    assert "last active reason" in str(response.context["adminform"].form.errors["is_active"])
    only.refresh_from_db()
    assert only.is_active


def test_a_reason_leads_use_is_never_deleted_one_by_one_or_in_bulk(ops_client, tenant):
    from routing.models import RejectionReason

    used, unused = _reason(tenant, "spam"), _reason(tenant, "duplicate")
    _reason(tenant, "not_icp")
    LeadFactory(tenant=tenant, status="rejected", rejection_reason="spam")
    page = ops_client.get(reverse("admin:routing_rejectionreason_delete", args=[used.pk]))
    assert "1 lead(s) were rejected or disqualified with it" in page.content.decode()
    ops_client.post(reverse("admin:routing_rejectionreason_delete", args=[used.pk]), {"post": "yes"})
    ops_client.post(reverse("admin:routing_rejectionreason_changelist"),
                    {"action": "delete_selected", "_selected_action": [used.pk, unused.pk], "post": "yes"})
    assert RejectionReason.objects.unscoped().filter(pk__in=[used.pk, unused.pk]).count() == 2
    ops_client.post(reverse("admin:routing_rejectionreason_delete", args=[unused.pk]), {"post": "yes"})
    assert not RejectionReason.objects.unscoped().filter(pk=unused.pk).exists()


def test_reason_list_counts_the_tenants_leads_using_each_reason(ops_client, tenant, other_tenant,
                                                                django_assert_max_num_queries):
    _reason(tenant, "spam")
    _reason(other_tenant, "spam")
    for _ in range(2):
        LeadFactory(tenant=tenant, status="rejected", rejection_reason="spam")
    LeadFactory(tenant=other_tenant, status="rejected", rejection_reason="spam")
    with django_assert_max_num_queries(12):
        page = ops_client.get(reverse("admin:routing_rejectionreason_changelist"))
    rows = list(page.context["cl"].result_list)
    assert [(r.code, r.tenant_id, r._leads_using) for r in rows] == [("spam", tenant.pk, 2)]


# --- roles: who gets which admin ---------------------------------------------------------------------

# What each role may do with representative admins: "edit" (add page opens), "view" (list opens, add is
# refused) or "none" (403). Reps, AEs and managers work in the workspace pages and get nothing here, even
# when their user is staff because of a role in another tenant.
ROLE_ACCESS = {
    "scoring.scoringmodel": {"marketing_ops": "edit", "admin": "edit"},
    "routing.routingrule": {"marketing_ops": "edit", "admin": "edit"},
    "routing.territory": {"marketing_ops": "edit", "admin": "edit"},
    "routing.slapolicy": {"marketing_ops": "edit", "admin": "edit"},
    "routing.businesshours": {"marketing_ops": "edit", "admin": "edit"},
    "routing.rejectionreason": {"marketing_ops": "edit", "admin": "edit"},
    "leads.leadform": {"marketing_ops": "edit", "admin": "edit"},
    "leads.signaltype": {"marketing_ops": "edit", "admin": "edit"},
    "leads.lead": {"marketing_ops": "view", "admin": "edit"},
    "routing.assignment": {"marketing_ops": "view", "admin": "view"},
    "audit.auditevent": {"marketing_ops": "view", "admin": "view"},
    "tenancy.team": {"marketing_ops": "view", "admin": "edit"},
    "tenancy.agentsetting": {"marketing_ops": "view", "admin": "edit"},
    "tenancy.membership": {"marketing_ops": "none", "admin": "edit"},
    "tenancy.apikey": {"marketing_ops": "none", "admin": "edit"},
    "tenancy.tenant": {"marketing_ops": "none", "admin": "none"},
    "auth.user": {"marketing_ops": "none", "admin": "none"},
}


def _access(client, label: str) -> str:
    app_label, model_name = label.split(".")
    listing = client.get(reverse(f"admin:{app_label}_{model_name}_changelist")).status_code
    adding = client.get(reverse(f"admin:{app_label}_{model_name}_add")).status_code
    assert listing in (200, 403) and adding in (200, 403), (label, listing, adding)
    if adding == 200:
        return "edit"
    return "view" if listing == 200 else "none"


@pytest.mark.parametrize("role", [Role.SDR, Role.AE, Role.MANAGER, Role.MARKETING_OPS, Role.ADMIN])
def test_each_role_gets_its_admins_and_no_other(client, tenant, make_member, role):
    user = make_member(tenant, role=role)
    user.is_staff = True
    user.save()
    client.force_login(user)
    got = {label: _access(client, label) for label in ROLE_ACCESS}
    expected = {label: roles.get(role, "none") for label, roles in ROLE_ACCESS.items()}
    assert got == expected


def test_reps_who_are_not_staff_are_sent_to_the_admin_sign_in(client, tenant, make_member):
    client.force_login(make_member(tenant, role=Role.SDR))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_marketing_ops_admin_index_is_grouped_by_what_they_tune(ops_client):
    page = ops_client.get(reverse("admin:index"))
    sections = {app["name"]: [m["object_name"] for m in app["models"]] for app in page.context["app_list"]}
    assert list(sections)[:4] == ["Scoring", "Routing and SLAs", "Lead capture", "Reasons to reject or disqualify"]
    assert sections["Scoring"] == ["ScoringModel", "PredictiveModel"]
    assert sections["Routing and SLAs"] == ["RoutingRule", "Territory", "SlaPolicy", "BusinessHours",
                                            "RoutingSettings"]
    assert sections["Lead capture"] == ["LeadForm", "SignalType"]
    assert sections["Reasons to reject or disqualify"] == ["RejectionReason"]
    listed = [name for models in sections.values() for name in models]
    assert len(listed) == len(set(listed)), "every model once"
    assert not {"Membership", "ApiKey", "Tenant", "User", "Group", "PeriodicTask"} & set(listed)
    assert sections["Workspace: people, API keys, agents"] == ["Team", "AgentSetting"]
    body = page.content.decode()
    assert body.index("Routing and SLAs") < body.index("History (read-only)")


def test_tenant_admin_index_adds_people_and_keys_and_reps_see_an_empty_index(admin_member_client, client, tenant,
                                                                             make_member):
    page = admin_member_client.get(reverse("admin:index"))
    sections = {app["name"]: [m["object_name"] for m in app["models"]] for app in page.context["app_list"]}
    assert sections["Workspace: people, API keys, agents"] == ["Team", "Membership", "ApiKey", "AgentSetting"]
    assert "Platform (superusers)" not in sections
    rep = make_member(tenant, role=Role.MANAGER)
    rep.is_staff = True
    rep.save()
    other = Client()
    other.force_login(rep)
    assert other.get(reverse("admin:index")).context["app_list"] == []
    # an app's own page still lists that app's models (Django's per-app view is not regrouped)
    routing = admin_member_client.get(reverse("admin:app_list", args=["routing"]))
    assert routing.status_code == 200 and routing.context["app_list"][0]["app_label"] == "routing"
