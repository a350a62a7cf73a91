"""Live queues: My queue, the team queue, Unassigned and the notification list carry an htmx poller of their own
partial (with the page's filters and page number, every LIVE_POLL_SECONDS, guarded client-side), and those
partials answer with fresh rows in a bounded number of queries; the scripts are served locally."""
from __future__ import annotations

import re
from html import unescape

import pytest
from django.conf import settings as django_settings

from leadmgmt.tenancy.models import Role
from tests.support.factories import LeadFactory
from tests.support.workspace import owned_lead, person

pytestmark = pytest.mark.django_db


def poller(body: str) -> dict:
    """The attributes of the page's live poller (templates/workspace/_live_poll.html)."""
    match = re.search(r"<div hidden data-live-poll ([^>]*)>", body)
    assert match, "no live poller on the page"
    return {k: unescape(v) for k, v in re.findall(r'(hx-[a-z-]+)="([^"]*)"', match.group(1))}


def test_my_queue_polls_its_table_with_the_filters_and_page(tenant, org, signed_in, settings):
    settings.LIVE_POLL_SECONDS = 7
    owned_lead(tenant, org["rep"], source="webinar")
    body = signed_in(org["rep"], tenant).get("/queue/", {"source": "webinar"}).content.decode()
    attrs = poller(body)
    assert attrs["hx-get"] == "/queue/?source=webinar&page=1"
    assert attrs["hx-target"] == "#queue-table" and attrs["hx-swap"] == "innerHTML"
    assert attrs["hx-trigger"] == "every 7s"  # no filter: htmx would eval it (refused by the CSP); app.js decides
    assert '<div id="queue-table" data-live-region>' in body
    assert "hx-push-url" not in attrs, "a poll never changes the address bar"


def test_my_queues_partial_answers_with_a_lead_assigned_meanwhile(tenant, org, signed_in,
                                                                  django_assert_max_num_queries):
    rep = org["rep"]
    owned_lead(tenant, rep, first_name="Earlier")
    client = signed_in(rep, tenant)
    client.get("/queue/")
    arrived = owned_lead(tenant, rep, first_name="Justarrived")
    with django_assert_max_num_queries(10):
        partial = client.get("/queue/", {"page": 1}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and f'data-lead-id="{arrived.pk}"' in partial and "Justarrived" in partial
    assert "data-live-poll" in partial, "the swapped-in table carries the next poll"


def test_the_team_queue_polls_its_results_with_the_filters(tenant, org, signed_in):
    owned_lead(tenant, org["rep"], first_name="Teamlead")
    body = signed_in(org["manager"], tenant).get("/manager/", {"rep": org["rep"].pk}).content.decode()
    attrs = poller(body)
    assert attrs["hx-get"] == f"/manager/?rep={org['rep'].pk}&page=1"
    assert attrs["hx-target"] == "#queue-results" and attrs["hx-swap"] == "outerHTML"
    assert attrs["hx-trigger"].startswith("every ") and "data-live-poll" in body


def test_the_team_queue_partial_answers_with_a_lead_that_moved_to_the_team(tenant, org, signed_in,
                                                                            django_assert_max_num_queries):
    client = signed_in(org["manager"], tenant)
    client.get("/manager/")
    moved = owned_lead(tenant, org["rep2"], first_name="Movedin")
    with django_assert_max_num_queries(12):
        partial = client.get("/manager/", {"page": 1}, HTTP_HX_REQUEST="true").content.decode()
    assert partial.startswith('<div id="queue-results"') and f'data-lead-id="{moved.pk}"' in partial


def test_unassigned_polls_and_its_partial_answers_with_a_lead_that_arrived(tenant, org, signed_in,
                                                                         django_assert_max_num_queries):
    client = signed_in(org["manager"], tenant)
    body = client.get("/manager/unassigned/").content.decode()
    attrs = poller(body)
    assert attrs["hx-get"] == "/manager/unassigned/?page=1" and attrs["hx-target"] == "#unassigned-results"
    assert "Nothing is waiting" in body
    waiting = LeadFactory(tenant=tenant, first_name="Nobodys", unassigned_reason="No routing rule matched")
    with django_assert_max_num_queries(12):
        partial = client.get("/manager/unassigned/", {"page": 1}, HTTP_HX_REQUEST="true").content.decode()
    assert '<div id="unassigned-results" data-live-region>' in partial and "<html" not in partial
    assert f'data-lead-id="{waiting.pk}"' in partial and "No routing rule matched" in partial


def test_the_hot_list_polls_and_its_partial_answers_with_a_lead_that_became_hot(tenant, org, signed_in,
                                                                             django_assert_max_num_queries):
    client = signed_in(org["manager"], tenant)
    body = client.get("/manager/hot/").content.decode()
    attrs = poller(body)
    assert attrs["hx-get"] == "/manager/hot/?page=1" and attrs["hx-target"] == "#hot-results"
    heated = owned_lead(tenant, org["rep"], first_name="Heated", score=90, band="sql", is_hot=True)
    with django_assert_max_num_queries(12):
        partial = client.get("/manager/hot/", {"page": 1}, HTTP_HX_REQUEST="true").content.decode()
    assert '<div id="hot-results" data-live-region>' in partial and "<html" not in partial
    assert f'data-lead-id="{heated.pk}"' in partial and "Hot lead" in partial


def test_reps_do_not_get_the_managers_partials(tenant, org, signed_in):
    client = signed_in(org["rep"], tenant)
    assert client.get("/manager/unassigned/", HTTP_HX_REQUEST="true").status_code == 403
    assert client.get("/manager/", HTTP_HX_REQUEST="true").status_code == 403
    assert client.get("/manager/hot/", HTTP_HX_REQUEST="true").status_code == 403


def test_another_tenants_leads_never_show_up_in_a_poll(tenant, other_tenant, org, signed_in):
    theirs = LeadFactory(tenant=other_tenant, unassigned_reason="Theirs")
    mine = LeadFactory(tenant=tenant, unassigned_reason="Ours")
    partial = signed_in(org["manager"], tenant).get("/manager/unassigned/", HTTP_HX_REQUEST="true").content.decode()
    assert str(mine.pk) in partial and str(theirs.pk) not in partial


def test_the_notification_list_polls_only_its_first_page(tenant, org, signed_in):
    from routing.models import Notification

    Notification.objects.unscoped().bulk_create([
        Notification(tenant=tenant, user=org["rep"], kind="lead_assigned", title=f"n{i}") for i in range(30)])
    client = signed_in(org["rep"], tenant)
    assert poller(client.get("/notifications/").content.decode())["hx-target"] == "#notification-list"
    assert "data-live-poll hx-get" not in client.get("/notifications/", {"page": 2}).content.decode()


def test_the_live_scripts_are_served_locally(tenant, org, signed_in):
    body = signed_in(person(tenant, role=Role.SDR), tenant).get("/queue/").content.decode()
    assert '<script src="/static/vendor/htmx.min.js" defer></script>' in body and "https://" not in body.split("<body")[0]
    script = (django_settings.BASE_DIR / "static" / "js" / "app.js").read_text()
    assert '"htmx:confirm"' in script and "function pollReady" in script and ".countdown[data-due]" in script
