"""Template context: the active tenant, the user's other tenants, and whether they may run the team."""
from .permissions import may_manage_team
from .selectors import memberships_of_user


def tenant(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"active_tenant": None, "user_memberships": [], "can_manage_team": False}
    return {
        "active_tenant": getattr(request, "tenant", None),
        "active_membership": getattr(request, "membership", None),
        "user_memberships": (request.memberships if hasattr(request, "memberships")
                             else memberships_of_user(user=user)),
        "can_manage_team": may_manage_team(getattr(request, "membership", None)),
    }
