"""lead_capture(): creation, matching/dedup (email, phone, company domain), merge rules, signals, audit."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leads.models import Account, Lead, Signal, Touch, TouchKind
from leads.services.capture import lead_capture
from tests.support.factories import AccountFactory, LeadFactory, UserFactory
from tests.support.intake import row_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def capture(lead_form):
    def _capture(data, **kwargs):
        return lead_capture(tenant=lead_form.tenant, data=data, actor=Actor.for_form(lead_form), form=lead_form, **kwargs)

    return _capture


def test_new_lead_gets_normalised_values_an_account_and_a_touch(capture, lead_form):
    result = capture({"email": " Ada@Acme.COM ", "phone": "415.555.0123", "company": "Acme Inc", "employees": "100-499"},
                     ip_address="192.0.2.1", user_agent="UA")
    lead = result.lead
    assert result.result == "created" and result.possible_duplicate_of is None
    assert (lead.email, lead.phone, lead.company_size, lead.company_domain) == ("ada@acme.com", "+14155550123", 100, "acme.com")
    assert (lead.source, lead.form, lead.owner, lead.is_personal_email) == ("web_form", lead_form, None, False)
    assert lead.account.domain == "acme.com" and lead.account.name == "Acme Inc"
    assert lead.last_activity_at == result.touch.received_at
    touch = result.touch
    assert (touch.kind, touch.lead, touch.ip_address, touch.user_agent) == (TouchKind.CREATED, lead, "192.0.2.1", "UA")
    assert touch.payload == {"email": " Ada@Acme.COM ", "phone": "415.555.0123", "company": "Acme Inc", "employees": "100-499"}
    assert "company_size" in touch.filled_fields


def test_explicit_source_wins_over_form_field_and_form_default(capture):
    assert capture({"email": "a@src.example"}).lead.source == "web_form"
    assert capture({"email": "b@src.example", "source": "webinar"}).lead.source == "webinar"
    assert capture({"email": "c@src.example", "source": "webinar"}, source="import").lead.source == "import"


def test_exact_email_match_merges_into_the_existing_lead(capture):
    first = capture({"email": "grace@navy.example", "first_name": "Grace"})
    again = capture({"email": "GRACE@Navy.Example", "first_name": "Amazing"})
    assert again.result == "merged" and again.lead.pk == first.lead.pk
    assert again.touch.kind == TouchKind.DUPLICATE
    assert Lead.objects.unscoped().count() == 1 and Touch.objects.unscoped().count() == 2
    assert Lead.objects.unscoped().get().first_name == "Grace"


def test_merge_fills_blanks_only_and_records_them_on_the_touch(capture, tenant):
    owner = UserFactory()
    lead = LeadFactory(tenant=tenant, email="kay@parc.example", first_name="Kay", last_name="", job_title="",
                       company="PARC", owner=owner, attributes={"interest": "smalltalk"})
    result = capture({"email": "kay@parc.example", "first_name": "Alan", "last_name": "Kay", "job_title": "Fellow",
                      "company": "Xerox PARC", "interest": "dynabook", "budget": "big"})
    lead.refresh_from_db()
    assert result.result == "merged"
    assert (lead.first_name, lead.last_name, lead.job_title, lead.company) == ("Kay", "Kay", "Fellow", "PARC")
    assert lead.owner == owner  # the original owner keeps the lead
    assert lead.attributes == {"interest": "smalltalk", "budget": "big"}
    assert result.touch.filled_fields == ["account", "attributes.budget", "company_domain", "job_title", "last_name"]
    event = AuditEvent.objects.unscoped().get(action="lead.merged")
    assert event.changes["job_title"] == ["", "Fellow"] and "company" not in event.changes
    assert event.object_id == str(lead.pk) and event.actor_kind == "form"


def test_merge_never_overwrites_a_field_a_rep_edited_even_when_blank(capture, tenant):
    lead = LeadFactory(tenant=tenant, email="edited@fields.example", phone="", job_title="", edited_fields=["phone"])
    result = capture({"email": "edited@fields.example", "phone": "+1 415 555 0177", "job_title": "CTO"})
    lead.refresh_from_db()
    assert (lead.phone, lead.job_title) == ("", "CTO")
    assert "phone" not in result.touch.filled_fields


def test_consent_is_given_by_a_later_submission_but_never_taken_away(capture, tenant):
    lead = LeadFactory(tenant=tenant, email="consent@later.example")
    capture({"email": "consent@later.example", "marketing_consent": "off"})
    lead.refresh_from_db()
    assert not lead.marketing_consent and lead.consent_at is None
    capture({"email": "consent@later.example", "consent": "yes", "page_url": "https://acme.example/webinar"})
    lead.refresh_from_db()
    assert lead.marketing_consent and lead.consent_at is not None
    assert lead.consent_source == "Form Website (https://acme.example/webinar)"
    capture({"email": "consent@later.example", "consent": "0"})
    lead.refresh_from_db()
    assert lead.marketing_consent


def test_same_company_domain_new_person_is_a_new_lead_under_the_same_account(capture):
    ada = capture({"email": "ada@acme.example", "company": "Acme"})
    bob = capture({"email": "bob@acme.example", "company": "ACME Corporation"})
    assert bob.result == "created" and bob.lead.pk != ada.lead.pk
    assert bob.lead.account_id == ada.lead.account_id
    assert Account.objects.unscoped().get().name == "Acme"  # named after the first lead's company
    assert AuditEvent.objects.unscoped().filter(action="account.created").count() == 1


def test_existing_account_without_a_name_takes_the_company(capture, tenant):
    account = AccountFactory(tenant=tenant, domain="noname.example", name="")
    capture({"email": "x@noname.example", "company": "No Name Ltd"})
    account.refresh_from_db()
    assert account.name == "No Name Ltd"


@pytest.mark.parametrize("variant", ["https://www.Acme.com/", "ACME.com:443/path", "www.acme.com", "acme.com"])
def test_every_spelling_of_a_domain_is_one_account(capture, variant):
    first = capture({"email": "buyer@acme.com"})
    other = capture({"email": f"someone-{len(variant)}@gmail.com", "website": variant})
    assert other.lead.account_id == first.lead.account_id
    assert Account.objects.unscoped().count() == 1


def test_idn_domain_in_unicode_and_punycode_is_one_account(capture):
    unicode_lead = capture({"email": "a@gmail.com", "website": "https://bücher.example/"}).lead
    punycode_lead = capture({"email": "b@xn--bcher-kva.example"}).lead
    assert unicode_lead.account_id == punycode_lead.account_id
    assert Account.objects.unscoped().get().domain == "xn--bcher-kva.example"


@pytest.mark.parametrize("domain", ["gmail.com", "outlook.com", "yahoo.com", "hotmail.co.uk", "icloud.com", "proton.me"])
def test_free_mail_leads_are_flagged_personal_and_get_no_account(capture, domain):
    lead = capture({"email": f"someone@{domain}", "company": "Own Business"}).lead
    assert lead.is_personal_email and lead.account is None and lead.company_domain == ""
    assert Account.objects.unscoped().count() == 0


def test_free_mail_lead_with_a_company_website_gets_that_account(capture):
    lead = capture({"email": "founder@gmail.com", "company_domain": "https://www.startup.example"}).lead
    assert lead.is_personal_email and lead.account.domain == "startup.example"


def test_phone_match_with_another_email_is_flagged_as_a_possible_duplicate(capture, tenant):
    original = LeadFactory(tenant=tenant, email="office@phone.example", phone="+14155550142")
    result = capture({"email": "home@other.example", "phone": "(415) 555-0142"})
    assert result.result == "created" and result.possible_duplicate_of == original
    assert Lead.objects.unscoped().get(pk=result.lead.pk).possible_duplicate_of_id == original.pk


def test_phone_only_submission_merges_into_the_lead_with_that_phone(capture, tenant):
    original = LeadFactory(tenant=tenant, email="known@phone.example", phone="+14155550143", job_title="")
    result = capture({"phone": "415-555-0143", "job_title": "Buyer"})
    assert result.result == "merged" and result.lead.pk == original.pk
    original.refresh_from_db()
    assert original.job_title == "Buyer"
    assert AuditEvent.objects.unscoped().get(action="lead.merged").metadata["matched_on"] == "phone"


def test_phone_only_submission_with_a_new_phone_creates_a_lead(capture):
    result = capture({"phone": "+44 20 7946 0958", "first_name": "Phone"})
    assert result.result == "created" and result.lead.email == "" and result.lead.phone == "+442079460958"


def test_pending_signals_are_attached_to_the_new_lead(capture, tenant, other_tenant, django_capture_on_commit_callbacks):
    now = timezone.now()
    mine = [Signal.objects.unscoped().create(tenant=tenant, email="early@bird.example", type="pricing_page_view",
                                             occurred_at=now - timedelta(days=d)) for d in (1, 3)]
    theirs = Signal.objects.unscoped().create(tenant=other_tenant, email="early@bird.example", type="email_open", occurred_at=now)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = capture({"email": "Early@Bird.example"})
    assert {s.pk for s in Signal.objects.unscoped().filter(lead=result.lead)} == {s.pk for s in mine}
    theirs.refresh_from_db()
    assert theirs.lead_id is None
    attached = AuditEvent.objects.unscoped().get(action="lead.created").metadata["attached_signal_ids"]
    assert sorted(attached) == sorted(s.pk for s in mine)
    # One callback processes the attached signals; one has the new lead scored, then routed.
    assert len(callbacks) == 2
    assert all(s.processed_at is not None for s in Signal.objects.unscoped().filter(lead=result.lead))


def test_audit_events_of_a_created_lead(capture):
    result = capture({"email": "audit@trail.example", "first_name": "Audit", "company": "Trail"})
    created = AuditEvent.objects.unscoped().get(action="lead.created")
    assert created.object_type == "leads.lead" and created.object_id == str(result.lead.pk)
    assert created.changes["first_name"] == [None, "Audit"] and created.changes["account"] == [None, str(result.lead.account_id)]
    assert created.metadata["touch_id"] == result.touch.pk and created.actor_name == "Form Website"
    account = AuditEvent.objects.unscoped().get(action="account.created")
    assert account.changes == {"domain": [None, "trail.example"], "name": [None, "Trail"]}


def test_a_new_lead_names_its_account_when_the_account_had_no_name(capture, tenant):
    account = Account.objects.unscoped().create(tenant=tenant, domain="nameless.example", name="")
    result = capture({"email": "first@nameless.example", "company": "Nameless Inc"})
    account.refresh_from_db()
    assert result.lead.account == account and account.name == "Nameless Inc"
    named = AuditEvent.objects.unscoped().get(action="account.updated")
    assert named.object_id == str(account.pk) and named.changes == {"name": ["", "Nameless Inc"]}
    assert [e.action for e in AuditEvent.objects.unscoped().order_by("id")] == ["account.updated", "lead.created"]
    assert AuditEvent.objects.unscoped().get(action="lead.created").changes["account"] == [None, str(account.pk)]


def test_a_merge_that_brings_a_new_company_creates_its_account_once(capture, tenant):
    lead = LeadFactory(tenant=tenant, email="ceo@merger.example", company="", account=None)
    result = capture({"email": "ceo@merger.example", "company": "Merger Co"})
    assert result.result == "merged" and result.lead.pk == lead.pk
    account = Account.objects.unscoped().get(domain="merger.example")
    lead.refresh_from_db()
    assert lead.account == account and lead.company == "Merger Co"
    assert [e.action for e in AuditEvent.objects.unscoped().order_by("id")] == ["account.created", "lead.merged"]
    assert AuditEvent.objects.unscoped().get(action="account.created").object_id == str(account.pk)
    assert Touch.objects.unscoped().filter(lead=lead).count() == 1


def test_a_possible_duplicate_is_named_in_the_created_event(capture, tenant):
    original = LeadFactory(tenant=tenant, email="desk@dupe.example", phone="+14155550177")
    result = capture({"email": "mobile@elsewhere.example", "phone": "415 555 0177"})
    created = AuditEvent.objects.unscoped().get(action="lead.created")
    assert created.metadata["possible_duplicate_of"] == str(original.pk) == str(result.possible_duplicate_of.pk)
    assert created.metadata["touch_id"] == result.touch.pk and "attached_signal_ids" not in created.metadata


def test_invalid_data_raises_field_errors_and_writes_nothing(capture):
    before = row_counts()
    with pytest.raises(ValidationError) as excinfo:
        capture({"email": "broken", "firstname": "x" * 10_000, "phone": "nope"})
    assert set(excinfo.value.message_dict) == {"email", "firstname", "phone"}
    assert row_counts() == before


def test_capture_without_a_form(tenant):
    result = lead_capture(tenant=tenant, data={"email": "api@import.example"}, actor=Actor.agent("Importer"), source="import")
    assert result.lead.form is None and result.lead.source == "import" and result.touch.form is None


def test_other_tenants_lead_with_same_email_is_untouched(capture, other_tenant):
    theirs = LeadFactory(tenant=other_tenant, email="same@email.example", job_title="")
    result = capture({"email": "same@email.example", "job_title": "CTO"})
    theirs.refresh_from_db()
    assert result.result == "created" and theirs.job_title == ""


def test_idempotency_records_past_the_replay_window_are_purged(tenant, lead_form):
    from datetime import timedelta

    from django.utils import timezone

    from leads.models import IdempotencyRecord
    from leads.tasks import idempotency_purge_task

    now = timezone.now()
    fresh = IdempotencyRecord.objects.unscoped().create(
        tenant=tenant, form=lead_form, key="fresh", request_hash="x", status_code=201, response_body={})
    IdempotencyRecord.objects.unscoped().create(
        tenant=tenant, form=lead_form, key="stale", request_hash="x", status_code=201, response_body={},
        created_at=now - timedelta(hours=25))
    assert idempotency_purge_task.delay().get() == 1
    assert list(IdempotencyRecord.objects.unscoped().values_list("pk", flat=True)) == [fresh.pk]
