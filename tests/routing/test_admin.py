"""Routing admin: bad input is a message on the field and writes nothing, tenant isolation by list and by
URL, roles, read-only history, the dry-run page, the membership capacity check."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from leadmgmt.audit.actors import SYSTEM
from leadmgmt.audit.models import AuditEvent
from leadmgmt.tenancy.models import Membership, Role, Team
from routing.defaults import routing_defaults_create
from routing.models import Assignment, EscalationStep, RoutingRule, RoutingRuleMember, SlaPolicy
from tests.support.routing import lead, rep, team

pytestmark = pytest.mark.django_db


def staff(tenant, role) -> Client:
    user = rep(tenant, role=role)
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def ops(tenant):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    return staff(tenant, Role.MARKETING_OPS)


def rule_post(ops_client, data=None, members=(), obj=None):
    base = {"position": 50, "name": "EMEA", "is_active": "on", "conditions": "[]", "strategy": "round_robin",
            "team": "", "roles": "[]", "fall_through": "on"}
    base.update(data or {})
    base.update({"members-TOTAL_FORMS": str(len(members)), "members-INITIAL_FORMS": "0"})
    for i, (user_id, weight) in enumerate(members):
        base.update({f"members-{i}-user": str(user_id), f"members-{i}-weight": str(weight)})
    target = reverse("admin:routing_routingrule_change", args=[obj.pk]) if obj else reverse(
        "admin:routing_routingrule_add")
    return ops_client.post(target, base)


def form_errors(response) -> dict:
    assert response.status_code == 200, "a refused save re-renders the form"
    errors = dict(response.context["adminform"].form.errors)
    for formset in response.context["inline_admin_formsets"]:
        errors["inline"] = [*formset.formset.non_form_errors(), *[e for f in formset.formset.errors for e in f.items()]]
    return errors


# --- routing rules: bad input ---------------------------------------------------------------------------


def test_a_valid_rule_is_saved_with_its_people_and_audited(tenant, ops):
    sdrs = team(tenant, "EMEA SDRs")
    person = rep(tenant, sdrs)
    response = rule_post(ops, {"team": sdrs.pk, "conditions": '[{"field": "country", "operator": "equals", '
                                                               '"value": "Germany"}]'}, members=[(person.pk, 2)])
    assert response.status_code == 302, form_errors(response)
    created = RoutingRule.objects.unscoped().get(tenant=tenant, position=50)
    assert RoutingRuleMember.objects.unscoped().get(rule=created).weight == 2
    assert AuditEvent.objects.unscoped().filter(action="routing_rule.created", object_id=str(created.pk)).exists()


def test_two_rules_at_one_position_is_a_message_not_a_500(tenant, ops):
    response = rule_post(ops, {"position": 20, "team": team(tenant).pk})
    assert "already has position 20" in form_errors(response)["position"][0]
    assert RoutingRule.objects.unscoped().filter(tenant=tenant).count() == 3


def test_a_team_of_another_tenant_or_a_deleted_one_is_refused(tenant, other_tenant, ops):
    theirs = team(other_tenant, "Theirs")
    assert "team" in form_errors(rule_post(ops, {"team": theirs.pk}))
    assert "team" in form_errors(rule_post(ops, {"team": 999999}))
    assert not RoutingRule.objects.unscoped().filter(position=50).exists()


def test_a_team_used_by_a_rule_cannot_be_deleted(tenant):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    admin_client = staff(tenant, Role.ADMIN)
    default = Team.objects.unscoped().get(tenant=tenant, name="Sales Development")
    response = admin_client.post(reverse("admin:tenancy_team_delete", args=[default.pk]), {"post": "yes"})
    assert response.status_code == 200 and b"protected" in response.content.lower()
    assert Team.objects.unscoped().filter(pk=default.pk).exists()


def test_a_person_of_another_tenant_is_refused(tenant, other_tenant, ops):
    outsider = rep(other_tenant)
    response = rule_post(ops, {"strategy": "direct"}, members=[(outsider.pk, 1)])
    assert form_errors(response)["inline"]
    assert not RoutingRule.objects.unscoped().filter(position=50).exists()


def test_a_weight_below_zero_is_refused(tenant, ops):
    person = rep(tenant)
    response = rule_post(ops, {"strategy": "weighted_round_robin"}, members=[(person.pk, -1)])
    assert any("below zero" in str(e) for e in form_errors(response)["inline"])
    assert not RoutingRule.objects.unscoped().filter(position=50).exists()


def test_a_team_whose_every_rep_is_capped_at_zero_is_refused(tenant, ops):
    capped = team(tenant, "Capped")
    rep(tenant, capped, capacity=0)
    rep(tenant, capped, capacity=0)
    response = rule_post(ops, {"team": capped.pk})
    assert "cap of 0" in form_errors(response)["team"][0]
    assert not RoutingRule.objects.unscoped().filter(position=50).exists()


def test_a_round_robin_without_team_or_people_and_bad_conditions_are_refused(tenant, ops):
    assert "needs a team or people" in str(form_errors(rule_post(ops))["inline"])
    bad = form_errors(rule_post(ops, {"team": team(tenant).pk, "conditions": '[{"field": "shoe_size"}]'}))
    assert "conditions" in bad
    assert not RoutingRule.objects.unscoped().filter(position=50).exists()


# --- SLA policies ------------------------------------------------------------------------------------------


def sla_post(client, minutes, steps):
    data = {"position": 70, "name": "VIP", "is_active": "on", "kind": "first_contact", "sources": "[]",
            "bands": "[]", "stages": "[]", "minutes": str(minutes),
            "steps-TOTAL_FORMS": str(len(steps)), "steps-INITIAL_FORMS": "0"}
    for i, (level, after, action) in enumerate(steps):
        data.update({f"steps-{i}-level": level, f"steps-{i}-after_minutes": after, f"steps-{i}-action": action})
    return client.post(reverse("admin:routing_slapolicy_add"), data)


@pytest.mark.parametrize("minutes", [0, -5])
def test_an_sla_of_zero_or_negative_minutes_is_refused(tenant, ops, minutes):
    assert "positive number of minutes" in form_errors(sla_post(ops, minutes, []))["minutes"][0]
    assert not SlaPolicy.objects.unscoped().filter(tenant=tenant, position=70).exists()


def test_escalation_steps_out_of_order_are_refused(tenant, ops):
    response = sla_post(ops, 30, [(1, 60, "alert_manager"), (2, 10, "reassign")])
    assert "out of order" in str(form_errors(response)["inline"])
    gap = sla_post(ops, 30, [(1, 0, "alert_manager"), (3, 10, "reassign")])
    assert "without gaps" in str(form_errors(gap)["inline"])
    assert not SlaPolicy.objects.unscoped().filter(tenant=tenant, position=70).exists()
    ok = sla_post(ops, 30, [(1, 0, "alert_manager"), (2, 60, "reassign")])
    assert ok.status_code == 302
    assert EscalationStep.objects.unscoped().filter(policy__position=70).count() == 2


# --- isolation and roles -----------------------------------------------------------------------------------


def test_marketing_ops_sees_and_reaches_only_their_tenants_config(tenant, other_tenant, ops):
    routing_defaults_create(tenant=other_tenant, actor=SYSTEM)
    RoutingRule.objects.unscoped().filter(tenant=other_tenant, position=20).update(name="Globex secret rule")
    theirs_rule = RoutingRule.objects.unscoped().get(tenant=other_tenant, position=20)
    theirs_policy = SlaPolicy.objects.unscoped().filter(tenant=other_tenant).first()
    listing = ops.get(reverse("admin:routing_routingrule_changelist")).content.decode()
    assert "Round-robin among available SDRs" in listing and "Globex secret rule" not in listing
    for name, obj in (("routingrule", theirs_rule), ("slapolicy", theirs_policy)):
        response = ops.get(reverse(f"admin:routing_{name}_change", args=[obj.pk]), follow=True)
        assert b"doesn" in response.content  # "… doesn't exist. Perhaps it was deleted?"
    response = rule_post(ops, {"name": "Hijack", "team": ""}, obj=theirs_rule)
    assert RoutingRule.objects.unscoped().get(pk=theirs_rule.pk).name == "Globex secret rule"
    assert response.status_code in (302, 404)


def test_team_choices_are_the_tenants_own(tenant, other_tenant, ops):
    team(other_tenant, "Theirs")
    page = ops.get(reverse("admin:routing_routingrule_add"))
    names = {t.name for t in page.context["adminform"].form.fields["team"].queryset}
    assert "Sales Development" in names and "Theirs" not in names


@pytest.mark.parametrize("role", [Role.SDR, Role.AE, Role.MANAGER])
def test_sales_roles_have_no_access(tenant, role):
    client = staff(tenant, role)
    for name in ("routingrule", "slapolicy", "territory", "assignment", "rejectionreason"):
        assert client.get(reverse(f"admin:routing_{name}_changelist")).status_code == 403


def test_history_lists_are_read_only_and_scoped(tenant, other_tenant, ops):
    mine = lead(tenant, first_name="Mina", last_name="Mine")
    theirs = lead(other_tenant, first_name="Theo", last_name="Theirs")
    for x in (mine, theirs):
        Assignment.objects.unscoped().create(tenant_id=x.tenant_id, lead=x, trigger="capture", actor_kind="system",
                                             actor_name="System")
    body = ops.get(reverse("admin:routing_assignment_changelist")).content.decode()
    assert "Mina Mine" in body and "Theo Theirs" not in body
    assert ops.get(reverse("admin:routing_assignment_add")).status_code == 403
    for name in ("slaclock", "escalation", "notification"):
        assert ops.get(reverse(f"admin:routing_{name}_changelist")).status_code == 200


# --- dry run and memberships ---------------------------------------------------------------------------------


def test_dry_run_page_answers_without_assigning(tenant, other_tenant, ops):
    sdrs = Team.objects.unscoped().get(tenant=tenant, name="Sales Development")
    person = rep(tenant, sdrs, role=Role.SDR)
    dry = reverse("admin:routing_routingrule_dry_run")
    response = ops.post(dry, {"values": '{"country": "Germany"}'})
    body = response.content.decode()
    assert response.status_code == 200 and "Round-robin among available SDRs" in body and person.email in body
    real = lead(tenant)
    ops.post(dry, {"lead_id": str(real.pk)})
    assert not Assignment.objects.unscoped().filter(lead=real).exists()
    theirs = ops.post(dry, {"lead_id": str(lead(other_tenant).pk)})
    assert "No lead of this tenant" in theirs.content.decode()
    assert "Not valid JSON" in ops.post(dry, {"values": "{nope"}).content.decode()
    assert "Unknown lead field" in ops.post(dry, {"values": '{"shoe_size": 44}'}).content.decode()
    action = ops.post(reverse("admin:routing_routingrule_changelist"), {
        "action": "dry_run", "_selected_action": [RoutingRule.objects.unscoped().filter(tenant=tenant).first().pk]})
    assert action.status_code == 302 and action["Location"].endswith("/dry-run/")


def test_capping_the_last_rep_of_a_routed_team_at_zero_is_refused(tenant):
    routing_defaults_create(tenant=tenant, actor=SYSTEM)
    admin_client = staff(tenant, Role.ADMIN)
    sdrs = Team.objects.unscoped().get(tenant=tenant, name="Sales Development")
    only = rep(tenant, sdrs)
    membership = Membership.objects.unscoped().get(tenant=tenant, user=only)
    page = admin_client.get(reverse("admin:tenancy_membership_change", args=[membership.pk]))
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update({"capacity": "0", "is_available": "on", "routing_weight": "1"})
    response = admin_client.post(reverse("admin:tenancy_membership_change", args=[membership.pk]), data)
    assert "cap of 0" in response.context["adminform"].form.errors["capacity"][0]
    assert Membership.objects.unscoped().get(pk=membership.pk).capacity is None
