"""Template context: the active tenant, the user's other tenants, whether they may run the team, import leads and
read the feedback report."""
from .permissions import may_manage_team
from .roles import LEAD_IMPORT, REPORT_FEEDBACK, may
from .selectors import memberships_of_user


def tenant(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"active_tenant": None, "user_memberships": [], "can_manage_team": False, "can_import": False,
                "can_report_feedback": False}
    return {
        "active_tenant": getattr(request, "tenant", None),
        "active_membership": getattr(request, "membership", None),
        "user_memberships": (request.memberships if hasattr(request, "memberships")
                             else memberships_of_user(user=user)),
        "can_manage_team": may_manage_team(getattr(request, "membership", None)),
        "can_import": may(getattr(getattr(request, "membership", None), "role", None), LEAD_IMPORT),
        "can_report_feedback": may(getattr(getattr(request, "membership", None), "role", None), REPORT_FEEDBACK),
    }
