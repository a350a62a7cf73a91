"""UI views of tenancy: sign-in and sign-out whose `next` stays on this site, the workspace picker after sign-in
and the tenant switch (POST)."""
from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from leadmgmt.urls_safe import safe_next_url

from .middleware import SESSION_TENANT_KEY
from .selectors import memberships_of_user

DEFAULT_NEXT = "/queue/"


def _safe_next(request, value: str | None) -> str:
    return safe_next_url(request, value, fallback=DEFAULT_NEXT)


class _SafeNextMixin:
    """Django's sign-in/sign-out `next`, through the project's one check (leadmgmt.urls_safe): a path of this
    site or nothing (then LOGIN_REDIRECT_URL / the signed-out page); the form re-renders only what passed."""

    def get_redirect_url(self):
        name = self.redirect_field_name
        return safe_next_url(self.request, self.request.POST.get(name, self.request.GET.get(name)), fallback="")


class LoginView(_SafeNextMixin, auth_views.LoginView):
    pass


class LogoutView(_SafeNextMixin, auth_views.LogoutView):
    pass


@login_required
@require_http_methods(["GET", "POST"])
def tenant_switch(request):
    """GET: pick a workspace (users in several tenants). POST `tenant`: make it active; not a member → 404."""
    if request.method == "GET":
        memberships = memberships_of_user(user=request.user)
        return render(request, "registration/tenant_picker.html", {
            "memberships": memberships, "next": _safe_next(request, request.GET.get("next")),
        })
    try:
        tenant_id = int(request.POST.get("tenant", ""))
    except ValueError:
        raise Http404("No such workspace.") from None
    membership = next((m for m in memberships_of_user(user=request.user) if m.tenant_id == tenant_id), None)
    if membership is None:
        raise Http404("No such workspace.")
    request.session[SESSION_TENANT_KEY] = membership.tenant_id
    return HttpResponseRedirect(_safe_next(request, request.POST.get("next")))
