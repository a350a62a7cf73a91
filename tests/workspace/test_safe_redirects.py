"""Every URL a request names for the browser to go to next (`next`, the Cancel link, the way back after a form)
stays on this site: one table of endpoints × hostile values, each answer's Location or rendered link must be the
endpoint's own fallback (leadmgmt.urls_safe), and a path of this site must come back as it was given."""
from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.test import Client
from django.utils import timezone

from leadmgmt.tenancy.models import Role
from routing.notifications import notify
from tests.support.factories import MembershipFactory
from tests.support.routing import lead, rep, team
from tests.support.workspace import PASSWORD, signed_in_client

pytestmark = pytest.mark.django_db

HOSTILE = ["javascript:alert(1)", "//evil.test", "https://evil.test/", "/\\evil.test", "\\\\evil.test",
           "http:evil.test", " //evil.test", "/\t/evil.test", "http://testserver/queue/"]


def _field(body: str, after: str = "", name: str = "next") -> str:
    """The value of the first hidden input `name` of a page after the text `after` (the top bar has its own)."""
    assert after in body, after
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', body[body.index(after):])
    assert match, f"no hidden {name!r} in the page"
    return html.unescape(match.group(1))


def _cancel(body: str) -> str:
    match = re.search(r'<a class="btn" href="([^"]*)">Cancel</a>', body)
    assert match, "no Cancel link in the page"
    return html.unescape(match.group(1))


def _location(response) -> str:
    assert response.status_code in (301, 302, 303), response.status_code
    return response["Location"]


@pytest.fixture
def world(tenant, other_tenant):
    inbound = team(tenant, "Inbound")
    boss = rep(tenant, inbound, role=Role.MANAGER, username="boss@acme.test")
    inbound.manager = boss
    inbound.save(update_fields=["manager"])
    ann = rep(tenant, inbound, username="ann@acme.test")
    MembershipFactory(tenant=other_tenant, user=ann, role=Role.SDR)  # two workspaces: the picker shows
    note = notify(tenant=tenant, user=ann, kind="lead_assigned", title="A lead", lead=None, body="",
                  now=timezone.now())
    return {"tenant": tenant, "other": other_tenant, "boss": boss, "ann": ann, "note": note,
            "waiting": lead(tenant)}


@dataclass(frozen=True)
class Case:
    """One endpoint: `go(world, value)` sends `value` where the endpoint takes it and returns where the answer
    would send the browser; `fallback` is where a refused value leads, `kept` a value of this site it keeps."""

    go: Callable[[dict, str], str]
    fallback: str
    kept: str


def _sign_in(w, value):
    response = Client().post("/accounts/login/", {"username": "boss@acme.test", "password": PASSWORD, "next": value})
    return _location(response)


def _sign_out(w, value):
    response = signed_in_client(w["boss"]).post("/accounts/logout/", {"next": value})
    return response["Location"] if response.status_code == 302 else "(the signed-out page)"


def _switch(w, value):
    return _location(signed_in_client(w["ann"]).post("/tenant/switch/", {"tenant": w["other"].pk, "next": value}))


def _reassign_post(w, value, *, valid=True):
    data = {"to_user": w["ann"].pk if valid else "", "expected_owner_id": "", "next": value}
    return signed_in_client(w["boss"]).post(f"/manager/leads/{w['waiting'].pk}/reassign/", data)


def _row_post(w, value, *, htmx=False, valid=True):
    data = {"to_user": w["ann"].pk if valid else "", "row": "unassigned", "next": value, "expected_owner_id": ""}
    return signed_in_client(w["boss"]).post(f"/manager/leads/{w['waiting'].pk}/reassign/row/", data,
                                   **({"HTTP_HX_REQUEST": "true"} if htmx else {}))


CASES = {
    "sign-in page": Case(lambda w, v: _field(Client().get("/accounts/login/", {"next": v}).content.decode(),
                                             after='action="/accounts/login/"'),
                         fallback="", kept="/manager/unassigned/"),
    "sign in": Case(_sign_in, fallback="/queue/", kept="/manager/unassigned/?page=1"),
    "sign out": Case(_sign_out, fallback="(the signed-out page)", kept="/accounts/login/"),
    "workspace picker": Case(lambda w, v: _field(signed_in_client(w["ann"]).get("/tenant/switch/", {"next": v}).content.decode(),
                                                 after="Choose a workspace</h1>"),
                             fallback="/queue/", kept="/queue/?source=webinar"),
    "switch workspace": Case(_switch, fallback="/queue/", kept="/notifications/"),
    "mark one read": Case(lambda w, v: _location(signed_in_client(w["ann"], w["tenant"]).post(
        f"/notifications/{w['note'].pk}/read/", {"next": v})), fallback="/notifications/",
        kept="/notifications/?show=unread&page=1"),
    "mark all read": Case(lambda w, v: _location(signed_in_client(w["ann"], w["tenant"]).post(
        "/notifications/read-all/", {"next": v})), fallback="/notifications/", kept="/notifications/?show=unread"),
    "reassign page: Cancel": Case(lambda w, v: _cancel(signed_in_client(w["boss"]).get(
        f"/manager/leads/{w['waiting'].pk}/reassign/", {"next": v}).content.decode()),
        fallback="/manager/unassigned/", kept="/manager/hot/"),
    "reassign page: form's next": Case(lambda w, v: _field(signed_in_client(w["boss"]).get(
        f"/manager/leads/{w['waiting'].pk}/reassign/", {"next": v}).content.decode(), after='id="reassign-form"'),
        fallback="/manager/unassigned/", kept="/manager/?status=new"),
    "reassign": Case(lambda w, v: _location(_reassign_post(w, v)), fallback="/manager/unassigned/",
                     kept="/manager/aging/"),
    "reassign refused: Cancel": Case(lambda w, v: _cancel(_reassign_post(w, v, valid=False).content.decode()),
                                     fallback="/manager/unassigned/", kept="/manager/escalations/"),
    "reassign refused: form's next": Case(lambda w, v: _field(_reassign_post(w, v, valid=False).content.decode(),
                                                              after='id="reassign-form"'),
                                          fallback="/manager/unassigned/", kept="/manager/escalations/"),
    "row reassign": Case(lambda w, v: _location(_row_post(w, v)), fallback="/manager/unassigned/",
                         kept="/manager/unassigned/?page=2"),
    "row reassign refused (htmx): the row's next": Case(
        lambda w, v: _field(_row_post(w, v, htmx=True, valid=False).content.decode()),
        fallback="/manager/unassigned/", kept="/manager/unassigned/?page=2"),
    "row reassign refused: Cancel": Case(lambda w, v: _cancel(_row_post(w, v, valid=False).content.decode()),
                                         fallback="/manager/unassigned/", kept="/manager/unassigned/"),
}


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("endpoint", list(CASES))
def test_a_hostile_next_never_leaves_the_site(world, endpoint, hostile):
    case = CASES[endpoint]
    assert case.go(world, hostile) == case.fallback


@pytest.mark.parametrize("endpoint", list(CASES))
def test_a_path_of_this_site_is_followed(world, endpoint):
    case = CASES[endpoint]
    expected = case.fallback if endpoint == "sign out" else case.kept  # sign-out shows its page, or goes to `next`
    assert case.go(world, case.kept) in (case.kept, expected)


def test_no_answer_reflects_a_hostile_value(world):
    """Beyond the link or Location under test: the hostile text is nowhere in the pages."""
    client = signed_in_client(world["boss"])
    for response in (Client().get("/accounts/login/", {"next": "//evil.test"}),
                     client.get(f"/manager/leads/{world['waiting'].pk}/reassign/", {"next": "https://evil.test/"}),
                     _reassign_post(world, "javascript:alert(1)", valid=False)):
        body = response.content.decode()
        assert "evil.test" not in body and "alert(1)" not in body
