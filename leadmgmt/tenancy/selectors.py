"""Reads for tenancy: memberships of a user, a tenant's members and open invitations, API key lookup."""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from .cross_tenant import cross_tenant
from .models import ApiKey, Invitation, Membership, Team, Tenant


def memberships_of_user(*, user) -> list[Membership]:
    """The tenants a user may work in, by name: active memberships of active tenants (a deactivated member
    is out). Read across tenants, before one is chosen: the `sign_in` path of cross_tenant.py."""
    with cross_tenant("sign_in"):
        return list(Membership.objects.unscoped().filter(user=user, is_active=True, tenant__is_active=True)
                    .select_related("tenant", "team").order_by("tenant__name", "tenant_id"))


def team_members(*, tenant: Tenant) -> list[Membership]:
    """Every member of the tenant, active ones first, with user and team, by name."""
    return list(Membership.objects.for_tenant(tenant).select_related("user", "team")
                .order_by("-is_active", "user__last_name", "user__first_name", "user__username", "id"))


def team_member_get(*, tenant: Tenant, membership_id) -> Membership:
    """One member of the tenant; another tenant's member is a 404, like a missing one."""
    membership = (Membership.objects.for_tenant(tenant).filter(pk=membership_id)
                  .select_related("user", "team", "tenant").first())
    if membership is None:
        raise Http404("No such member.")
    return membership


def teams_of_tenant(*, tenant: Tenant) -> QuerySet[Team]:
    return Team.objects.for_tenant(tenant).order_by("name")


def invitations_open(*, tenant: Tenant) -> list[Invitation]:
    """Invitations not yet accepted or withdrawn (expired ones too: they can be re-sent), newest first."""
    return list(Invitation.objects.for_tenant(tenant).filter(accepted_at__isnull=True, revoked_at__isnull=True)
                .select_related("team", "invited_by").order_by("-sent_at", "-id"))


def invitation_get(*, tenant: Tenant, invitation_id) -> Invitation:
    invitation = (Invitation.objects.for_tenant(tenant).filter(pk=invitation_id)
                  .select_related("tenant", "team").first())
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


def pick_membership(memberships: list[Membership], tenant_id: int | None) -> Membership | None:
    """The membership of the active tenant (chosen in the session), else the user's first one."""
    return next((m for m in memberships if m.tenant_id == tenant_id), memberships[0] if memberships else None)


def membership_for_request(*, user, tenant_id: int | None) -> Membership | None:
    return pick_membership(memberships_of_user(user=user), tenant_id)


def api_key_lookup(*, raw: str) -> ApiKey | None:
    """The active key matching a raw secret, or None (unknown, malformed or revoked)."""
    prefix = ApiKey.parse(raw)
    if prefix is None:
        return None
    with cross_tenant("api_key"):
        key = ApiKey.objects.unscoped().select_related("tenant").filter(prefix=prefix).first()
    if key is None or not key.is_active or not key.tenant.is_active or not key.check_secret(raw):
        return None
    return key
