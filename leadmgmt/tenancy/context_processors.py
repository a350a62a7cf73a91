"""Template context: the active tenant and the user's other tenants."""
from .selectors import memberships_of_user


def tenant(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"active_tenant": None, "user_memberships": []}
    return {
        "active_tenant": getattr(request, "tenant", None),
        "active_membership": getattr(request, "membership", None),
        "user_memberships": memberships_of_user(user=user),
    }
