"""The one way to work across tenants, and the list of everything that does.

PostgreSQL row-level security shows a transaction only the rows of the tenant in context
(leadmgmt/db/backend sets `app.tenant_id`). A few paths genuinely need rows of any tenant: they
run inside `cross_tenant(purpose)`, which sets `app.cross_tenant` to the purpose for their
transactions, and they are listed here. Each use is logged (purpose and caller) on the
`leadmgmt.cross_tenant` logger (INFO for platform admin and invitations, DEBUG for the per-request
and per-minute paths), and the purpose is visible to PostgreSQL (`current_setting`) in
its logs and `pg_stat_activity` investigations.

A cross-tenant block finds work or an entry point; the work itself runs in `tenant_scope(tenant)`,
which switches the cross-tenant purpose off inside it.

`.unscoped()` on a tenant-owned model (every tenant's rows) belongs to these paths only:
`UNSCOPED_CALLERS` lists the functions that may call it, and tests/leadmgmt/test_tenancy_idiom.py
fails on any other caller. Everything else names its tenant: `Model.objects.for_tenant(tenant)`,
or `Model.objects` for the tenant in context.
"""
from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .context import _cross_tenant

log = logging.getLogger("leadmgmt.cross_tenant")

PURPOSES: dict[str, str] = {
    "sign_in": "the workspaces (memberships) of a signed-in user, before a tenant is chosen; sign-in lockouts",
    "api_key": "the API key of a bearer token, found by its public prefix",
    "intake_form": "the lead form of a public intake key or origin",
    "public_link": "the message of a signed nurture link (click, open, unsubscribe) or of a bounce callback",
    "invitation": "an invitation found by its emailed token",
    "sweep": "periodic agents finding the due work of every tenant (the work runs per tenant)",
    "platform_admin": "a platform superuser in the admin with no tenant chosen",
    "bench_harness": "the benchmarks' own set-up and checks (bench/_common.py); what they measure runs in the "
                     "web and worker processes or in tenant scopes",
    "test_harness": "the test suite's own set-up and checks (tests/conftest.py); the code under test runs "
                    "in fresh contexts (requests, tasks)",
}

# module → {function (qualified name) allowed to call `.unscoped()`: its purpose above}. Each runs that query
# inside `cross_tenant(purpose)`; tests/leadmgmt/test_tenancy_idiom.py fails on any caller not listed here.
UNSCOPED_CALLERS: dict[str, dict[str, str]] = {
    "leadmgmt/tenancy/admin_base.py": {"admin_rows": "platform_admin", "tenant_choices": "platform_admin"},
    "leadmgmt/tenancy/invitations.py": {"invitation_for_token": "invitation"},
    "leadmgmt/tenancy/lockouts.py": {"lockout_record": "sign_in"},
    "leadmgmt/tenancy/selectors.py": {"memberships_of_user": "sign_in", "api_key_lookup": "api_key"},
    "leads/intake.py": {"_origin_allowed_by_any_form": "intake_form", "_form_lookup": "intake_form"},
    "leads/selectors.py": {"signals_unprocessed_by_tenant": "sweep", "tenants_with_attachable_signals": "sweep"},
    "leads/services/intake.py": {"idempotency_records_purge": "sweep"},
    "scoring/selectors.py": {"tenants_with_pending_score_events": "sweep"},
    "routing/notifications.py": {"notification_emails_send": "sweep"},
    "routing/services/sla_enforcement.py": {"_Batch.__init__": "sweep", "sla_enforce": "sweep"},
    "nurture/api.py": {"BounceSecretAuthentication.authenticate": "public_link"},
    "nurture/selectors.py": {"message_for_link": "public_link"},
    "nurture/services/sending.py": {"nurture_agent_run": "sweep"},
    "leadmgmt/webhooks/services/delivery.py": {"tenants_with_due_deliveries": "sweep", "webhook_log_purge": "sweep"},
    "leadmgmt/webhooks/services/endpoints.py": {"webhook_endpoints_disable_failing": "sweep"},
}

_PURPOSE_RE = re.compile(r"^[a-z_]+$")
# Logged at INFO; the others run on every request or every minute and are logged at DEBUG.
_NOTEWORTHY = {"platform_admin", "invitation"}


@contextmanager
def cross_tenant(purpose: str) -> Iterator[None]:
    """Run a block over every tenant's rows, for one of the PURPOSES."""
    if purpose not in PURPOSES or not _PURPOSE_RE.match(purpose):
        raise ValueError(f"unknown cross-tenant purpose {purpose!r}; add it to leadmgmt/tenancy/cross_tenant.py")
    caller = sys._getframe(2)  # the function that opened the block (1 is contextmanager's __enter__)
    log.log(logging.INFO if purpose in _NOTEWORTHY else logging.DEBUG, "cross-tenant %s from %s:%s", purpose,
            caller.f_code.co_filename, caller.f_lineno)
    token = _cross_tenant.set(purpose)
    try:
        yield
    finally:
        _cross_tenant.reset(token)
