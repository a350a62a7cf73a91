"""UI views of tenancy: the workspace picker after sign-in and the tenant switch (POST)."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from .middleware import SESSION_TENANT_KEY
from .selectors import memberships_of_user

DEFAULT_NEXT = "/queue/"


def _safe_next(request, value: str | None) -> str:
    if value and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()},
                                                 require_https=request.is_secure()):
        return value
    return DEFAULT_NEXT


@login_required
@require_http_methods(["GET", "POST"])
def tenant_switch(request):
    """GET: pick a workspace (users in several tenants). POST `tenant`: make it active; not a member → 404."""
    if request.method == "GET":
        memberships = list(memberships_of_user(user=request.user).order_by("tenant__name"))
        return render(request, "registration/tenant_picker.html", {
            "memberships": memberships, "next": _safe_next(request, request.GET.get("next")),
        })
    try:
        tenant_id = int(request.POST.get("tenant", ""))
    except ValueError:
        raise Http404("No such workspace.") from None
    membership = memberships_of_user(user=request.user).filter(tenant_id=tenant_id).first()
    if membership is None:
        raise Http404("No such workspace.")
    request.session[SESSION_TENANT_KEY] = membership.tenant_id
    return HttpResponseRedirect(_safe_next(request, request.POST.get("next")))
