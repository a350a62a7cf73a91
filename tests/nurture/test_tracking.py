"""Open pixel and click-through links of nurture emails: counters on the message, one `email_open` /
`email_click` signal each (re-scoring the lead), bad tokens answered without recording anything."""
from __future__ import annotations

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from leads.models import Signal
from nurture import tokens
from nurture.models import Enrollment, EnrollmentStatus
from nurture.services.tracking import message_clicked, message_opened
from nurture.views import TRANSPARENT_GIF
from tests.support.nurture import (  # noqa: F401 (fixtures among them)
    GUIDE,
    NurtureLeadFactory,
    old_token,
    scored_lead,
    sent_message,
    sequence_with_steps,
)

pytestmark = pytest.mark.django_db









def signals_of(lead, type_: str) -> list[Signal]:
    return list(Signal.objects.unscoped().filter(tenant_id=lead.tenant_id, lead=lead, type=type_))


def pixel_url(message_id) -> str:
    return reverse("nurture-open", args=[tokens.open_token(message_id)])


def click_url(message_id, url: str = GUIDE) -> str:
    return reverse("nurture-click", args=[tokens.click_token(message_id, url)])


# --- open pixel --------------------------------------------------------------------------------------


def test_first_open_sets_opened_at_records_one_signal_and_rescores_the_lead(
        tenant, django_capture_on_commit_callbacks):
    lead = scored_lead(tenant)
    message = sent_message(tenant=tenant, lead=lead)
    before = lead.score
    assert before == 30

    with django_capture_on_commit_callbacks(execute=True):
        response = Client().get(pixel_url(message.pk))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content == TRANSPARENT_GIF and response.content.startswith(b"GIF89a")
    assert "no-store" in response["Cache-Control"]
    message.refresh_from_db()
    assert message.opened_at is not None and message.open_count == 1
    [signal] = signals_of(lead, "email_open")
    assert signal.external_id == f"nurture:{message.pk}:open"
    assert signal.processed_at is not None
    assert signal.properties["subject"] == message.subject
    lead.refresh_from_db()
    assert lead.score == before + 2  # seed 002: email open +2


def test_every_open_counts_but_only_the_first_records_a_signal(tenant, django_capture_on_commit_callbacks):
    lead = scored_lead(tenant)
    message = sent_message(tenant=tenant, lead=lead)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            assert Client().get(pixel_url(message.pk)).status_code == 200
    message.refresh_from_db()
    first_opened_at = message.opened_at
    assert message.open_count == 3
    assert len(signals_of(lead, "email_open")) == 1
    assert message_opened(message_id=message.pk) is False
    message.refresh_from_db()
    assert message.open_count == 4 and message.opened_at == first_opened_at


@pytest.mark.parametrize("token", ["not-a-token", "eyJmb28iOiJiYXIifQ:1u2v3w:forgedsignatureforgedsignature"])
def test_pixel_of_a_bad_token_is_the_same_gif_and_records_nothing(tenant, token):
    message = sent_message(tenant=tenant)
    response = Client().get(reverse("nurture-open", args=[token]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif" and response.content == TRANSPARENT_GIF
    message.refresh_from_db()
    assert message.open_count == 0 and message.opened_at is None
    assert not Signal.objects.unscoped().exists()


def test_pixel_of_an_expired_or_other_purpose_token_records_nothing(tenant):
    message = sent_message(tenant=tenant)
    for token in (old_token(tokens.open_token, message.pk),           # an email from 400 days ago
                  tokens.unsubscribe_token(message.pk),                # right message, wrong salt
                  tokens.open_token(message.pk)[:-2] + "xx"):          # altered signature
        response = Client().get(reverse("nurture-open", args=[token]))
        assert response.status_code == 200 and response.content == TRANSPARENT_GIF
    message.refresh_from_db()
    assert message.open_count == 0
    assert not Signal.objects.unscoped().exists()


def test_pixel_of_a_deleted_message_and_head_requests_record_nothing(tenant):
    message = sent_message(tenant=tenant)
    gone = Client().get(pixel_url("0b0b0b0b-0000-4000-8000-000000000000"))
    assert gone.status_code == 200 and gone.content == TRANSPARENT_GIF
    head = Client().head(pixel_url(message.pk))
    assert head.status_code == 200
    message.refresh_from_db()
    assert message.open_count == 0
    assert not Signal.objects.unscoped().exists()


# --- click-through -----------------------------------------------------------------------------------


def test_click_redirects_to_the_signed_url_records_the_click_and_rescores(tenant, django_capture_on_commit_callbacks):
    lead = scored_lead(tenant)
    message = sent_message(tenant=tenant, lead=lead)
    before = lead.score

    with django_capture_on_commit_callbacks(execute=True):
        response = Client().get(click_url(message.pk))

    assert response.status_code == 302
    assert response["Location"] == GUIDE
    assert response["Referrer-Policy"] == "no-referrer"
    message.refresh_from_db()
    assert message.clicked_at is not None and message.click_count == 1
    # A click is also an open (images may have been blocked): opened, with the open signal, once.
    assert message.opened_at is not None and message.open_count == 1
    [click] = signals_of(lead, "email_click")
    assert click.properties["url"] == GUIDE and click.properties["subject"] == message.subject
    assert click.external_id.startswith(f"nurture:{message.pk}:click:")
    assert len(signals_of(lead, "email_open")) == 1
    lead.refresh_from_db()
    assert lead.score == before + 5 + 2  # seed 002: click +5, open +2


def test_clicks_count_every_time_and_record_one_signal_per_url(tenant, django_capture_on_commit_callbacks):
    lead = scored_lead(tenant)
    message = sent_message(tenant=tenant, lead=lead)
    pricing = "https://acme.example/pricing"
    with django_capture_on_commit_callbacks(execute=True):
        Client().get(pixel_url(message.pk))
        for url in (GUIDE, GUIDE, pricing, GUIDE):
            assert Client().get(click_url(message.pk, url)).status_code == 302
    message.refresh_from_db()
    assert message.click_count == 4 and message.open_count == 1
    assert sorted(s.properties["url"] for s in signals_of(lead, "email_click")) == sorted([GUIDE, pricing])
    assert len(signals_of(lead, "email_open")) == 1  # the pixel's; the clicks did not add another
    assert message_clicked(message_id=message.pk, url=pricing) is False
    assert message_clicked(message_id=message.pk, url="https://acme.example/new") is True


def test_a_later_pixel_after_a_click_adds_no_second_open_signal(tenant):
    message = sent_message(tenant=tenant)
    message_clicked(message_id=message.pk, url=GUIDE)
    assert message_opened(message_id=message.pk) is False
    message.refresh_from_db()
    assert message.open_count == 2
    assert Signal.objects.unscoped().filter(type="email_open").count() == 1


def test_tampered_click_token_is_refused_with_a_clear_page_and_nothing_recorded(tenant):
    message = sent_message(tenant=tenant)
    token = tokens.click_token(message.pk, GUIDE)
    # Swap the payload (message + URL) for one pointing elsewhere, keeping the original timestamp and signature.
    _payload, stamp, signature = token.rsplit(":", 2)
    evil = signing.dumps({"m": str(message.pk), "u": "https://evil.example/"}, salt=tokens.CLICK_SALT, compress=True)
    tampered = f"{evil.rsplit(':', 2)[0]}:{stamp}:{signature}"
    for bad in (tampered, token[:-3] + "abc", "garbage", tokens.open_token(message.pk)):
        response = Client().get(reverse("nurture-click", args=[bad]))
        assert response.status_code == 400, bad
        assert "This link is not valid" in response.content.decode()
        assert "evil.example" not in response.get("Location", "")
    message.refresh_from_db()
    assert message.click_count == 0 and message.opened_at is None
    assert not Signal.objects.unscoped().exists()


def test_click_token_with_a_non_http_url_is_refused(tenant):
    message = sent_message(tenant=tenant)
    for url in ("javascript:alert(1)", "data:text/html,hi", "//evil.example/", "ftp://files.example/x"):
        response = Client().get(reverse("nurture-click", args=[tokens.click_token(message.pk, url)]))
        assert response.status_code == 400, url
    message.refresh_from_db()
    assert message.click_count == 0
    assert not Signal.objects.unscoped().exists()


def test_expired_click_token_gets_a_410_page_and_records_nothing(tenant):
    message = sent_message(tenant=tenant)
    response = Client().get(reverse("nurture-click", args=[old_token(tokens.click_token, message.pk, GUIDE)]))
    assert response.status_code == 410
    assert "This link has expired" in response.content.decode()
    message.refresh_from_db()
    assert message.click_count == 0
    assert not Signal.objects.unscoped().exists()


def test_link_age_follows_the_setting(tenant, settings):
    message = sent_message(tenant=tenant)
    token = old_token(tokens.click_token, message.pk, GUIDE, days=20)
    settings.NURTURE_LINK_MAX_AGE_DAYS = 30
    assert Client().get(reverse("nurture-click", args=[token])).status_code == 302
    settings.NURTURE_LINK_MAX_AGE_DAYS = 10
    assert Client().get(reverse("nurture-click", args=[token])).status_code == 410


def test_click_of_a_deleted_message_still_redirects_and_head_records_nothing(tenant):
    message = sent_message(tenant=tenant)
    gone = Client().get(click_url("0b0b0b0b-0000-4000-8000-000000000000"))
    assert gone.status_code == 302 and gone["Location"] == GUIDE
    head = Client().head(click_url(message.pk))
    assert head.status_code == 302
    message.refresh_from_db()
    assert message.click_count == 0
    assert not Signal.objects.unscoped().exists()


def test_tracking_of_one_tenants_message_touches_only_that_tenant(tenant, other_tenant):
    mine = sent_message(tenant=tenant, lead=NurtureLeadFactory(tenant=tenant, email="same@person.example"))
    theirs = sent_message(tenant=other_tenant, lead=NurtureLeadFactory(tenant=other_tenant,
                                                                        email="same@person.example"))
    Client().get(pixel_url(mine.pk))
    Client().get(click_url(mine.pk))
    theirs.refresh_from_db()
    assert theirs.open_count == 0 and theirs.click_count == 0
    assert set(Signal.objects.unscoped().values_list("tenant_id", flat=True)) == {tenant.pk}
    assert not Signal.objects.unscoped().filter(lead=theirs.lead).exists()


def test_tracking_never_changes_the_enrolment(tenant):
    message = sent_message(tenant=tenant)
    message_opened(message_id=message.pk)
    message_clicked(message_id=message.pk, url=GUIDE)
    enrollment = Enrollment.objects.unscoped().get(pk=message.enrollment_id)
    assert enrollment.status == EnrollmentStatus.ACTIVE


def test_unknown_message_is_a_no_op_for_the_services(tenant):
    assert message_opened(message_id="0b0b0b0b-0000-4000-8000-000000000000") is False
    assert message_clicked(message_id="0b0b0b0b-0000-4000-8000-000000000000", url=GUIDE) is False
    assert not Signal.objects.unscoped().exists()
