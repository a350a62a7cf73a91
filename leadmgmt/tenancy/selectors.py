"""Reads for tenancy: memberships of a user, a tenant's members and open invitations, API key lookup."""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from .models import ApiKey, Invitation, Membership, Team, Tenant


def memberships_of_user(*, user) -> QuerySet[Membership]:
    """The tenants a user may work in: active memberships of active tenants (a deactivated member is out)."""
    return (Membership.objects.unscoped().filter(user=user, is_active=True, tenant__is_active=True)
            .select_related("tenant", "team"))


def team_members(*, tenant: Tenant) -> list[Membership]:
    """Every member of the tenant, active ones first, with user and team, by name."""
    return list(Membership.objects.unscoped().filter(tenant=tenant).select_related("user", "team")
                .order_by("-is_active", "user__last_name", "user__first_name", "user__username", "id"))


def team_member_get(*, tenant: Tenant, membership_id) -> Membership:
    """One member of the tenant; another tenant's member is a 404, like a missing one."""
    membership = (Membership.objects.unscoped().filter(tenant=tenant, pk=membership_id)
                  .select_related("user", "team", "tenant").first())
    if membership is None:
        raise Http404("No such member.")
    return membership


def teams_of_tenant(*, tenant: Tenant) -> QuerySet[Team]:
    return Team.objects.unscoped().filter(tenant=tenant).order_by("name")


def invitations_open(*, tenant: Tenant) -> list[Invitation]:
    """Invitations not yet accepted or withdrawn (expired ones too: they can be re-sent), newest first."""
    return list(Invitation.objects.unscoped().filter(tenant=tenant, accepted_at__isnull=True, revoked_at__isnull=True)
                .select_related("team", "invited_by").order_by("-sent_at", "-id"))


def invitation_get(*, tenant: Tenant, invitation_id) -> Invitation:
    invitation = (Invitation.objects.unscoped().filter(tenant=tenant, pk=invitation_id)
                  .select_related("tenant", "team").first())
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


def membership_for_request(*, user, tenant_id: int | None) -> Membership | None:
    """The membership of the active tenant (chosen in the session), else the user's first one."""
    memberships = list(memberships_of_user(user=user).order_by("tenant__name"))
    if not memberships:
        return None
    for membership in memberships:
        if membership.tenant_id == tenant_id:
            return membership
    return memberships[0]


def api_key_lookup(*, raw: str) -> ApiKey | None:
    """The active key matching a raw secret, or None (unknown, malformed or revoked)."""
    prefix = ApiKey.parse(raw)
    if prefix is None:
        return None
    key = ApiKey.objects.unscoped().select_related("tenant").filter(prefix=prefix).first()
    if key is None or not key.is_active or not key.tenant.is_active or not key.check_secret(raw):
        return None
    return key
