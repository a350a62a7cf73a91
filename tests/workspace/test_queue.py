"""My queue: SLA order then score, filters and search, the htmx partial, pagination, query counts, scope."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leads.models import Lead, LeadStatus
from tests.support.factories import LeadFactory, MembershipFactory
from tests.support.workspace import owned_lead, person

pytestmark = pytest.mark.django_db


def lead_ids(response) -> list[str]:
    return re.findall(r'data-lead-id="([0-9a-f-]+)"', response.content.decode())


def test_queue_orders_by_sla_due_time_then_score_nulls_last(tenant, org, signed_in):
    rep = org["rep"]
    later = owned_lead(tenant, rep, due_in=timedelta(hours=3), score=90)
    soon_low = owned_lead(tenant, rep, due_in=timedelta(minutes=10), score=20)
    overdue = owned_lead(tenant, rep, due_in=timedelta(minutes=-5), score=10)
    no_clock_high = owned_lead(tenant, rep, score=95)
    no_clock_low = owned_lead(tenant, rep, score=30)
    Lead.objects.unscoped().filter(pk__in=[no_clock_high.pk, no_clock_low.pk]).update(sla_due_at=None)
    same_due = owned_lead(tenant, rep, score=80)
    Lead.objects.unscoped().filter(pk=same_due.pk).update(sla_due_at=Lead.objects.unscoped().get(pk=soon_low.pk).sla_due_at)

    response = signed_in(rep, tenant).get("/queue/")
    assert response.status_code == 200
    assert lead_ids(response) == [str(x.pk) for x in (overdue, same_due, soon_low, later, no_clock_high, no_clock_low)]
    html = response.content.decode()
    assert 'class="countdown" data-due="' in html
    assert "badge badge-mql" in html


def test_queue_shows_only_my_open_leads_of_the_active_tenant(tenant, other_tenant, org, signed_in):
    rep = org["rep"]
    mine = owned_lead(tenant, rep)
    owned_lead(tenant, org["rep2"])  # a colleague's
    LeadFactory(tenant=tenant)  # unassigned
    closed = owned_lead(tenant, rep)
    Lead.objects.unscoped().filter(pk=closed.pk).update(status=LeadStatus.REJECTED)
    # The same user is also a member of another tenant, where they own a lead.
    MembershipFactory(tenant=other_tenant, user=rep)
    elsewhere = LeadFactory(tenant=other_tenant, owner=rep)

    client = signed_in(rep, tenant)
    assert lead_ids(client.get("/queue/")) == [str(mine.pk)]
    client.post("/tenant/switch/", {"tenant": other_tenant.pk})
    assert lead_ids(client.get("/queue/")) == [str(elsewhere.pk)]


def test_filters_and_search(tenant, org, signed_in):
    rep = org["rep"]
    ada = owned_lead(tenant, rep, first_name="Ada", last_name="Lovelace", company="Analytical", source="webinar",
                     band="hot", lead_class="high_fit")
    bob = owned_lead(tenant, rep, first_name="Bob", last_name="Builder", email="bob@builders.example",
                     company="Builders", source="web_form", band="cold", lead_class="nurture")
    Lead.objects.unscoped().filter(pk=bob.pk).update(status=LeadStatus.CONTACTED)
    client = signed_in(rep, tenant)

    assert lead_ids(client.get("/queue/", {"source": "webinar"})) == [str(ada.pk)]
    assert lead_ids(client.get("/queue/", {"band": "cold"})) == [str(bob.pk)]
    assert lead_ids(client.get("/queue/", {"lead_class": "high_fit"})) == [str(ada.pk)]
    assert lead_ids(client.get("/queue/", {"status": "contacted"})) == [str(bob.pk)]
    assert lead_ids(client.get("/queue/", {"q": "lovelace"})) == [str(ada.pk)]
    assert lead_ids(client.get("/queue/", {"q": "builders.example"})) == [str(bob.pk)]
    assert lead_ids(client.get("/queue/", {"q": "analytical"})) == [str(ada.pk)]
    empty = client.get("/queue/", {"q": "nobody-matches"})
    assert lead_ids(empty) == [] and b"No leads match these filters" in empty.content


def test_an_unknown_filter_value_is_an_error_beside_the_field_not_a_500(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep)
    response = signed_in(rep, tenant).get("/queue/", {"status": "bogus", "band": "<script>"})
    assert response.status_code == 200
    assert lead_ids(response) == [str(lead.pk)]
    assert b'class="field-error"' in response.content and b"<script>" not in response.content


def test_htmx_request_gets_the_table_partial(tenant, org, signed_in):
    rep = org["rep"]
    owned_lead(tenant, rep, source="webinar")
    client = signed_in(rep, tenant)
    full = client.get("/queue/").content.decode()
    assert "<html" in full and 'hx-get="/queue/"' in full and 'hx-target="#queue-table"' in full
    assert 'hx-push-url="true"' in full
    partial = client.get("/queue/", {"source": "webinar"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and "<nav" not in partial.split("<table")[0]
    assert 'data-testid="queue-table"' in partial


def test_empty_queue_says_what_to_do_next(tenant, org, signed_in):
    response = signed_in(org["rep"], tenant).get("/queue/")
    assert b"Your queue is clear" in response.content and b"routing assigns them to you" in response.content


def test_pagination_25_per_page_keeps_the_filters(tenant, org, signed_in):
    rep = org["rep"]
    leads = [owned_lead(tenant, rep, due_in=timedelta(minutes=i), source="webinar") for i in range(30)]
    client = signed_in(rep, tenant)
    first = client.get("/queue/", {"source": "webinar"})
    assert lead_ids(first) == [str(x.pk) for x in leads[:25]]
    assert b"Page 1 of 2" in first.content and b"?source=webinar&page=2" in first.content
    second = client.get("/queue/", {"source": "webinar", "page": 2})
    assert lead_ids(second) == [str(x.pk) for x in leads[25:]]
    assert lead_ids(client.get("/queue/", {"page": "999"})) == [str(x.pk) for x in leads[25:]]
    assert client.get("/queue/", {"page": "x"}).status_code == 200


@pytest.mark.parametrize("size", [5, 60])
def test_queue_query_count_is_bounded(tenant, org, signed_in, size, django_assert_max_num_queries):
    rep = org["rep"]
    for i in range(size):
        owned_lead(tenant, rep, due_in=timedelta(minutes=i), source=f"source-{i % 4}", band=["hot", "warm", "cold"][i % 3],
                   lead_class="high_fit")
    client = signed_in(rep, tenant)
    client.get("/queue/")  # the first request of a session stores nothing new, but warm up anyway
    with django_assert_max_num_queries(10):
        response = client.get("/queue/")
    assert len(lead_ids(response)) == min(size, 25)
    with django_assert_max_num_queries(10):
        client.get("/queue/", {"q": "lead", "source": "source-1"}, HTTP_HX_REQUEST="true")


def test_queue_query_count_does_not_grow_with_the_queue(tenant, org, signed_in):
    rep = org["rep"]
    client = signed_in(rep, tenant)
    counts = []
    for size in (3, 40):
        while Lead.objects.unscoped().filter(owner=rep).count() < size:
            owned_lead(tenant, rep)
        client.get("/queue/")
        with CaptureQueriesContext(connection) as ctx:
            client.get("/queue/")
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


def test_manager_queue_is_their_own_leads(tenant, org, signed_in):
    mine = owned_lead(tenant, org["manager"])
    owned_lead(tenant, org["rep"])
    assert lead_ids(signed_in(org["manager"], tenant).get("/queue/")) == [str(mine.pk)]


def test_a_member_of_another_tenant_sees_none_of_ours(tenant, other_tenant, org, signed_in):
    owned_lead(tenant, org["rep"])
    outsider = person(other_tenant)
    response = signed_in(outsider, other_tenant).get("/queue/")
    assert lead_ids(response) == [] and b"Globex" in response.content and b"Acme Corp" not in response.content


def test_each_queue_cell_is_labelled_for_the_phone_card_layout(tenant, org, signed_in):
    rep = org["rep"]
    lead = owned_lead(tenant, rep, company="Initech", source="webinar", band="hot", lead_class="high_fit", score=82)
    body = signed_in(rep, tenant).get("/queue/").content.decode()
    row = body[body.index(f'<tr data-lead-id="{lead.pk}"'):]
    row = row[:row.index("</tr>")]
    assert 'class="table table-cards queue-cards"' in body
    for label in ("Company", "SLA", "Score", "Band · class", "Status", "Source"):
        assert f'data-label="{label}"' in row, label
    assert 'class="cell-title"' in row and 'class="cell-sla"' in row and ">Initech<" in row and ">webinar<" in row
    stylesheet = (settings.BASE_DIR / "static" / "css" / "app.css").read_text()
    phone = stylesheet[stylesheet.index("@media (max-width: 600px)"):]
    assert ".table-cards td[data-label]::before { content: attr(data-label)" in phone
    assert '"title sla"' in phone  # the SLA clock shares the card's first line with the name


def test_the_queue_page_is_keyboard_and_screen_reader_ready(tenant, org, signed_in):
    rep = org["rep"]
    owned_lead(tenant, rep, source="webinar")
    client = signed_in(rep, tenant)
    body = client.get("/queue/").content.decode()
    assert body.index('<a class="skip-link" href="#content">') < body.index("<header")
    assert '<main id="content" tabindex="-1">' in body
    assert 'id="live-status" class="visually-hidden" role="status" aria-live="polite"' in body
    partial = client.get("/queue/", {"source": "webinar"}, HTTP_HX_REQUEST="true").content.decode()
    assert re.search(r"<caption[^>]*data-announce[^>]*>1 lead matches the filters</caption>", partial)
    empty = client.get("/queue/", {"q": "nobody"}, HTTP_HX_REQUEST="true").content.decode()
    assert "data-announce" in empty and "No leads match these filters" in empty
