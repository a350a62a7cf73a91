"""The permission matrix walked end to end: every role and API key × every lead-page action, API action, manager
page and a config admin page gets the answer `leadmgmt.tenancy.roles` predicts (so the UI, the API and the admin
cannot drift apart), and managers reassign only to available reps of their teams."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client
from rest_framework.test import APIClient

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.tenancy import roles
from leadmgmt.tenancy.middleware import SESSION_TENANT_KEY
from leadmgmt.tenancy.models import ApiScope, Membership, Role
from leads.lost_reasons import lost_reasons_seed
from nurture.services.enrollment import lead_enroll
from routing.models import RejectionReason
from tests.support.factories import api_key_for
from tests.support.lead_api import BANT, owned
from tests.support.nurture import sequence_with_steps
from tests.support.routing import fresh, rep, team
from workspace.services.lifecycle import lead_convert
from workspace.views import ACTIONS

pytestmark = pytest.mark.django_db

MEMBERS = ("sdr", "sdr_other", "ae", "manager", "ops", "admin")
KEYS = {"key_read": [ApiScope.LEADS_READ], "key_write": [ApiScope.LEADS_READ, ApiScope.LEADS_WRITE]}
REFUSED = {403, 404}


@dataclass
class World:
    tenant: object
    people: dict
    sdr2: object
    sequence: object
    reason_code: str


@pytest.fixture
def world(tenant, api_org):
    people, _clients = api_org
    people = {**people, "sdr_other": people["sdr2"]}
    for user in people.values():  # every role may reach the admin login: the role alone decides
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return World(tenant=tenant, people=people, sdr2=rep(tenant, team(tenant, "East 2")),
                 sequence=sequence_with_steps(tenant=tenant),
                 reason_code=RejectionReason.objects.unscoped().filter(tenant=tenant).values_list("code", flat=True)[0])


def _principal(world, who):
    """(membership, api key, client) of a role or API key."""
    if who in KEYS:
        key, raw = api_key_for(world.tenant, scopes=[str(s) for s in KEYS[who]])
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return None, key, client
    user = world.people[who]
    client = APIClient()
    client.force_login(user)
    session = client.session
    session[SESSION_TENANT_KEY] = world.tenant.pk
    session.save()
    return Membership.objects.unscoped().get(tenant=world.tenant, user=user), None, client


def _target(world, who):
    """The rep a cell reassigns to: an available SDR of the manager's team (East) that can take a new lead."""
    return world.people["sdr"] if who == "sdr_other" else world.people["sdr_other"]


def _lead(world, who):
    """A fresh lead for one cell: the acting rep's own (the other SDR acts on someone else's), else the SDR's."""
    owner = world.people["ae"] if who == "ae" else world.people["sdr"]
    return owned(world.tenant, owner, marketing_consent=True, lead_class="nurture")


def _expect(action, lead, membership, key) -> bool:
    return roles.may_on_lead(action=action, owner_id=lead.owner_id, membership=membership, api_key=key)


# --- the lead page's actions (members only) --------------------------------------------------------------


def _ui_data(world, name, lead, who) -> dict:
    owner = {"expected_owner_id": lead.owner_id}
    prefixed = {"reject": "reject", "disqualify": "disqualify", "convert": "convert", "enroll": "enroll",
                "stop-nurture": "stop", "won": "won", "lost": "lost"}
    data = {
        "log": {"kind": "call", "subject": "Called"},
        "accept": {},
        "reject": {"reason": world.reason_code, "note": "n"},
        "disqualify": {"reason": world.reason_code, "note": "n"},
        "qualify": dict(BANT),
        "recycle": {"reason": "Not now"},
        "convert": {"name": "Deal", "stage": "discovery"},
        "reassign": {"to_user": _target(world, who).pk, "reason": "Cover"},
        "edit": {"company": "Renamed Inc"},
        "enroll": {"sequence": world.sequence.pk},
        "stop-nurture": {"enrollment": getattr(lead, "enrollment_id", 0), "note": ""},
        "dismiss-bounce": {},
        "won": {"amount": "100", "currency": "USD"},
        "lost": {"lost_reason": "price"},
    }[name] | ({} if name in ("edit", "enroll", "stop-nurture", "dismiss-bounce", "won", "lost") else owner)
    prefix = prefixed.get(name)
    return {f"{prefix}-{k}" if prefix else k: v for k, v in data.items()}


def _enrolled(world, lead):
    lead.enrollment_id = lead_enroll(lead=lead, sequence=world.sequence, actor=SYSTEM).pk
    return lead


def test_every_lead_page_action_answers_as_the_matrix_says(world):
    cells = 0
    for who in MEMBERS:
        membership, _key, client = _principal(world, who)
        for name, entry in ACTIONS.items():
            lead = _lead(world, who)
            if name == "stop-nurture":
                lead = _enrolled(world, lead)
            if name in ("won", "lost"):  # the deal on the lead's page closes
                lost_reasons_seed(tenant_id=world.tenant.pk)
                lead_convert(lead=lead, actor=SYSTEM)
                lead = fresh(lead)
            allowed = _expect(entry.needs, lead, membership, None)
            response = client.post(f"/leads/{lead.pk}/{name}/", _ui_data(world, name, lead, who))
            assert response.status_code < 500, (who, name)
            assert (response.status_code not in REFUSED) == allowed, (who, name, response.status_code)
            if not allowed:  # a refusal changed nothing
                assert fresh(lead).owner_id == lead.owner_id and fresh(lead).status == lead.status, (who, name)
            cells += 1
    assert cells == len(MEMBERS) * len(ACTIONS) == 84


def test_marketing_ops_get_no_work_forms_on_a_reps_lead_page(world):
    _m, _k, client = _principal(world, "ops")
    lead = _lead(world, "ops")
    page = client.get(f"/leads/{lead.pk}/").content.decode()
    assert lead.first_name in page
    for action in ("accept", "reject", "qualify", "log", "edit", "reassign", "convert", "recycle", "disqualify"):
        assert f'/leads/{lead.pk}/{action}/' not in page, action
    assert f'/leads/{lead.pk}/enroll/' in page  # nurture is marketing's: enrolling by hand stays on offer


# --- the API ------------------------------------------------------------------------------------------------


def _api_cells(world, who, lead):
    target = _target(world, who).pk
    return [
        ("accept", roles.LEAD_WORK, "post", f"/api/v1/leads/{lead.pk}/accept/", {}),
        ("reject", roles.LEAD_WORK, "post", f"/api/v1/leads/{lead.pk}/reject/", {"reason": world.reason_code}),
        ("qualify", roles.LEAD_WORK, "post", f"/api/v1/leads/{lead.pk}/qualify/", BANT),
        ("convert", roles.LEAD_WORK, "post", f"/api/v1/leads/{lead.pk}/convert/", {"name": "Deal"}),
        ("activities", roles.LEAD_WORK, "post", f"/api/v1/leads/{lead.pk}/activities/", {"kind": "call", "subject": "x"}),
        ("patch", roles.LEAD_EDIT, "patch", f"/api/v1/leads/{lead.pk}/", {"company": "Renamed Inc"}),
        ("patch-owner", roles.LEAD_REASSIGN, "patch", f"/api/v1/leads/{lead.pk}/", {"owner": target, "reason": "x"}),
        ("reassign", roles.LEAD_REASSIGN, "post", f"/api/v1/leads/{lead.pk}/reassign/",
         {"to_user_id": target, "reason": "Cover"}),
        ("reassign-bulk", roles.LEAD_REASSIGN_BULK, "post", "/api/v1/leads/reassign-bulk/",
         {"from_user_id": lead.owner_id, "to_user_id": target, "reason": "Left"}),
        ("enrol", roles.LEAD_NURTURE, "post", f"/api/v1/leads/{lead.pk}/enrollments/", {"sequence": world.sequence.pk}),
        ("stop", roles.LEAD_NURTURE, "post", None, {"note": ""}),
        ("dry-run", roles.ROUTING_DRY_RUN, "post", "/api/v1/routing/dry-run/", {"values": {"country": "US"}}),
        ("export", roles.LEAD_EXPORT, "get", "/api/v1/leads/export/", {"columns": "id"}),
        ("backtest", roles.SCORING_BACKTEST, "get", f"/api/v1/scoring/models/{_scoring_model(world).pk}/backtest/",
         {}),
    ]


def _scoring_model(world):
    from scoring.models import ScoringModel
    from scoring.services import scoring_default_model_create

    model = ScoringModel.objects.unscoped().filter(tenant=world.tenant).order_by("version").first()
    return model or scoring_default_model_create(tenant=world.tenant, actor=SYSTEM)


API_ACTIONS = 14


def test_every_api_action_answers_as_the_matrix_says(world):
    cells = 0
    for who in (*MEMBERS, *KEYS):
        membership, key, client = _principal(world, who)
        for index in range(API_ACTIONS):
            lead = _lead(world, who)
            name, action, method, url, body = _api_cells(world, who, lead)[index]
            if name == "stop":
                url = f"/api/v1/leads/{lead.pk}/enrollments/{_enrolled(world, lead).enrollment_id}/stop/"
            if name in ("reassign-bulk", "dry-run", "export", "backtest"):  # no lead in the URL: the role (or scope) alone decides
                allowed = roles.principal_may(action=action, membership=membership, api_key=key)
                if name == "reassign-bulk" and who == "sdr_other":
                    allowed = False
            else:
                allowed = _expect(action, lead, membership, key)
            response = (client.get(url, body) if method == "get" else getattr(client, method)(url, body, format="json"))
            if name == "export" and response.status_code == 200:
                b"".join(response.streaming_content)
            assert response.status_code < 500, (who, name)
            assert (response.status_code not in REFUSED) == allowed, (who, name, response.status_code, response.content)
            if allowed and name in ("reassign", "patch-owner", "reassign-bulk"):
                assert response.status_code == 200, (who, name, response.content)
                assert fresh(lead).owner_id == _target(world, who).pk
            cells += 1
    assert cells == (len(MEMBERS) + len(KEYS)) * API_ACTIONS == 112


# --- manager pages and the admin -------------------------------------------------------------------------

MANAGER_PAGES = ("/manager/", "/manager/unassigned/", "/manager/escalations/", "/manager/aging/", "/manager/hot/",
                 "/manager/reps/", "/manager/bounced/")


def test_manager_pages_and_the_config_admin_answer_as_the_matrix_says(world):
    reason = RejectionReason.objects.unscoped().filter(tenant=world.tenant).first()
    cells = 0
    for who in MEMBERS:
        membership, _key, _api = _principal(world, who)
        client = Client()
        client.force_login(world.people[who])
        for url in MANAGER_PAGES:
            response = client.get(url)
            assert (response.status_code == 200) == roles.may(membership.role, roles.MANAGER_PAGES), (who, url)
            assert response.status_code in (200, 403), (who, url)
            cells += 1
        response = client.get(f"/admin/routing/rejectionreason/{reason.pk}/change/")
        assert (response.status_code == 200) == roles.may(membership.role, roles.CONFIG_EDIT), (who, response.status_code)
        cells += 1
    assert cells == len(MEMBERS) * (len(MANAGER_PAGES) + 1) == 48


# --- who a lead may go to ---------------------------------------------------------------------------------


def test_a_manager_reassigns_only_to_available_reps_of_their_teams(world):
    manager = _principal(world, "manager")[2]
    east = Membership.objects.unscoped().get(tenant=world.tenant, user=world.people["manager"]).team
    away = rep(world.tenant, east, is_available=False)
    for outsider in (world.sdr2, world.people["ops"], world.people["admin"], away):
        lead = _lead(world, "manager")
        one = manager.post(f"/api/v1/leads/{lead.pk}/reassign/", {"to_user_id": outsider.pk, "reason": "x"},
                           format="json")
        assert one.status_code == 400 and "to_user_id" in one.json()["errors"], one.content
        patch = manager.patch(f"/api/v1/leads/{lead.pk}/", {"owner": outsider.pk}, format="json")
        assert patch.status_code == 400 and "owner" in patch.json()["errors"], patch.content
        bulk = manager.post("/api/v1/leads/reassign-bulk/", {"from_user_id": lead.owner_id,
                                                              "to_user_id": outsider.pk, "reason": "x"}, format="json")
        assert bulk.status_code == 400 and "to_user_id" in bulk.json()["errors"], bulk.content
        assert fresh(lead).owner_id == world.people["sdr"].pk


def test_admins_and_write_keys_reassign_to_any_rep_who_can_take_leads_but_not_to_non_reps(world):
    for who in ("admin", "key_write"):
        client = _principal(world, who)[2]
        lead = _lead(world, who)
        assert client.post(f"/api/v1/leads/{lead.pk}/reassign/", {"to_user_id": world.sdr2.pk, "reason": "x"},
                           format="json").status_code == 200
        assert fresh(lead).owner_id == world.sdr2.pk
        refused = client.post(f"/api/v1/leads/{lead.pk}/reassign/",
                              {"to_user_id": world.people["ops"].pk, "reason": "x"}, format="json")
        assert refused.status_code == 400 and "to_user_id" in refused.json()["errors"]


def test_the_matrix_knows_every_action_it_is_asked_about():
    assert roles.may(Role.MARKETING_OPS, roles.LEAD_VIEW) and not roles.may(Role.MARKETING_OPS, roles.LEAD_WORK)
    assert not roles.key_may([ApiScope.LEADS_READ, ApiScope.LEADS_WRITE], roles.LEAD_WORK)
    with pytest.raises(KeyError):
        roles.may(Role.ADMIN, "lead.teleport")


# --- the feedback-loop report ---------------------------------------------------------------------------------


def test_the_feedback_report_answers_as_the_matrix_says(world):
    """Page, CSV and API of `/reports/feedback/`: marketing ops, managers and admins, keys with leads:read."""
    cells = 0
    for who in (*MEMBERS, *KEYS):
        membership, key, api = _principal(world, who)
        allowed = roles.principal_may(action=roles.REPORT_FEEDBACK, membership=membership, api_key=key)
        assert (api.get("/api/v1/reports/feedback/").status_code == 200) == allowed, who
        cells += 1
        if membership is not None:
            client = Client()
            client.force_login(world.people[who])
            for url in ("/reports/feedback/", "/reports/feedback.csv"):
                assert client.get(url).status_code == (200 if allowed else 403), (who, url)
                cells += 1
    assert cells == len(MEMBERS) * 3 + len(KEYS) == 20
