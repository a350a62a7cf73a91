"""The Team page: tenant admins see their members and open invitations, invite people by email, change a
member's role, team, capacity and availability, and deactivate or reactivate them; and the public page
behind an invitation link, where the invitee chooses a password (or signs in) and joins the workspace.

Every read is scoped to the request's tenant (another tenant's member or invitation is a 404); who may
run the team is decided by `leadmgmt.tenancy.permissions.may_manage_team`, everyone else gets a 403.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leadmgmt.audit.actors import Actor
from leadmgmt.tenancy.invitations import (
    InvitationUnusable,
    invitation_accept,
    invitation_for_token,
    invitation_resend,
    invitation_revoke,
    invitation_send,
    user_for_email,
)
from leadmgmt.tenancy.middleware import SESSION_TENANT_KEY
from leadmgmt.tenancy.permissions import may_manage_team
from leadmgmt.tenancy.selectors import (
    invitation_get,
    invitations_open,
    team_member_get,
    team_members,
    teams_of_tenant,
)
from leadmgmt.tenancy.services import (
    membership_deactivate,
    membership_reactivate,
    membership_update,
)
from routing.selectors import open_lead_counts

from .team_forms import AcceptInvitationForm, InviteForm, MemberForm
from .views import workspace_required


def team_admin_required(view):
    """A signed-in tenant admin of the active workspace; everyone else is refused (403)."""

    @workspace_required
    def wrapper(request, *args, **kwargs):
        if not may_manage_team(request.membership):
            raise PermissionDenied("The Team page is for tenant admins.")
        return view(request, *args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = view.__name__, view.__doc__
    return wrapper


def _actor(request) -> Actor:
    return Actor.for_user(request.user)


def _apply_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


# --- the Team page ------------------------------------------------------------------------------------


def _team_page(request, *, invite_form=None, status: int = 200):
    tenant = request.tenant
    members = team_members(tenant=tenant)
    counts = open_lead_counts(tenant=tenant, user_ids=[m.user_id for m in members])
    for member in members:
        member.open_leads = counts.get(member.user_id, 0)
    teams = teams_of_tenant(tenant=tenant)
    return render(request, "workspace/team.html", {
        "members": members,
        "active_count": sum(1 for m in members if m.is_active),
        "invitations": invitations_open(tenant=tenant),
        "invite_form": invite_form or InviteForm(teams=teams),
        "now": timezone.now(),
    }, status=status)


@require_GET
@team_admin_required
def team(request):
    """Members (role, team, capacity, availability, access, last sign-in, open leads) and open invitations."""
    return _team_page(request)


def _sent_message(request, sent, verb: str) -> None:
    if sent.delivered is False:
        messages.warning(request, f"The invitation to {sent.invitation.email} is saved, but the email could not be "
                                  f"sent ({sent.error}). Re-send it later, or pass on this link yourself: {sent.link}")
    else:
        messages.success(request, f"Invitation {verb} to {sent.invitation.email}. The link works once, for 7 days.")


@require_POST
@team_admin_required
def team_invite(request):
    """Invite someone by email with a role, team and capacity; errors come back on the form (400)."""
    form = InviteForm(request.POST, teams=teams_of_tenant(tenant=request.tenant))
    if form.is_valid():
        data = form.cleaned_data
        try:
            sent = invitation_send(tenant=request.tenant, email=data["email"], role=data["role"], team=data["team"],
                                   capacity=data["capacity"], actor=_actor(request))
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            _sent_message(request, sent, "sent")
            return HttpResponseRedirect(reverse("team"))
    return _team_page(request, invite_form=form, status=400)


@require_POST
@team_admin_required
def team_invitation_resend(request, invitation_id: int):
    invitation = invitation_get(tenant=request.tenant, invitation_id=invitation_id)
    try:
        sent = invitation_resend(invitation=invitation, actor=_actor(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        _sent_message(request, sent, "re-sent")
    return HttpResponseRedirect(reverse("team"))


@require_POST
@team_admin_required
def team_invitation_revoke(request, invitation_id: int):
    invitation = invitation_revoke(invitation=invitation_get(tenant=request.tenant, invitation_id=invitation_id),
                                   actor=_actor(request))
    messages.success(request, f"The invitation to {invitation.email} was withdrawn; its link no longer works.")
    return HttpResponseRedirect(reverse("team"))


# --- one member ---------------------------------------------------------------------------------------


def _member_page(request, member, form=None, *, status: int = 200, error: str = ""):
    teams = teams_of_tenant(tenant=request.tenant)
    form = form or MemberForm(teams=teams, initial={
        "role": member.role, "team": member.team_id, "capacity": member.capacity, "is_available": member.is_available})
    open_leads = open_lead_counts(tenant=request.tenant, user_ids=[member.user_id])[member.user_id]
    return render(request, "workspace/team_member.html", {
        "member": member, "form": form, "open_leads": open_leads, "error": error,
        "is_self": member.user_id == request.user.pk,
    }, status=status)


@require_http_methods(["GET", "POST"])
@team_admin_required
def team_member(request, membership_id: int):
    """A member's role, team, capacity and availability; GET shows the form, POST saves it."""
    member = team_member_get(tenant=request.tenant, membership_id=membership_id)
    if request.method == "GET":
        return _member_page(request, member)
    form = MemberForm(request.POST, teams=teams_of_tenant(tenant=request.tenant))
    if form.is_valid():
        data = form.cleaned_data
        try:
            membership_update(membership=member, actor=_actor(request), role=data["role"], team=data["team"],
                              capacity=data["capacity"], is_available=data["is_available"])
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Saved {_name(member)}.")
            return HttpResponseRedirect(reverse("team"))
    return _member_page(request, member, form, status=400)


def _name(member) -> str:
    return member.user.get_full_name() or member.user.get_username()


@require_POST
@team_admin_required
def team_member_deactivate(request, membership_id: int):
    """Take away the member's access to this workspace; routing stops giving them leads."""
    member = team_member_get(tenant=request.tenant, membership_id=membership_id)
    try:
        membership_deactivate(membership=member, actor=_actor(request))
    except ValidationError as exc:
        return _member_page(request, member, status=400, error=" ".join(exc.messages))
    open_leads = open_lead_counts(tenant=request.tenant, user_ids=[member.user_id])[member.user_id]
    text = f"{_name(member)} is deactivated: they can no longer use this workspace and get no new leads."
    if open_leads:
        text += (f" {open_leads} open lead{'s' if open_leads != 1 else ''} still "
                 f"{'belong' if open_leads != 1 else 'belongs'} to them: move them on Manager → Reps.")
    messages.success(request, text)
    return HttpResponseRedirect(reverse("team"))


@require_POST
@team_admin_required
def team_member_reactivate(request, membership_id: int):
    member = team_member_get(tenant=request.tenant, membership_id=membership_id)
    membership_reactivate(membership=member, actor=_actor(request))
    messages.success(request, f"{_name(member)} can use this workspace again and gets leads by the routing rules.")
    return HttpResponseRedirect(reverse("team"))


# --- the invitation link (public) ---------------------------------------------------------------------


def _unusable(request, exc: InvitationUnusable):
    return render(request, "registration/invitation_unusable.html", {"reason": str(exc), "state": exc.state},
                  status=400 if exc.state == "invalid" else 410)


def _join(request, membership):
    request.session[SESSION_TENANT_KEY] = membership.tenant_id
    messages.success(request, f"Welcome to {membership.tenant.name}. This is your queue: new leads appear here.")
    return HttpResponseRedirect(reverse("queue"))


@require_http_methods(["GET", "POST"])
def invitation_accept_view(request, token: str):
    """New people choose a password and are signed in; people with an account sign in, then join."""
    try:
        invitation = invitation_for_token(raw=token)
    except InvitationUnusable as exc:
        return _unusable(request, exc)
    existing = user_for_email(invitation.email)
    signed_in = request.user if request.user.is_authenticated else None
    context = {"invitation": invitation, "tenant": invitation.tenant, "existing": existing is not None}
    if signed_in is not None and signed_in.get_username() != invitation.email:
        context["wrong_user"] = signed_in.get_username()
        return render(request, "registration/invitation_accept.html", context, status=403)
    if existing is not None:
        if signed_in is None:
            context["login_url"] = f"{reverse('login')}?{urlencode({'next': request.path})}"
            return render(request, "registration/invitation_accept.html", context)
        if request.method == "POST":
            try:
                membership = invitation_accept(raw=token, user=signed_in)
            except InvitationUnusable as exc:
                return _unusable(request, exc)
            return _join(request, membership)
        return render(request, "registration/invitation_accept.html", context)
    form = AcceptInvitationForm(request.POST or None, user=get_user_model()(username=invitation.email,
                                                                            email=invitation.email))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            membership = invitation_accept(raw=token, password=data["new_password1"], first_name=data["first_name"],
                                           last_name=data["last_name"])
        except InvitationUnusable as exc:
            return _unusable(request, exc)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            return _join(request, membership)
    context["form"] = form
    return render(request, "registration/invitation_accept.html", context, status=400 if form.errors else 200)
