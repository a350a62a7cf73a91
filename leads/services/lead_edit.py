"""Edits of a lead by a person or an integration: contact and company fields, status, stage, owner.

Every changed field is remembered in `lead.edited_fields`, so a later capture of the same person
fills blanks but never overwrites what a human corrected.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record, diff, snapshot
from leadmgmt.tenancy.models import Membership
from leadmgmt.tenancy.roles import LEAD_REASSIGN, roles_for
from leads.countries import country_code
from leads.events import lead_updated
from leads.locks import lead_lock
from leads.models import Lead, StageTransition
from leads.normalize import (
    country_canonicalize,
    country_region,
    domain_canonicalize,
    email_domain,
    email_normalize,
    is_free_mail_domain,
    phone_normalize,
    text_clean,
)

TEXT_FIELDS = ("first_name", "last_name", "job_title", "company", "industry", "country", "product_interest")
EDITABLE_FIELDS = frozenset(
    {*TEXT_FIELDS, "email", "phone", "company_domain", "company_size", "status", "stage", "owner"}
)
REASSIGN_ROLES = roles_for(LEAD_REASSIGN)  # the matrix in leadmgmt.tenancy.roles
# Derived from what was edited, not edited by hand themselves.
_DERIVED_FIELDS = ("is_personal_email",)


def _country_edited(lead: Lead, value) -> str:
    """The ISO alpha-2 code of the country typed; the stored text when it names the same country (a
    legacy "Germany" saved again unchanged is not an edit). A text that is no country is refused."""
    code, as_sent = country_canonicalize(value if isinstance(value, str) else "")
    if as_sent:
        if as_sent == text_clean(lead.country or ""):
            return lead.country
        raise ValidationError("Enter a country name or its ISO code, e.g. Germany or DE.", code="invalid_country")
    if code and country_code(lead.country) == code:
        return lead.country
    return code


def _normalised(lead: Lead, data: dict[str, Any]) -> dict[str, Any]:
    """Values in the canonical form intake uses; field errors raised together."""
    out: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, value in data.items():
        try:
            if name == "email":
                out[name] = email_normalize(value or "")
            elif name == "phone":
                country = data.get("country", lead.country)
                out[name] = phone_normalize(value or "", region=country_region(country))
            elif name == "company_domain":
                out[name] = domain_canonicalize(value or "")
            elif name == "country":
                out[name] = _country_edited(lead, value)
            elif name in TEXT_FIELDS:
                out[name] = text_clean(value or "")
            else:
                out[name] = value
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)
    return out


def _check_owner(*, lead: Lead, owner_id: int | None, actor: Actor) -> None:
    if actor.kind == "user":
        role = Membership.objects.for_tenant(lead.tenant_id).filter(user=actor.user).values_list("role", flat=True).first()
        if role not in REASSIGN_ROLES:
            raise PermissionDenied("Only managers and admins can reassign leads.")
    elif actor.kind != "api_key":
        # Agents reassign through routing, which records its own assignment history.
        raise PermissionDenied("Only managers, admins and API keys with leads:write can reassign leads.")
    if owner_id is not None and not Membership.objects.for_tenant(lead.tenant_id).filter(user_id=owner_id).exists():
        raise ValidationError({"owner": ["This user is not a member of the tenant."]})


@transaction.atomic
def lead_update(*, lead: Lead, data: dict[str, Any], actor: Actor, reason: str = "",
                expected_updated_at=None) -> Lead:
    """Apply `data` (a subset of EDITABLE_FIELDS; `owner` is a user id or None) and return the lead.

    Writes only the fields that change (nothing at all for a repeated request), one
    `lead.updated` audit event with before/after, and a StageTransition for a stage change.
    A caller that passes `expected_updated_at` (the version of the lead it showed) is refused
    (`leads.locks.StaleLead` on `updated_at`) if the lead changed meanwhile, instead of overwriting that change.
    """
    unknown = sorted(set(data) - EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: ["This field cannot be edited."] for name in unknown})
    data = {("owner_id" if name == "owner" else name): value for name, value in _normalised(lead, data).items()}

    locked = lead_lock(tenant=lead.tenant_id, lead_id=lead.pk, expected_updated_at=expected_updated_at)
    changed = {name: value for name, value in data.items() if getattr(locked, name) != value}
    if not changed:
        return locked
    if "owner_id" in changed:
        _check_owner(lead=locked, owner_id=changed["owner_id"], actor=actor)
    email = changed.get("email", locked.email)
    if "email" in changed and email and (
        Lead.objects.for_tenant(locked.tenant_id).filter(email=email).exclude(pk=locked.pk).exists()
    ):
        raise ValidationError({"email": ["Another lead of this tenant already has this email."]})
    if not email and not changed.get("phone", locked.phone):
        field_name = "email" if "email" in changed else "phone"
        raise ValidationError({field_name: ["A lead needs an email or a phone number."]})

    fields = ["owner" if name == "owner_id" else name for name in changed]
    before = snapshot(locked, [*fields, *_DERIVED_FIELDS])
    for name, value in changed.items():
        setattr(locked, name, value)
    bounce_cleared = []
    if "email" in changed:
        locked.is_personal_email = bool(email) and is_free_mail_domain(email_domain(email))
        if locked.email_bounced_at is not None:  # a corrected address is no longer the one that bounced
            before["email_bounced_at"] = snapshot(locked, ["email_bounced_at"])["email_bounced_at"]
            locked.email_bounced_at, locked.email_bounce_note = None, ""
            bounce_cleared = ["email_bounced_at", "email_bounce_note"]
    locked.edited_fields = [*locked.edited_fields, *(f for f in fields if f not in locked.edited_fields)]
    try:
        with transaction.atomic():
            locked.save(update_fields=[*changed, *_DERIVED_FIELDS, *bounce_cleared, "edited_fields", "updated_at"])
    except IntegrityError as exc:  # a concurrent edit or capture took the email in the meantime
        raise ValidationError({"email": ["Another lead of this tenant already has this email."]}) from exc

    if "stage" in changed:
        StageTransition.objects.create(
            tenant_id=locked.tenant_id, lead=locked, from_stage=before["stage"], to_stage=locked.stage,
            actor_name=actor.name[:200], actor_user=actor.user, reason=reason[:200],
        )
    audit_record(
        tenant=locked.tenant, actor=actor, action="lead.updated", obj=locked,
        changes=diff(before, snapshot(locked, [*fields, *_DERIVED_FIELDS, *bounce_cleared[:1]])),
        metadata={"reason": reason} if reason else None,
    )
    lead_updated.send(sender=Lead, tenant=locked.tenant, lead=locked, changed_fields=frozenset(fields))
    return locked
