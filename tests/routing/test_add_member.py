"""`manage.py add_member`: creates or updates a membership, prints it, refuses bad input with exit code 2."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Membership, Team

pytestmark = pytest.mark.django_db


def add_member(*args) -> dict:
    out = StringIO()
    call_command("add_member", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_creates_a_user_and_membership_and_prints_it_with_the_password(tenant):
    data = add_member(tenant.slug, "Rep@Acme.test", "--role", "sdr", "--team", "SDR EMEA", "--capacity", "25")

    assert data == {"tenant": "acme-corp", "email": "rep@acme.test", "role": "sdr", "team": "SDR EMEA",
                    "capacity": 25, "is_available": True, "user_created": True, "password": data["password"]}
    user = get_user_model().objects.get(username="rep@acme.test")
    assert user.check_password(data["password"])
    membership = Membership.objects.unscoped().get(tenant=tenant, user=user)
    assert (membership.role, membership.team.name, membership.capacity) == ("sdr", "SDR EMEA", 25)
    assert AuditEvent.objects.unscoped().filter(tenant=tenant, action="membership.created").count() == 1


def test_updates_an_existing_member_without_a_new_password(tenant):
    add_member(tenant.slug, "rep@acme.test", "--role", "sdr", "--capacity", "10")

    data = add_member(tenant.slug, "rep@acme.test", "--role", "ae", "--team", "AEs", "--unavailable")

    assert data["user_created"] is False and "password" not in data
    assert (data["role"], data["team"], data["is_available"]) == ("ae", "AEs", False)
    assert data["capacity"] == 10, "a capacity not given keeps the current one"
    assert Membership.objects.unscoped().filter(tenant=tenant).count() == 1


def test_an_existing_user_joins_a_second_tenant(tenant, other_tenant):
    add_member(tenant.slug, "rep@acme.test", "--role", "sdr")
    data = add_member(other_tenant.slug, "rep@acme.test", "--role", "manager")
    assert data["user_created"] is False and data["tenant"] == "globex"
    assert Membership.objects.unscoped().filter(user__username="rep@acme.test").count() == 2


def test_plain_output_lists_the_fields(tenant):
    out = StringIO()
    call_command("add_member", tenant.slug, "x@acme.test", "--role", "ae", stdout=out)
    assert "role: ae" in out.getvalue() and "password: " in out.getvalue()


@pytest.mark.parametrize("args, message", [
    (["nope", "a@b.test", "--role", "sdr"], "No tenant with slug 'nope'"),
    (["acme-corp", "a@b.test", "--role", "wizard"], "Unknown role 'wizard'"),
    (["acme-corp", "a@b.test", "--role", "sdr", "--capacity", "-1"], "--capacity must be 0 or more"),
    (["acme-corp", "not-an-email", "--role", "sdr"], "not a valid email"),
    (["acme-corp", "a@b.test", "--role", "sdr", "--team", "  "], "--team must not be blank"),
])
def test_bad_input_is_a_clear_error_with_exit_code_2_and_writes_nothing(tenant, args, message):
    users, teams = get_user_model().objects.count(), Team.objects.unscoped().count()
    with pytest.raises(CommandError, match=message) as excinfo:
        call_command("add_member", *args, "--json", stdout=StringIO())
    assert excinfo.value.returncode == 2
    assert get_user_model().objects.count() == users and Team.objects.unscoped().count() == teams
    assert Membership.objects.unscoped().count() == 0


def test_run_as_a_process_it_exits_2_with_the_message_on_stderr(tenant):
    import os
    import subprocess
    import sys

    from django.conf import settings

    from tests.support.worker import test_database_url

    env = {**os.environ, "DATABASE_URL": test_database_url()}
    result = subprocess.run([sys.executable, str(settings.BASE_DIR / "manage.py"), "add_member", "nope",
                             "a@b.test", "--role", "sdr"], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 2
    assert "No tenant with slug 'nope'" in result.stderr and result.stdout == ""


def test_an_sdr_or_ae_without_a_team_joins_the_default_team_the_default_rules_reach(tenant):
    from leadmgmt.audit.actors import SYSTEM
    from leads.models import Lead
    from routing.defaults import routing_defaults_create
    from routing.services.assign import lead_route
    from tests.support.factories import LeadFactory

    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    sdr = add_member(tenant.slug, "sdr@acme.test", "--role", "sdr")
    ae = add_member(tenant.slug, "ae@acme.test", "--role", "ae")
    ops = add_member(tenant.slug, "ops@acme.test", "--role", "marketing_ops")

    assert (sdr["team"], ae["team"], ops["team"]) == ("Sales Development", "Sales Development", None)
    lead = LeadFactory(tenant=tenant)
    lead_route(lead=lead, actor=SYSTEM, trigger="capture")
    assert Lead.objects.unscoped().get(pk=lead.pk).owner.username == "sdr@acme.test"
    assert add_member(tenant.slug, "sdr@acme.test", "--role", "sdr")["team"] == "Sales Development"
