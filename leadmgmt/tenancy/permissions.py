"""Permissions: a request must belong to a tenant, API keys need the view's scope; who may run the team
(`may_manage_team`, the one rule the Team page and anything else that manages members use)."""
from __future__ import annotations

from rest_framework import permissions

from .models import Membership
from .roles import TEAM_MANAGE, roles_for


class HasTenant(permissions.BasePermission):
    message = "This request is not tied to a tenant (use an API key or sign in as a member)."

    def has_permission(self, request, view) -> bool:
        if getattr(request, "tenant", None) is None:
            return False
        api_key = getattr(request, "api_key", None)
        if api_key is None:
            return True
        required = getattr(view, "required_scopes", {}).get(request.method)
        if required is None:
            required = getattr(view, "required_scopes", {}).get("*")
        if required is None:
            return True
        if not api_key.has_scope(required):
            self.message = f"This API key lacks the '{required}' scope."
            return False
        return True


# --- who runs the tenant's team (one rule for the UI and the API) -------------------------------------

TEAM_ADMIN_ROLES = roles_for(TEAM_MANAGE)  # the matrix in roles.py decides


def may_manage_team(membership: Membership | None) -> bool:
    """Tenant admins invite people and change members' roles, teams, capacity and access; nobody else."""
    return membership is not None and membership.is_active and membership.role in TEAM_ADMIN_ROLES

