"""The bulk move of the manager's Reps page: the confirmation token that ties a confirm to its preview, and the
report of what moved where."""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

from django.core import signing

from routing.services.assign import BulkReassignment

SALT = "workspace.manager.bulk-reassign"
MAX_AGE_SECONDS = 30 * 60


def _digest(values) -> str:
    return hashlib.sha256("\n".join(str(v) for v in values).encode()).hexdigest()[:32]


def bulk_token(*, viewer_id: int, from_user_id: int, to_user_id: int | None, reason: str, lead_ids: list[str]) -> str:
    """A signed token of what the manager previewed: who moves whose leads where, why, and which leads."""
    return signing.dumps({"v": viewer_id, "f": from_user_id, "t": to_user_id, "r": _digest([reason]),
                          "l": _digest(sorted(lead_ids))}, salt=SALT, compress=True)


def bulk_token_problem(token: str, *, viewer_id: int, from_user_id: int, to_user_id: int | None, reason: str,
                       lead_ids: list[str], from_name: str) -> str | None:
    """Why a confirmation does not match its preview (None: it does): expired, forged, other choices, or the
    rep's open leads changed meanwhile."""
    try:
        seen = signing.loads(token or "", salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        return "This preview is more than 30 minutes old. Check the leads below again, then confirm."
    except signing.BadSignature:
        return "Check the leads below, then confirm the move."
    if (seen.get("v"), seen.get("f"), seen.get("t"), seen.get("r")) != (viewer_id, from_user_id, to_user_id,
                                                                        _digest([reason])):
        return "The choices changed since the preview. Check the leads below again, then confirm."
    if seen.get("l") != _digest(sorted(lead_ids)):
        return (f"The open leads of {from_name} changed since the preview (they have {len(lead_ids)} now). "
                "Check the list again, then confirm.")
    return None


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def _leads(n: int) -> str:
    return f"{n} lead" if n == 1 else f"{n} leads"


@dataclass
class BulkReport:
    headline: str
    result: BulkReassignment


def bulk_report(result: BulkReassignment, *, from_user, to_user) -> BulkReport:
    """"Moved 12 leads from Sam to Dana." or, through the rules, "Moved 10 leads of Sam through the routing
    rules (6 to Dana, 4 to Lee); 2 could not be placed and went to Unassigned: <why>." """
    placed, unassigned = result.placed, result.unassigned
    if to_user is not None:
        return BulkReport(headline=f"Moved {_leads(len(placed))} from {_name(from_user)} to {_name(to_user)}.",
                          result=result)
    owners = Counter(_name(a.owner) for a in placed)
    split = ", ".join(f"{n} to {name}" for name, n in sorted(owners.items(), key=lambda item: (-item[1], item[0])))
    headline = f"Moved {_leads(len(placed))} of {_name(from_user)} through the routing rules"
    headline += f" ({split})" if split else ""
    if unassigned:
        reasons = list(dict.fromkeys(a.reason for a in unassigned))
        headline += f"; {len(unassigned)} could not be placed and went to Unassigned: " + "; ".join(reasons)
    return BulkReport(headline=headline + ".", result=result)
