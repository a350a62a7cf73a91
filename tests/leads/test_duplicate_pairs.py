"""Possible duplicates beyond email: same phone, or same name at the same account, become one pair with a tier."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leads.models import DuplicatePair, DuplicateReason, DuplicateStatus, DuplicateTier, LeadStatus
from leads.services.duplicates import duplicate_pair_dismiss, duplicate_pairs_detect
from tests.support.factories import AccountFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


def _pairs(tenant) -> dict[frozenset, tuple[str, str]]:
    return {frozenset((p.lead_id, p.other_id)): (p.reason, p.tier)
            for p in DuplicatePair.objects.for_tenant(tenant)}


def test_same_phone_and_same_name_at_one_account_are_pairs_with_a_tier(tenant):
    account = AccountFactory(tenant=tenant)
    old = LeadFactory(tenant=tenant, first_name="Ada", last_name="Lovelace", phone="+442071234567")
    same_phone_same_name = LeadFactory(tenant=tenant, first_name="ada", last_name="LOVELACE", phone="+442071234567")
    same_phone_other_name = LeadFactory(tenant=tenant, first_name="Grace", last_name="Hopper", phone="+442071234567")
    at_account = LeadFactory(tenant=tenant, first_name="Alan", last_name="Turing", account=account)
    same_name_same_account = LeadFactory(tenant=tenant, first_name="Alan", last_name="Turing", account=account)
    same_name_no_account = LeadFactory(tenant=tenant, first_name="Alan", last_name="Turing")
    unrelated = LeadFactory(tenant=tenant, first_name="Edsger", last_name="Dijkstra", phone="+31201234567")

    new = [same_phone_same_name, same_phone_other_name, same_name_same_account, same_name_no_account, unrelated]
    with CaptureQueriesContext(connection) as queries:
        created = duplicate_pairs_detect(tenant=tenant, lead_ids=[lead.pk for lead in new])
    assert len(queries) == 1  # one statement for the whole batch

    phone, name = DuplicateReason.PHONE, DuplicateReason.NAME_ACCOUNT
    assert _pairs(tenant) == {
        frozenset((old.pk, same_phone_same_name.pk)): (phone, DuplicateTier.HIGH),
        frozenset((old.pk, same_phone_other_name.pk)): (phone, DuplicateTier.MEDIUM),
        frozenset((same_phone_same_name.pk, same_phone_other_name.pk)): (phone, DuplicateTier.MEDIUM),
        frozenset((at_account.pk, same_name_same_account.pk)): (name, DuplicateTier.MEDIUM),
    }
    assert created == 4
    for pair in DuplicatePair.objects.for_tenant(tenant):
        assert str(pair.lead_id) < str(pair.other_id) and pair.status == DuplicateStatus.OPEN


def test_detection_is_idempotent_and_a_dismissed_pair_stays_dismissed(tenant):
    a = LeadFactory(tenant=tenant, phone="+14155550100")
    b = LeadFactory(tenant=tenant, phone="+14155550100")
    assert duplicate_pairs_detect(tenant=tenant, lead_ids=[b.pk]) == 1
    assert duplicate_pairs_detect(tenant=tenant, lead_ids=[a.pk, b.pk]) == 0
    assert duplicate_pairs_detect(tenant=tenant) == 0  # the whole tenant (a backfill) finds the same pair

    pair = DuplicatePair.objects.for_tenant(tenant).get()
    manager = UserFactory()
    assert duplicate_pair_dismiss(pair=pair, actor=Actor.for_user(manager)) is True
    assert duplicate_pair_dismiss(pair=pair, actor=Actor.for_user(manager)) is False  # already closed
    assert duplicate_pairs_detect(tenant=tenant, lead_ids=[b.pk]) == 0
    pair.refresh_from_db()
    assert (pair.status, pair.resolved_by_id) == (DuplicateStatus.DISMISSED, manager.pk)
    [event] = AuditEvent.objects.for_tenant(tenant).filter(action="duplicate.dismissed")
    assert event.metadata["other_id"] == str(pair.other_id) and event.actor_user_id == manager.pk


def test_an_exact_email_is_never_a_pair_and_archived_leads_are_left_out(tenant):
    a = LeadFactory(tenant=tenant, phone="+14155550101")
    archived = LeadFactory(tenant=tenant, phone="+14155550101", status=LeadStatus.ARCHIVED)
    phone_only = LeadFactory(tenant=tenant, email="", phone="+14155550102")
    assert duplicate_pairs_detect(tenant=tenant, lead_ids=[a.pk, archived.pk, phone_only.pk]) == 0
    assert not DuplicatePair.objects.for_tenant(tenant).exists()


def test_leads_of_another_tenant_never_pair(tenant, other_tenant):
    mine = LeadFactory(tenant=tenant, first_name="Ada", last_name="Lovelace", phone="+442071234599")
    LeadFactory(tenant=other_tenant, first_name="Ada", last_name="Lovelace", phone="+442071234599")
    assert duplicate_pairs_detect(tenant=tenant, lead_ids=[mine.pk]) == 0
    assert duplicate_pairs_detect(tenant=other_tenant) == 0


def test_the_backfill_command_finds_the_pairs_once(tenant, capsys):
    import json

    from django.core.management import CommandError, call_command

    LeadFactory.create_batch(2, tenant=tenant, phone="+14155550199")
    call_command("duplicates_detect", tenant.slug, "--json")
    assert json.loads(capsys.readouterr().out) == {"tenant": tenant.slug, "new_pairs": 1, "open_pairs": 1}
    call_command("duplicates_detect", tenant.slug)
    assert "0 new possible duplicate pair(s); 1 open for review" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No tenant"):
        call_command("duplicates_detect", "no-such-tenant")


def test_a_pair_says_why_in_words():
    from leads.models import DuplicatePair

    assert DuplicatePair(reason="phone", tier="high").why == "Same phone number and name"
    assert DuplicatePair(reason="phone", tier="medium").why == "Same phone number"
    assert DuplicatePair(reason="name_account", tier="medium").why == "Same name at the same account"
