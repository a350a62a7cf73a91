"""The subject access export (issue 15) and the privacy commands: the export holds each kind of data the tenant
keeps about the person, in a fixed number of queries; `privacy_export` writes it, `privacy_erase` asks first and
prints counts, never the person's data; both audit as the admin named, and refuse anyone else."""
from __future__ import annotations

import io
import json
import os

import pytest
from django.core.management import CommandError, call_command

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Role
from leads.erasure import email_hash
from leads.models import Lead
from tests.support.privacy import new_person, person_build, routed, rows_holding
from tests.support.sla import smtp_server  # noqa: F401 (fixture)
from tests.support.workspace import person as member
from workspace.services.privacy import person_export

pytestmark = pytest.mark.django_db


@pytest.fixture
def built(client, tenant, lead_form, smtp_server, django_capture_on_commit_callbacks):  # noqa: F811
    routed(tenant)
    return person_build(client=client, tenant=tenant, form=lead_form, person=new_person(),
                        capture_callbacks=django_capture_on_commit_callbacks)


@pytest.fixture
def tenant_admin(tenant):
    return member(tenant, role=Role.ADMIN, username="privacy-admin@acme.test")


def test_the_export_holds_every_kind_of_data_about_the_person(tenant, built, tenant_admin,
                                                              django_assert_max_num_queries):
    with django_assert_max_num_queries(25):
        export = person_export(tenant=tenant, email=f" {built.email.upper()} ", actor=Actor.for_user(tenant_admin))
    assert export["subject"] == {"email": built.email, "tenant": tenant.slug} and export["erased"] is False
    [entry] = export["leads"]
    lead = entry["lead"]
    assert (lead["email"], lead["first_name"], lead["last_name"], lead["phone"]) == (
        built.email, built.first_name, built.last_name, built.phone)
    [touch] = entry["touches"]
    assert touch["payload"]["first_name"] == built.first_name and touch["payload"]["phone"] == built.phone_typed
    assert {s["external_id"] for s in entry["signals"]} == {f"before-{built.email}", f"after-{built.first_name}"}
    assert any(built.first_name in a["body"] for a in entry["activities"])
    [sent] = entry["emails_sent"]
    assert sent["to_email"] == built.email and sent["status"] == "sent" and sent["body_text"]
    assert len(entry["nurture_enrollments"]) == 1
    assert entry["assignments"] and entry["assignments"][0]["owner_id"] is not None
    assert entry["score_changes"]
    [opportunity] = entry["opportunities"]
    assert built.last_name in opportunity["name"] or opportunity["lead_id"] == str(built.lead.pk)
    assert entry["stage_transitions"] and entry["stage_transitions"][-1]["to_stage"]
    consent = entry["consent"]
    assert consent["marketing_consent"] is True and consent["consent_at"]
    assert consent["history"][0]["action"] == "lead.created"
    assert consent["history"][0]["changes"]["marketing_consent"] == [None, True]
    assert {e["action"] for e in entry["audit_trail"]} >= {"lead.created", "lead.updated"}
    # The former last name is in the audit trail's before/after values, which the export includes.
    assert built.former_last_name in json.dumps(entry["audit_trail"])
    assert export["signals_waiting_for_a_lead"] == []  # the early signal was attached when the lead arrived

    [event] = AuditEvent.objects.unscoped().filter(tenant=tenant, action="person.exported")
    assert event.object_id == email_hash(built.email) and event.actor_user_id == tenant_admin.pk
    assert event.metadata["counts"]["leads"] == 1 and event.metadata["counts"]["touches"] == 1
    assert built.email not in json.dumps(event.metadata)


def test_the_export_of_an_erased_person_says_so_and_holds_nothing_personal(tenant, built, tenant_admin):
    call_command("privacy_erase", built.email, tenant=tenant.slug, yes=True, stdout=io.StringIO())
    export = person_export(tenant=tenant, email=built.email)
    assert export["erased"] is True and export["leads"] == []


def test_the_export_of_a_stranger_is_empty_not_an_error(tenant, other_tenant, built):
    export = person_export(tenant=other_tenant, email=built.email)
    assert export["leads"] == [] and export["erased"] is False


def test_privacy_export_command_writes_the_json_to_a_private_file(tenant, built, tenant_admin, tmp_path):
    out = tmp_path / "export.json"
    call_command("privacy_export", built.email, tenant=tenant.slug, output=str(out), actor=tenant_admin.username,
                 stderr=io.StringIO())
    assert os.stat(out).st_mode & 0o777 == 0o600
    data = json.loads(out.read_text())
    assert data["leads"][0]["lead"]["first_name"] == built.first_name


def test_privacy_erase_command_prints_counts_and_never_the_persons_data(tenant, built, tenant_admin):
    stdout = io.StringIO()
    call_command("privacy_erase", built.email, tenant=tenant.slug, yes=True, actor=tenant_admin.username,
                 stdout=stdout)
    text = stdout.getvalue()
    assert email_hash(built.email)[:16] in text and "1 lead(s) anonymised" in text and "leads_lead" in text
    for needle in built.needles:
        assert needle.lower() not in text.lower()
    assert rows_holding(built.needles) == {}
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="person.erased")
    assert event.actor_user_id == tenant_admin.pk


def test_privacy_erase_command_asks_first_and_a_no_erases_nothing(tenant, built, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Not erased"):
        call_command("privacy_erase", built.email, tenant=tenant.slug, stdout=io.StringIO())
    assert Lead.objects.unscoped().get(pk=built.lead.pk).erased_at is None
    prompts = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "yes")
    call_command("privacy_erase", built.email, tenant=tenant.slug, stdout=io.StringIO())
    assert Lead.objects.unscoped().get(pk=built.lead.pk).erased_at is not None
    assert built.email not in prompts[0]
    event = AuditEvent.objects.unscoped().get(tenant=tenant, action="person.erased")
    assert event.actor_kind == "system" and "privacy_erase" in event.actor_name


@pytest.mark.parametrize("role", [Role.MANAGER, Role.MARKETING_OPS, Role.SDR, Role.AE])
def test_the_commands_refuse_an_actor_who_is_not_an_admin_of_the_tenant(tenant, built, role):
    someone = member(tenant, role=role)
    for command in ("privacy_erase", "privacy_export"):
        with pytest.raises(CommandError, match="only admins"):
            call_command(command, built.email, tenant=tenant.slug, actor=someone.username, yes=True,
                         stdout=io.StringIO()) if command == "privacy_erase" else call_command(
                command, built.email, tenant=tenant.slug, actor=someone.username, stdout=io.StringIO())
    assert Lead.objects.unscoped().get(pk=built.lead.pk).erased_at is None


def test_an_admin_of_another_tenant_is_refused(tenant, other_tenant, built):
    stranger = member(other_tenant, role=Role.ADMIN)
    with pytest.raises(CommandError, match="only admins"):
        call_command("privacy_erase", built.email, tenant=tenant.slug, actor=stranger.username, yes=True,
                     stdout=io.StringIO())
    assert Lead.objects.unscoped().get(pk=built.lead.pk).erased_at is None


def test_bad_input_is_a_command_error(tenant):
    with pytest.raises(CommandError, match="No tenant"):
        call_command("privacy_erase", "a@b.example", tenant="nope", yes=True)
    with pytest.raises(CommandError, match="email"):
        call_command("privacy_erase", "   ", tenant=tenant.slug, yes=True)
