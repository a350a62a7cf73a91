"""Events of the platform floor for the apps above it.

`tenant_provisioned` is sent by `tenant_create`, inside its transaction, once the tenant, its admin,
default team and API key exist. Each app answers with its own defaults (the lead form, the scoring
model, the routing set-up, nurture's sequences), so the platform never imports the apps. A receiver
may return a dict of facts for the caller (the leads app returns the form key); a receiver that
raises rolls the whole tenant back.
"""
from __future__ import annotations

import django.dispatch

# kwargs: tenant, actor, form_name: str, allowed_origins: list[str] | None
tenant_provisioned = django.dispatch.Signal()
