"""The lead as outbound webhooks describe it (`data.lead` of every lead event), for any floor that emits one.

`lead_webhook_data(lead)` reads a lead already in memory (no query); `leads_webhook_data` reads a batch in
one query. The fields are a public contract (README, "Outbound webhooks"): add, never rename.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .models import Lead

LEAD_WEBHOOK_FIELDS = (
    "id", "email", "first_name", "last_name", "phone", "job_title", "company", "company_domain", "country",
    "source", "status", "stage", "score", "band", "lead_class", "owner_id", "created_at",
)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is not None and not isinstance(value, (str, int, float, bool)):
        return str(value)
    return value


def lead_webhook_data(lead: Lead) -> dict[str, Any]:
    """The lead's webhook fields from the instance (its owner as `owner_id`)."""
    return {name: _jsonable(getattr(lead, name)) for name in LEAD_WEBHOOK_FIELDS}


def leads_webhook_data(*, tenant, lead_ids: Iterable) -> dict[Any, dict[str, Any]]:
    """{lead id: its webhook fields} for a batch of the tenant's leads, in one query."""
    rows = Lead.objects.for_tenant(tenant).filter(pk__in=list(lead_ids)).values(*LEAD_WEBHOOK_FIELDS)
    return {row["id"]: {name: _jsonable(value) for name, value in row.items()} for row in rows}
