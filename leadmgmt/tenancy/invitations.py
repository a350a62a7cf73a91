"""Invitations: a tenant admin invites someone by email; the single-use, expiring link makes them a member.

The link carries a random token; only its SHA-256 is stored, so a database reader cannot use a link,
and re-sending replaces the hash (the older link stops working). Accepting is one transaction that
locks the invitation row, so a link can make one membership only, however often it is clicked.
The email goes over Django's email backend once the invitation is committed; if the mail server
refuses it, the result says so and the admin can re-send or pass the link on by hand.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record

from .context import tenant_scope
from .cross_tenant import cross_tenant
from .models import Invitation, Membership, Role, Team, Tenant
from .services import default_team_for, staff_flag_set

log = logging.getLogger(__name__)

INVITATION_TTL = timedelta(days=7)


class InvitationUnusable(Exception):
    """The link cannot be used: `state` is "invalid", "expired", "accepted" or "revoked"."""

    MESSAGES = {
        "invalid": "This invitation link is not valid. Check that you copied the whole link from the email.",
        "expired": "This invitation has expired. Ask your workspace admin to send you a new one.",
        "accepted": "This invitation has already been used. Sign in with the password you chose.",
        "revoked": "This invitation was withdrawn. Ask your workspace admin if you still need access.",
    }

    def __init__(self, state: str):
        self.state = state
        super().__init__(self.MESSAGES.get(state, self.MESSAGES["invalid"]))


@dataclass
class InvitationSent:
    """What sending produced: the invitation, its link (shown to nobody but the admin on a failed
    delivery) and whether the mail server took the email."""

    invitation: Invitation
    link: str
    delivered: bool | None = None  # None until the transaction commits and the email is tried
    error: str = ""


def invitation_link(raw_token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{reverse('invitation-accept', args=[raw_token])}"


def user_for_email(email: str):
    """The existing user signing in with this email (usernames are emails), or None."""
    return get_user_model().objects.filter(username=email.strip().lower()).first()


def _clean(*, tenant: Tenant, email: str, role: str, team: Team | None, capacity: int | None) -> str:
    errors: dict[str, list[str]] = {}
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        errors["email"] = ["Enter a valid email address."]
    if role not in Role.values:
        errors["role"] = [f"Unknown role '{role}'."]
    if team is not None and team.tenant_id != tenant.pk:
        errors["team"] = ["Choose a team of this workspace."]
    if capacity is not None and capacity < 0:
        errors["capacity"] = ["Capacity cannot be below zero."]
    if "email" not in errors and Membership.objects.for_tenant(tenant).filter(user__username=email, is_active=True).exists():
        errors["email"] = ["This person is already a member of this workspace."]
    if errors:
        raise ValidationError(errors)
    return email


def invitation_send(
    *, tenant: Tenant, email: str, role: str, actor: Actor, team: Team | None = None, capacity: int | None = None,
    now=None,
) -> InvitationSent:
    """Invite `email` with a role, team and capacity, and email the link. An open invitation for the
    same email is updated and re-sent (its older link stops working). Reps without a team get the
    default team."""
    now = now or timezone.now()
    email = _clean(tenant=tenant, email=email, role=role, team=team, capacity=capacity)
    with transaction.atomic():
        team = default_team_for(tenant=tenant, role=role, team=team, actor=actor)
        raw, token_hash = Invitation.new_token()
        invitation = (Invitation.objects.for_tenant(tenant).select_for_update()
                      .filter(email=email, accepted_at__isnull=True, revoked_at__isnull=True).first())
        if invitation is None:
            invitation = Invitation.objects.create(
                tenant=tenant, email=email, role=role, team=team, capacity=capacity, token_hash=token_hash,
                invited_by=actor.user, created_at=now, sent_at=now, expires_at=now + INVITATION_TTL)
            action = "invitation.created"
        else:
            invitation.role, invitation.team, invitation.capacity = role, team, capacity
            invitation.token_hash, invitation.invited_by = token_hash, actor.user
            invitation.sent_at, invitation.expires_at = now, now + INVITATION_TTL
            invitation.send_count += 1
            invitation.save(update_fields=["role", "team", "capacity", "token_hash", "invited_by", "sent_at",
                                           "expires_at", "send_count"])
            action = "invitation.resent"
        audit_record(tenant=tenant, actor=actor, action=action, obj=invitation, metadata={
            "email": email, "role": role, "team": team.name if team else None, "capacity": capacity,
            "expires_at": invitation.expires_at.isoformat()})
        return _email_on_commit(invitation=invitation, raw=raw, tenant=tenant, actor=actor)


@transaction.atomic
def invitation_resend(*, invitation: Invitation, actor: Actor, now=None) -> InvitationSent:
    """A fresh link and expiry for an open invitation (expired ones included); the old link stops working."""
    now = now or timezone.now()
    locked = Invitation.objects.for_tenant(invitation.tenant_id).select_for_update().select_related("tenant").get(pk=invitation.pk)
    if locked.accepted_at is not None or locked.revoked_at is not None:
        raise ValidationError({"detail": ["This invitation was already used or withdrawn: send a new one."]})
    raw, locked.token_hash = Invitation.new_token()
    locked.sent_at, locked.expires_at, locked.send_count = now, now + INVITATION_TTL, locked.send_count + 1
    locked.invited_by = actor.user
    locked.save(update_fields=["token_hash", "sent_at", "expires_at", "send_count", "invited_by"])
    audit_record(tenant=locked.tenant, actor=actor, action="invitation.resent", obj=locked,
                 metadata={"email": locked.email, "expires_at": locked.expires_at.isoformat()})
    return _email_on_commit(invitation=locked, raw=raw, tenant=locked.tenant, actor=actor)


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: Actor, now=None) -> Invitation:
    """Withdraw an open invitation: its link stops working at once."""
    now = now or timezone.now()
    updated = (Invitation.objects.for_tenant(invitation.tenant_id)
               .filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(revoked_at=now))
    invitation.refresh_from_db(fields=["revoked_at"])
    if updated:
        audit_record(tenant=invitation.tenant, actor=actor, action="invitation.revoked", obj=invitation,
                     changes={"revoked_at": [None, now]}, metadata={"email": invitation.email})
    return invitation


def invitation_for_token(*, raw: str, now=None) -> Invitation:
    """The pending invitation of a link; InvitationUnusable says why a link cannot be used."""
    now = now or timezone.now()
    if not raw or len(raw) > 128:
        raise InvitationUnusable("invalid")
    with cross_tenant("invitation"):
        invitation = (Invitation.objects.unscoped().select_related("tenant", "team")
                      .filter(token_hash=Invitation.hash_token(raw)).first())
    if invitation is None or not invitation.tenant.is_active:
        raise InvitationUnusable("invalid")
    state = invitation.state(now)
    if state != "pending":
        raise InvitationUnusable(state)
    return invitation


def invitation_accept(
    *, raw: str, user=None, password: str | None = None, first_name: str = "", last_name: str = "", now=None,
) -> Membership:
    """Use a link: a new person (no account with the invited email) gets an account with `password`;
    an existing user must be signed in as that email (`user`). Either way the membership becomes active
    with the invitation's role, team and capacity, and the link is spent."""
    now = now or timezone.now()
    with transaction.atomic():
        found = invitation_for_token(raw=raw, now=now)
        with tenant_scope(found.tenant):  # the invited tenant's rows, from here on
            invitation = Invitation.objects.for_tenant(found.tenant_id).select_for_update(of=("self",)).select_related(
                "tenant", "team").get(pk=found.pk)
            state = invitation.state(now)
            if state != "pending" or invitation.token_hash != found.token_hash:
                raise InvitationUnusable(state if state != "pending" else "invalid")
            existing = user_for_email(invitation.email)
            if existing is not None:
                if user is None or user.pk != existing.pk:
                    raise ValidationError({"detail": [f"Sign in as {invitation.email} to accept this invitation."]})
                user = existing
            else:
                user = _user_create(email=invitation.email, password=password, first_name=first_name,
                                    last_name=last_name)
            membership = _membership_from(invitation=invitation, user=user)
            invitation.accepted_at, invitation.accepted_by = now, user
            invitation.save(update_fields=["accepted_at", "accepted_by"])
            actor = Actor.for_user(user)
            audit_record(tenant=invitation.tenant, actor=actor, action="invitation.accepted", obj=invitation,
                         metadata={"email": invitation.email, "membership": membership.pk,
                                   "new_user": existing is None})
            return membership


def _user_create(*, email: str, password: str | None, first_name: str, last_name: str):
    user = get_user_model()(username=email, email=email, first_name=(first_name or "").strip()[:150],
                            last_name=(last_name or "").strip()[:150])
    if not password:
        raise ValidationError({"new_password1": ["Choose a password."]})
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"new_password1": exc.messages}) from exc
    user.set_password(password)
    user.save()
    return user


def _membership_from(*, invitation: Invitation, user) -> Membership:
    actor = Actor.for_user(user)
    fields = {"role": invitation.role, "team": invitation.team, "capacity": invitation.capacity}
    membership = Membership.objects.for_tenant(invitation.tenant).select_for_update().filter(user=user).first()
    if membership is None:
        membership = Membership.objects.create(tenant=invitation.tenant, user=user, **fields)
        audit_record(tenant=invitation.tenant, actor=actor, action="membership.created", obj=membership,
                     changes={k: [None, getattr(v, "pk", v)] for k, v in fields.items()},
                     metadata={"email": invitation.email, "via": "invitation"})
    else:  # a former member coming back: the invitation's terms apply
        changes = {k: [getattr(membership, f"{k}_id" if k == "team" else k), getattr(v, "pk", v)]
                   for k, v in fields.items()}
        changes["is_active"] = [membership.is_active, True]
        for key, value in fields.items():
            setattr(membership, key, value)
        membership.is_active = True
        membership.save(update_fields=[*fields, "is_active"])
        audit_record(tenant=invitation.tenant, actor=actor, action="membership.reactivated", obj=membership,
                     changes={k: v for k, v in changes.items() if v[0] != v[1]},
                     metadata={"email": invitation.email, "via": "invitation"})
    staff_flag_set(user=user, role=invitation.role)
    return membership


def _email_on_commit(*, invitation: Invitation, raw: str, tenant: Tenant, actor: Actor) -> InvitationSent:
    sent = InvitationSent(invitation=invitation, link=invitation_link(raw))
    transaction.on_commit(lambda: _deliver(sent=sent, tenant=tenant, inviter=actor.name))
    return sent


def _deliver(*, sent: InvitationSent, tenant: Tenant, inviter: str) -> None:
    invitation = sent.invitation
    role = Role(invitation.role).label
    team = f" in the {invitation.team.name} team" if invitation.team_id and invitation.team else ""
    expires = timezone.localtime(invitation.expires_at).strftime("%d %b %Y, %H:%M %Z")
    body = (
        f"Hello,\n\n{inviter} invited you to join {tenant.name} on leadmgmt as {role}{team}.\n\n"
        f"Accept the invitation and choose your password here:\n{sent.link}\n\n"
        f"The link works once and expires on {expires}. If it has expired, ask {inviter} for a new one.\n"
        f"If you did not expect this invitation, you can ignore this email.\n"
    )
    message = EmailMessage(subject=f"You're invited to join {tenant.name} on leadmgmt", body=body,
                           to=[invitation.email])
    try:
        message.send()
    except (OSError, ValueError) as exc:  # smtplib errors are OSErrors; a mail server down must not lose the invite
        log.warning("Invitation email to %s (tenant %s) failed: %s", invitation.email, tenant.slug, exc)
        sent.delivered, sent.error = False, str(exc) or exc.__class__.__name__
        return
    sent.delivered = True
