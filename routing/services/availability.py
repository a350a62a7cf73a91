"""A rep's availability: the available flag and the out-of-office range that routing reads."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.models import Membership

# Default of the date arguments: leave the stored value as it is (None clears it).
KEEP: Any = object()


def membership_availability_set(*, membership: Membership, actor: Actor, is_available: bool | None = None,
                                unavailable_from: datetime | None = KEEP,
                                unavailable_until: datetime | None = KEEP) -> Membership:
    """Mark a member available or not and set (or clear, with None) their out-of-office range.

    `is_available` None keeps the flag; a date left out keeps its value. Routing skips a member
    who is unavailable or inside the range (`routing.selectors.ineligibility`). Locks the
    membership row, refuses a range that ends before it starts, and audits what changed.
    """
    with transaction.atomic():
        locked = Membership.objects.for_tenant(membership.tenant_id).select_for_update().get(pk=membership.pk)
        new = {
            "is_available": locked.is_available if is_available is None else bool(is_available),
            "unavailable_from": locked.unavailable_from if unavailable_from is KEEP else unavailable_from,
            "unavailable_until": locked.unavailable_until if unavailable_until is KEEP else unavailable_until,
        }
        if new["unavailable_from"] and new["unavailable_until"] and new["unavailable_until"] <= new["unavailable_from"]:
            raise ValidationError({"unavailable_until": ["The out-of-office range must end after it starts."]})
        changes = {field: [getattr(locked, field), value] for field, value in new.items()
                   if getattr(locked, field) != value}
        if changes:
            for field, value in new.items():
                setattr(locked, field, value)
            locked.save(update_fields=list(changes))
            audit_record(tenant=locked.tenant, actor=actor, action="membership.availability_set", obj=locked,
                         changes={k: [_plain(a), _plain(b)] for k, (a, b) in changes.items()},
                         metadata={"user_id": locked.user_id})
        for field, value in new.items():
            setattr(membership, field, value)
        return locked


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value
