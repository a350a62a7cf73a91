"""Helpers of the intake tests: post a JSON or an HTML form body, count the rows a capture writes."""
from __future__ import annotations

import json

from leadmgmt.audit.models import AuditEvent
from leads.models import Account, IdempotencyRecord, Lead, Touch

INTAKE_URL = "/api/v1/intake/"
ALLOWED_ORIGIN = "https://www.acme-site.test"  # the `lead_form` fixture's allowed origin


def row_counts() -> dict[str, int]:
    """Rows of every table a capture writes, all tenants: "nothing was written" means these are unchanged."""
    return {
        "leads": Lead.objects.unscoped().count(),
        "touches": Touch.objects.unscoped().count(),
        "accounts": Account.objects.unscoped().count(),
        "audit_events": AuditEvent.objects.unscoped().count(),
        "idempotency_records": IdempotencyRecord.objects.unscoped().count(),
    }


def post_json(client, data, *, form=None, **headers):
    """POST a JSON body (already-encoded strings/bytes are sent as they are)."""
    if form is not None:
        headers.setdefault("HTTP_X_FORM_KEY", form.key)
    body = data if isinstance(data, (str, bytes)) else json.dumps(data)
    return client.post(INTAKE_URL, data=body, content_type="application/json", **headers)


def post_form(client, data, *, form=None, multipart=False, **headers):
    """POST urlencoded (or multipart) form data the way an HTML <form> does."""
    if form is not None:
        data = {"form_key": form.key, **data}
    if multipart:
        return client.post(INTAKE_URL, data=data, **headers)
    from urllib.parse import urlencode

    return client.post(INTAKE_URL, data=urlencode(data, doseq=True),
                       content_type="application/x-www-form-urlencoded", **headers)
