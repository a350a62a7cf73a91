"""Events of the lead core for the floors above it (scoring, routing, nurture, workspace).

The leads app never imports those apps: it sends these Django signals and each app above connects
its receivers in `AppConfig.ready()` (see ARCHITECTURE.md). Each is sent inside the transaction
that made the change, so a receiver's writes commit or roll back with it; work for a worker is
enqueued by the receiver with `transaction.on_commit`.
"""
from __future__ import annotations

import django.dispatch

# A capture stored a lead: `created` (a new lead) or merged into an existing one.
# kwargs: tenant, lead, created: bool, changed_fields: frozenset[str] (top-level field names a merge changed)
lead_captured = django.dispatch.Signal()

# A member or integration edited a lead's fields (not a capture). kwargs: tenant, lead, changed_fields: frozenset[str]
lead_updated = django.dispatch.Signal()

# Stored behavioural signals of these leads were processed (marked processed, activity moved).
# kwargs: tenant, lead_ids: list
signals_processed = django.dispatch.Signal()
