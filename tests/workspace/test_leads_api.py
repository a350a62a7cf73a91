"""/api/v1/leads/: visibility by role, filters, ordering, edits, sub-resources, tenant isolation."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import ApiScope, Membership, Role
from leads.models import Activity, Lead, Signal, StageTransition, Touch, TouchKind
from tests.support.factories import (
    AccountFactory,
    LeadFactory,
    TeamFactory,
    UserFactory,
    api_key_for,
)

pytestmark = pytest.mark.django_db
LIST = "/api/v1/leads/"


def detail(lead, suffix="") -> str:
    return f"/api/v1/leads/{lead.id}/{suffix}"


def ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def key_client(tenant, scopes=None) -> APIClient:
    _key, raw = api_key_for(tenant, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def team_setup(tenant, make_member):
    """Two teams: a manager and a rep in each, plus an admin and a marketing-ops user."""
    east, west = TeamFactory(tenant=tenant, name="East"), TeamFactory(tenant=tenant, name="West")
    people = {
        "manager": make_member(tenant, Role.MANAGER, team=east),
        "rep": make_member(tenant, Role.SDR, team=east),
        "ae": make_member(tenant, Role.AE, team=east),
        "west_rep": make_member(tenant, Role.SDR, team=west),
        "admin": make_member(tenant, Role.ADMIN),
        "ops": make_member(tenant, Role.MARKETING_OPS),
    }
    leads = {
        "rep": LeadFactory(tenant=tenant, owner=people["rep"]),
        "ae": LeadFactory(tenant=tenant, owner=people["ae"]),
        "manager": LeadFactory(tenant=tenant, owner=people["manager"]),
        "west": LeadFactory(tenant=tenant, owner=people["west_rep"]),
        "unassigned": LeadFactory(tenant=tenant),
    }
    return people, {name: str(lead.id) for name, lead in leads.items()}, leads


# --- Visibility ----------------------------------------------------------------------------


def test_list_with_api_key_shows_all_and_only_the_tenants_leads(tenant, other_tenant, api_client):
    mine = {str(LeadFactory(tenant=tenant).id) for _ in range(3)}
    LeadFactory(tenant=other_tenant)
    response = api_client.get(LIST)
    assert ids(response) == mine
    assert set(response.json()) == {"count", "next", "previous", "results"} and response.json()["count"] == 3
    assert ids(key_client(other_tenant).get(LIST)).isdisjoint(mine)


def test_reps_see_their_own_leads_managers_their_team_admins_everything(team_setup, client_for):
    people, lead_ids, _ = team_setup
    assert ids(client_for(people["rep"]).get(LIST)) == {lead_ids["rep"]}
    assert ids(client_for(people["ae"]).get(LIST)) == {lead_ids["ae"]}
    assert ids(client_for(people["manager"]).get(LIST)) == {
        lead_ids["rep"], lead_ids["ae"], lead_ids["manager"], lead_ids["unassigned"]
    }
    everything = set(lead_ids.values())
    assert ids(client_for(people["admin"]).get(LIST)) == everything
    assert ids(client_for(people["ops"]).get(LIST)) == everything


def test_a_manager_also_sees_the_leads_of_a_team_they_manage_without_being_in_it(team_setup, client_for):
    people, lead_ids, leads = team_setup
    west = Membership.objects.unscoped().get(user=people["west_rep"]).team
    west.manager = people["manager"]
    west.save(update_fields=["manager"])
    manager = client_for(people["manager"])
    assert lead_ids["west"] in ids(manager.get(LIST))
    assert manager.get(detail(leads["west"])).status_code == 200


def test_a_lead_you_may_not_see_is_the_same_404_as_a_missing_one(team_setup, client_for, other_tenant):
    people, _lead_ids, leads = team_setup
    foreign = LeadFactory(tenant=other_tenant)
    rep = client_for(people["rep"])
    assert rep.get(detail(leads["rep"])).status_code == 200
    answers = [rep.get(detail(lead)) for lead in (leads["west"], foreign)]
    answers.append(rep.get("/api/v1/leads/00000000-0000-4000-8000-000000000000/"))
    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    assert rep.get("/api/v1/leads/not-a-uuid/").status_code == 404


def test_member_of_no_tenant_and_anonymous_are_refused(tenant, client_for):
    assert client_for(UserFactory()).get(LIST).status_code == 403
    assert APIClient().get(LIST).status_code == 401


def test_api_key_scopes(tenant):
    lead = LeadFactory(tenant=tenant)
    signals_only = key_client(tenant, scopes=[ApiScope.SIGNALS_WRITE])
    read_only = key_client(tenant, scopes=[ApiScope.LEADS_READ])
    assert signals_only.get(LIST).status_code == 403
    assert read_only.get(detail(lead)).status_code == 200
    response = read_only.patch(detail(lead), {"first_name": "Changed"}, format="json")
    assert response.status_code == 403 and "leads:write" in response.json()["errors"]["detail"][0]


# --- Detail and list shape -----------------------------------------------------------------


def test_detail_has_scoring_routing_and_contact_fields(tenant, api_client, make_member):
    from leadmgmt.audit.actors import SYSTEM
    from leads.models import Signal
    from scoring.services import leads_score, scoring_default_model_create

    scoring_default_model_create(tenant=tenant, actor=SYSTEM)
    owner = make_member(tenant, Role.SDR)
    account = AccountFactory(tenant=tenant, domain="acme.example", name="Acme")
    lead = LeadFactory(tenant=tenant, owner=owner, account=account, job_title="CEO", company_size=250,
                       sla_due_at=timezone.now() + timedelta(hours=1), utm_source="google",
                       last_activity_at=timezone.now())
    Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="pricing_page_view", occurred_at=timezone.now())
    leads_score(tenant=tenant, lead_ids=[lead.pk], cause="manual")
    body = api_client.get(detail(lead)).json()
    for name in ("id", "email", "first_name", "last_name", "company", "status", "stage", "owner", "account", "source",
                 "created_at", "score", "band", "lead_class", "sla_due_at", "score_breakdown", "utm_source",
                 "attributes", "is_personal_email", "possible_duplicate_of", "updated_at", "phone", "marketing_consent",
                 "fit_score", "engagement_score", "lead_class_reason", "is_hot"):
        assert name in body, name
    assert body["owner"] == {"id": owner.id, "email": owner.email, "name": owner.username}
    # CEO (25) at 100-499 (15) with a pricing page view (20): its account, one engaged person, scores the same.
    assert body["account"] == {"id": account.id, "domain": "acme.example", "name": "Acme", "score": 60,
                               "engaged_leads": 1}
    assert body["account_score"] == 60
    assert (body["score"], body["fit_score"], body["engagement_score"], body["band"]) == (60, 40, 20, "mql")
    breakdown = body["score_breakdown"]
    assert {(line["rule"], line["category"], line["points"]) for line in breakdown["lines"]} == {
        ("Title: C-level", "demographic", 25), ("Company size: 100-499", "firmographic", 15),
        ("Web: pricing page view", "behavioral", 20)}
    assert breakdown["raw_total"] == 60 == body["score"]
    assert breakdown["categories"] == {"demographic": 25, "firmographic": 15, "behavioral": 20, "engagement": 0}
    history = api_client.get(detail(lead) + "score-history/").json()["results"]
    assert [(h["old_score"], h["new_score"], h["new_band"], h["cause"]) for h in history] == [(None, 60, "mql", "manual")]


def test_an_unscored_lead_has_a_null_breakdown(tenant, api_client):
    lead = LeadFactory(tenant=tenant)
    body = api_client.get(detail(lead)).json()
    assert body["score"] is None and body["score_breakdown"] is None


def test_listing_50_leads_with_owners_and_accounts_has_no_n_plus_1(tenant, make_member, client_for, api_client,
                                                                     django_assert_max_num_queries):
    admin = make_member(tenant, Role.ADMIN)
    owners = [make_member(tenant, Role.SDR) for _ in range(5)]
    accounts = [AccountFactory(tenant=tenant) for _ in range(5)]
    for i in range(50):
        LeadFactory(tenant=tenant, owner=owners[i % 5], account=accounts[i % 5])
    client = client_for(admin)
    with django_assert_max_num_queries(6):
        response = client.get(LIST, {"page_size": 50})
    assert len(response.json()["results"]) == 50
    assert all(row["owner"] and row["account"] for row in response.json()["results"])
    with django_assert_max_num_queries(5):
        assert len(api_client.get(LIST, {"page_size": 50}).json()["results"]) == 50


# --- Filters and ordering ------------------------------------------------------------------


def test_filters(tenant, api_client, make_member):
    rep = make_member(tenant, Role.SDR)
    now = timezone.now()
    a = LeadFactory(tenant=tenant, first_name="Ada", last_name="Lovelace", email="ada@analytical.example",
                    company="Analytical Engines", status="contacted", stage="mql", owner=rep, source="webinar",
                    score=80, created_at=now - timedelta(days=10))
    b = LeadFactory(tenant=tenant, first_name="Grace", last_name="Hopper", email="grace@navy.example",
                    company="US Navy", status="new", stage="raw", source="web_form", score=30, created_at=now - timedelta(days=2))
    c = LeadFactory(tenant=tenant, first_name="Alan", last_name="Turing", email="alan@bletchley.example",
                    company="Bletchley Park", status="qualified", stage="sql", score=None, created_at=now)

    def found(**params):
        return ids(api_client.get(LIST, params))

    assert found(status="contacted") == {str(a.id)}
    assert api_client.get(LIST + "?status=new&status=qualified").json()["count"] == 2
    assert found(stage="sql") == {str(c.id)}
    assert found(owner=str(rep.id)) == {str(a.id)}
    assert found(owner="none") == {str(b.id), str(c.id)}
    assert found(source="WEBINAR") == {str(a.id)}
    assert found(score_min=50) == {str(a.id)}
    assert found(score_min=20, score_max=40) == {str(b.id)}
    assert found(created_after=(now - timedelta(days=5)).isoformat()) == {str(b.id), str(c.id)}
    assert found(created_before=(now - timedelta(days=5)).isoformat()) == {str(a.id)}
    assert found(q="LOVELACE") == {str(a.id)}
    assert found(q="navy") == {str(b.id)}          # company
    assert found(q="bletchley.example") == {str(c.id)}  # email
    assert found(q="ada engines") == {str(a.id)}   # every word must match somewhere
    assert found(q="nobody") == set()


def test_owner_me_filter_for_a_signed_in_rep(tenant, make_member, client_for):
    manager = make_member(tenant, Role.MANAGER)
    mine = LeadFactory(tenant=tenant, owner=manager)
    LeadFactory(tenant=tenant)
    assert ids(client_for(manager).get(LIST, {"owner": "me"})) == {str(mine.id)}


@pytest.mark.parametrize("params", [{"score_min": "lots"}, {"status": "bogus"}, {"created_after": "last tuesday"},
                                    {"owner": "someone"}, {"owner": "ME"}, {"owner": "1" * 19}, {"score_min": "40.5"},
                                    {"score_max": "0.5"}])
def test_bad_filter_values_are_400_field_errors(tenant, api_client, params):
    response = api_client.get(LIST, params)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == set(params)


def test_a_filter_sent_empty_is_no_filter(tenant, api_client):
    lead = LeadFactory(tenant=tenant)
    response = api_client.get(LIST, {"updated_after": "", "score_min": "", "owner": "", "q": "", "page_size": ""})
    assert response.status_code == 200, response.content
    assert ids(response) == {str(lead.id)}


def test_ordering_keeps_unscored_leads_last(tenant, api_client):
    high = LeadFactory(tenant=tenant, score=90, last_name="Zed")
    low = LeadFactory(tenant=tenant, score=10, last_name="Adams")
    unscored = LeadFactory(tenant=tenant, score=None, last_name="Moss")
    order = [row["id"] for row in api_client.get(LIST, {"ordering": "-score"}).json()["results"]]
    assert order == [str(high.id), str(low.id), str(unscored.id)]
    order = [row["id"] for row in api_client.get(LIST, {"ordering": "score"}).json()["results"]]
    assert order == [str(low.id), str(high.id), str(unscored.id)]
    order = [row["id"] for row in api_client.get(LIST, {"ordering": "last_name"}).json()["results"]]
    assert order == [str(low.id), str(unscored.id), str(high.id)]
    due = LeadFactory(tenant=tenant, sla_due_at=timezone.now())
    assert api_client.get(LIST, {"ordering": "sla_due_at"}).json()["results"][0]["id"] == str(due.id)


# --- Edits ---------------------------------------------------------------------------------


def test_patch_normalises_records_edited_fields_and_audits(tenant, make_member, client_for):
    admin = make_member(tenant, Role.ADMIN)
    lead = LeadFactory(tenant=tenant, email="old@acme.example", phone="", job_title="")
    response = client_for(admin).patch(detail(lead), {
        "email": "  New.Address@Gmail.com ", "phone": "(415) 555-0123", "job_title": "  VP   Sales ",
        "status": "contacted",
    }, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["email"] == "new.address@gmail.com" and body["phone"] == "+14155550123"
    assert body["job_title"] == "VP Sales" and body["status"] == "contacted" and body["is_personal_email"] is True
    lead.refresh_from_db()
    assert set(lead.edited_fields) == {"email", "phone", "job_title", "status"}
    event = AuditEvent.objects.unscoped().get(action="lead.updated", object_id=str(lead.id))
    assert event.actor_user_id == admin.id
    assert event.changes["email"] == ["old@acme.example", "new.address@gmail.com"]
    assert event.changes["status"] == ["new", "contacted"]


def test_repeating_a_patch_writes_nothing_new(tenant, api_client):
    lead = LeadFactory(tenant=tenant)
    for _ in range(2):
        assert api_client.patch(detail(lead), {"industry": "Fintech"}, format="json").status_code == 200
    assert AuditEvent.objects.unscoped().filter(action="lead.updated").count() == 1


def test_stage_change_writes_a_stage_transition(tenant, make_member, client_for):
    rep = make_member(tenant, Role.SDR)
    lead = LeadFactory(tenant=tenant, owner=rep)
    response = client_for(rep).patch(detail(lead), {"stage": "sal", "reason": "Accepted after call"}, format="json")
    assert response.status_code == 200 and response.json()["stage"] == "sal"
    transition = StageTransition.objects.unscoped().get(lead=lead)
    assert (transition.from_stage, transition.to_stage, transition.actor_user_id, transition.reason) == (
        "raw", "sal", rep.id, "Accepted after call")


def test_email_taken_by_another_lead_is_a_field_error_not_a_500(tenant, api_client):
    LeadFactory(tenant=tenant, email="taken@acme.example")
    lead = LeadFactory(tenant=tenant, email="mine@acme.example")
    response = api_client.patch(detail(lead), {"email": "TAKEN@acme.example"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["email"]
    lead.refresh_from_db()
    assert lead.email == "mine@acme.example" and lead.edited_fields == []


@pytest.mark.parametrize(("payload", "field"), [
    ({"score": 99}, "score"),
    ({"status": "bogus"}, "status"),
    ({"email": "not an email"}, "email"),
    ({"phone": "call me maybe"}, "phone"),
    ({"company_size": -5}, "company_size"),
    ({}, "detail"),
    ({"email": ""}, "email"),  # the lead has no phone: it would have neither
    ({"company": 5}, "company"),  # a JSON number is not text (DRF would have stored "5")
])
def test_bad_edits_are_400_field_errors(tenant, api_client, payload, field):
    lead = LeadFactory(tenant=tenant, email="a@acme.example", phone="")
    response = api_client.patch(detail(lead), payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


def test_only_managers_and_admins_reassign_and_only_to_members(team_setup, client_for, other_tenant, make_member):
    people, _lead_ids, leads = team_setup
    lead = leads["rep"]
    refused = client_for(people["rep"]).patch(detail(lead), {"owner": people["west_rep"].id}, format="json")
    assert refused.status_code == 403 and "owner" in refused.json()["errors"]
    outsider = make_member(other_tenant, Role.SDR)
    not_member = client_for(people["manager"]).patch(detail(lead), {"owner": outsider.id}, format="json")
    assert not_member.status_code == 400 and "owner" in not_member.json()["errors"]
    moved = client_for(people["manager"]).patch(detail(lead), {"owner": people["ae"].id}, format="json")
    assert moved.status_code == 200 and moved.json()["owner"]["id"] == people["ae"].id
    unassigned = client_for(people["admin"]).patch(detail(lead), {"owner": None}, format="json")
    assert unassigned.status_code == 200 and unassigned.json()["owner"] is None
    event = AuditEvent.objects.unscoped().filter(action="lead.updated", object_id=str(lead.id)).order_by("id").first()
    assert event.changes == {"owner": [people["rep"].id, people["ae"].id]}


def test_another_tenants_key_cannot_read_or_patch_my_lead(tenant, other_tenant):
    lead = LeadFactory(tenant=tenant, first_name="Ada")
    other = key_client(other_tenant)
    assert other.get(detail(lead)).status_code == 404
    assert other.patch(detail(lead), {"first_name": "Hacked"}, format="json").status_code == 404
    for suffix in ("touches/", "signals/", "activities/", "history/"):
        assert other.get(detail(lead, suffix)).status_code == 404
    lead.refresh_from_db()
    assert lead.first_name == "Ada"


# --- Sub-resources -------------------------------------------------------------------------


def test_touches_signals_and_history_of_a_lead(tenant, api_client):
    lead = LeadFactory(tenant=tenant)
    other = LeadFactory(tenant=tenant)
    Touch.objects.unscoped().create(tenant=tenant, lead=lead, kind=TouchKind.CREATED, source="web_form",
                                    payload={"email": lead.email})
    Touch.objects.unscoped().create(tenant=tenant, lead=other, kind=TouchKind.CREATED, payload={})
    Signal.objects.unscoped().create(tenant=tenant, lead=lead, type="email_open", occurred_at=timezone.now())
    api_client.patch(detail(lead), {"industry": "Retail"}, format="json")

    touches = api_client.get(detail(lead, "touches/")).json()
    assert touches["count"] == 1 and touches["results"][0]["payload"] == {"email": lead.email}
    signals = api_client.get(detail(lead, "signals/")).json()
    assert [s["type"] for s in signals["results"]] == ["email_open"]
    history = api_client.get(detail(lead, "history/")).json()
    assert [e["action"] for e in history["results"]] == ["lead.updated"]
    assert history["results"][0]["changes"] == {"industry": ["", "Retail"]}


def test_signed_in_rep_logs_an_activity_once_even_when_retried(tenant, make_member, client_for):
    rep = make_member(tenant, Role.SDR)
    lead = LeadFactory(tenant=tenant, owner=rep)
    client = client_for(rep)
    at = (timezone.now() - timedelta(minutes=2)).isoformat()
    payload = {"kind": "call", "subject": "Intro call", "outcome": "connected", "occurred_at": at}
    first = client.post(detail(lead, "activities/"), payload, format="json")
    retry = client.post(detail(lead, "activities/"), payload, format="json")
    assert first.status_code == 201 and retry.status_code == 200
    assert first.json()["id"] == retry.json()["id"] and first.json()["actor"]["id"] == rep.id
    assert Activity.objects.unscoped().filter(lead=lead).count() == 1
    lead.refresh_from_db()
    assert lead.last_activity_at is not None
    listed = client.get(detail(lead, "activities/")).json()
    assert [a["subject"] for a in listed["results"]] == ["Intro call"]
    assert AuditEvent.objects.unscoped().filter(action="lead.activity_logged", object_id=str(lead.id)).count() == 1


def test_activity_rules(tenant, make_member, client_for, api_client):
    rep = make_member(tenant, Role.SDR)
    lead = LeadFactory(tenant=tenant, owner=rep)
    someone_elses = LeadFactory(tenant=tenant)
    client = client_for(rep)
    assert client.post(detail(lead, "activities/"), {"kind": "fax"}, format="json").status_code == 400
    numeric_body = client.post(detail(lead, "activities/"), {"kind": "note", "body": 0}, format="json")
    assert numeric_body.status_code == 400 and numeric_body.json()["errors"] == {"body": ["Not a valid string."]}
    empty_note = client.post(detail(lead, "activities/"), {"kind": "note"}, format="json")
    assert empty_note.status_code == 400 and "body" in empty_note.json()["errors"]
    future = (timezone.now() + timedelta(days=1)).isoformat()
    assert client.post(detail(lead, "activities/"), {"kind": "call", "occurred_at": future}, format="json").status_code == 400
    assert client.post(detail(someone_elses, "activities/"), {"kind": "call"}, format="json").status_code == 404
    assert api_client.post(detail(lead, "activities/"), {"kind": "call"}, format="json").status_code == 403
    assert Activity.objects.unscoped().count() == 0


def test_lead_list_selector_never_leaks_other_tenants(tenant, other_tenant):
    from leads.selectors import LeadViewer, lead_list

    key, _raw = api_key_for(tenant)
    LeadFactory(tenant=other_tenant)
    mine = LeadFactory(tenant=tenant)
    assert list(lead_list(viewer=LeadViewer(tenant=tenant, api_key=key))) == [mine]
    with pytest.raises(ValueError):
        LeadViewer(tenant=other_tenant, api_key=key)
    assert Lead.objects.unscoped().count() == 2
