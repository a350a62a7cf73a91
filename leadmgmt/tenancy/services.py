"""Writes for tenancy: provisioning tenants, memberships and API keys (each in one transaction)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from leadmgmt.audit.actors import SYSTEM, Actor
from leadmgmt.audit.services import audit_record, diff, snapshot

from .context import tenant_scope
from .events import tenant_provisioned
from .models import ApiKey, ApiScope, Membership, Role, Team, Tenant

DEFAULT_TEAM = "Sales Development"
MEMBERSHIP_FIELDS = ["role", "team", "is_available", "capacity"]
STAFF_ROLES = {Role.ADMIN, Role.MARKETING_OPS}
# Reps without a named team join the default team, the one the default round-robin rule targets
# (routing.defaults); AEs there are reached by the default SDR → AE handoff, which takes any AE.
DEFAULT_TEAM_ROLES = {Role.SDR, Role.AE}


@dataclass
class ProvisionedTenant:
    tenant: Tenant
    admin_email: str
    admin_password: str | None  # None when the user already existed (password unchanged)
    form_key: str
    api_key: str


def api_key_create(*, tenant: Tenant, name: str, scopes: list[str] | None = None, actor: Actor = SYSTEM) -> tuple[ApiKey, str]:
    """Create a key; the raw secret is returned once and only its hash is stored."""
    scopes = list(scopes if scopes is not None else ApiScope.values)
    unknown = sorted(set(scopes) - set(ApiScope.values))
    if unknown:
        raise ValidationError({"scopes": [f"Unknown scope(s): {', '.join(unknown)}"]})
    with transaction.atomic():
        prefix, raw = ApiKey.generate_secret()
        key = ApiKey(tenant=tenant, name=name, prefix=prefix, scopes=scopes, created_by=actor.user)
        key.set_secret(raw)
        key.save()
        audit_record(tenant=tenant, actor=actor, action="api_key.created", obj=key,
                     metadata={"name": name, "prefix": prefix, "scopes": scopes})
    return key, raw


def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    with transaction.atomic():
        updated = ApiKey.objects.for_tenant(api_key.tenant_id).filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        api_key.refresh_from_db(fields=["revoked_at"])
        if updated:
            audit_record(tenant=api_key.tenant, actor=actor, action="api_key.revoked", obj=api_key,
                         changes={"revoked_at": [None, api_key.revoked_at]})
    return api_key


def team_get_or_create(*, tenant: Tenant, name: str, actor: Actor = SYSTEM) -> Team:
    team, created = Team.objects.for_tenant(tenant).get_or_create(tenant=tenant, name=name)
    if created:
        audit_record(tenant=tenant, actor=actor, action="team.created", obj=team, metadata={"name": name})
    return team


@transaction.atomic
def membership_upsert(
    *, tenant: Tenant, email: str, role: str, team_name: str | None = None, capacity: int | None = None,
    is_available: bool = True, actor: Actor = SYSTEM, password: str | None = None,
) -> tuple[Membership, bool, str | None]:
    """Create or update a user's membership. Returns (membership, user_created, new_password)."""
    if role not in Role.values:
        raise ValidationError({"role": [f"Unknown role '{role}'; choose one of {', '.join(Role.values)}."]})
    User = get_user_model()
    email = email.strip().lower()
    user = User.objects.filter(username=email).first()
    user_created = user is None
    new_password = None
    if user_created:
        new_password = password or secrets.token_urlsafe(12)
        user = User.objects.create_user(username=email, email=email, password=new_password)
    team = team_get_or_create(tenant=tenant, name=team_name, actor=actor) if team_name else None
    membership = Membership.objects.for_tenant(tenant).select_for_update().filter(user=user).first()
    if team is None and role in DEFAULT_TEAM_ROLES and (membership is None or membership.team_id is None):
        team = team_get_or_create(tenant=tenant, name=DEFAULT_TEAM, actor=actor)
    if membership is None:
        membership = Membership.objects.create(
            tenant=tenant, user=user, role=role, team=team, capacity=capacity, is_available=is_available
        )
        audit_record(tenant=tenant, actor=actor, action="membership.created", obj=membership,
                     changes=diff({}, snapshot(membership, MEMBERSHIP_FIELDS)), metadata={"email": email})
    else:
        before = snapshot(membership, MEMBERSHIP_FIELDS)
        membership.role, membership.capacity, membership.is_available = role, capacity, is_available
        if team is not None:
            membership.team = team
        changes = diff(before, snapshot(membership, MEMBERSHIP_FIELDS))
        if changes:
            membership.save(update_fields=list(changes))
            audit_record(tenant=tenant, actor=actor, action="membership.updated", obj=membership,
                         changes=changes, metadata={"email": email})
    staff_flag_set(user=user, role=role)
    return membership, user_created, new_password


def staff_flag_set(*, user, role: str) -> None:
    """Tenant admins and marketing ops use the Django admin (what they reach there is decided by role)."""
    if role in STAFF_ROLES and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])


def default_team_for(*, tenant: Tenant, role: str, team: Team | None, actor: Actor = SYSTEM) -> Team | None:
    """The team a new member joins: the one named, else the default team for reps, else none."""
    if team is None and role in DEFAULT_TEAM_ROLES:
        return team_get_or_create(tenant=tenant, name=DEFAULT_TEAM, actor=actor)
    return team


def _other_active_admins(*, membership: Membership) -> int:
    """Active admins of the tenant besides this member, counted with their rows locked (always in id
    order), so two admins demoting each other at once cannot leave the tenant without one."""
    admins = list(Membership.objects.for_tenant(membership.tenant_id).select_for_update()
                  .filter(role=Role.ADMIN, is_active=True)
                  .order_by("id").values_list("id", flat=True))
    return len([pk for pk in admins if pk != membership.pk])


LAST_ADMIN = "A workspace needs at least one active tenant admin: make someone else an admin first."


@transaction.atomic
def membership_update(
    *, membership: Membership, actor: Actor, role: str, team: Team | None, capacity: int | None, is_available: bool,
) -> Membership:
    """Change a member's role, team, capacity and availability (the last active admin stays an admin)."""
    errors: dict[str, list[str]] = {}
    if role not in Role.values:
        errors["role"] = [f"Unknown role '{role}'."]
    if team is not None and team.tenant_id != membership.tenant_id:
        errors["team"] = ["Choose a team of this workspace."]
    if capacity is not None and capacity < 0:
        errors["capacity"] = ["Capacity cannot be below zero."]
    if errors:
        raise ValidationError(errors)
    if membership.role == Role.ADMIN and role != Role.ADMIN and membership.is_active \
            and _other_active_admins(membership=membership) == 0:
        raise ValidationError({"role": [LAST_ADMIN]})
    locked = Membership.objects.for_tenant(membership.tenant_id).select_for_update().select_related("user").get(pk=membership.pk)
    before = snapshot(locked, MEMBERSHIP_FIELDS)
    locked.role, locked.team, locked.capacity, locked.is_available = role, team, capacity, is_available
    changes = diff(before, snapshot(locked, MEMBERSHIP_FIELDS))
    if changes:
        locked.save(update_fields=list(changes))
        audit_record(tenant=locked.tenant, actor=actor, action="membership.updated", obj=locked, changes=changes,
                     metadata={"email": locked.user.email or locked.user.get_username()})
    staff_flag_set(user=locked.user, role=role)
    return locked


@transaction.atomic
def membership_deactivate(*, membership: Membership, actor: Actor) -> Membership:
    """Take away a member's access to this tenant and stop routing to them; their history stays."""
    if membership.role == Role.ADMIN and _other_active_admins(membership=membership) == 0:
        raise ValidationError({"detail": [LAST_ADMIN]})
    return _active_set(membership=membership, actor=actor, active=False)


@transaction.atomic
def membership_reactivate(*, membership: Membership, actor: Actor) -> Membership:
    """Give a deactivated member their access back, with the role, team and capacity they had."""
    return _active_set(membership=membership, actor=actor, active=True)


def _active_set(*, membership: Membership, actor: Actor, active: bool) -> Membership:
    updated = (Membership.objects.for_tenant(membership.tenant_id).filter(pk=membership.pk, is_active=not active)
               .update(is_active=active))
    membership.refresh_from_db(fields=["is_active"])
    if updated:
        audit_record(tenant=membership.tenant, actor=actor,
                     action="membership.reactivated" if active else "membership.deactivated", obj=membership,
                     changes={"is_active": [not active, active]},
                     metadata={"email": membership.user.email or membership.user.get_username()})
    return membership


@transaction.atomic
def tenant_create(
    *, slug: str, name: str, admin_email: str, admin_password: str | None = None, actor: Actor = SYSTEM,
    form_name: str = "Website", allowed_origins: list[str] | None = None,
) -> ProvisionedTenant:
    """Provision a tenant: its admin user, default team and one API key here; then `tenant_provisioned`,
    which each app answers with its defaults (one lead form, the default scoring model, the routing
    set-up with rules, SLA policies and the rejection taxonomy, the nurture set-up with seed 002's
    sequences), all in this one transaction."""
    tenant = Tenant.objects.create(slug=slug, name=name)
    with tenant_scope(tenant):  # the new tenant's rows are written as that tenant (row-level security)
        audit_record(tenant=tenant, actor=actor, action="tenant.created", obj=tenant,
                     metadata={"slug": slug, "name": name})
        team_get_or_create(tenant=tenant, name=DEFAULT_TEAM, actor=actor)
        _membership, _created, password = membership_upsert(
            tenant=tenant, email=admin_email, role=Role.ADMIN, actor=actor, password=admin_password
        )
        _key, raw_key = api_key_create(tenant=tenant, name="Default integration key", actor=actor)
        provided: dict = {}
        for _receiver, answer in tenant_provisioned.send(sender=Tenant, tenant=tenant, actor=actor,
                                                         form_name=form_name, allowed_origins=allowed_origins):
            provided.update(answer or {})
    return ProvisionedTenant(tenant=tenant, admin_email=admin_email.strip().lower(), admin_password=password,
                             form_key=provided.get("form_key", ""), api_key=raw_key)
