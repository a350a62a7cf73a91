"""The Celery task class of the app: every task run starts with no tenant and no cross-tenant purpose.

A task names its tenant itself (`tenant_scope(tenant_id)`) or, for sweeps over every tenant, opens
`cross_tenant("sweep")`; nothing is inherited from whatever the worker thread (or, for eager tasks
in tests, the caller) ran before. Without either, tenant-owned tables show no rows (fail closed).
"""
from __future__ import annotations

from celery import Task

from .context import fresh_context


class TenantContextTask(Task):
    def __call__(self, *args, **kwargs):
        with fresh_context():
            return super().__call__(*args, **kwargs)
