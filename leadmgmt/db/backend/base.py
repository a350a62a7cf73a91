"""PostgreSQL backend (ENGINE "leadmgmt.db.backend"): the app's connection runs as a role that
PostgreSQL holds to row-level security, and every transaction carries the tenant in context.

- **Two logins.** The app connects as `USER` (the app role: no superuser, no BYPASSRLS, owns no table).
  Schema changes run in `owner_mode()` as `OWNER_USER` (the tables' owner): `migrate`, `flush` and the
  creation of test databases. See leadmgmt/db/roles.py for how the app role is created and granted.
- **The tenant per transaction.** Before a statement, the `app.tenant_id` and `app.cross_tenant`
  settings are set with `set_config(…, true)` (transaction-local, like SET LOCAL) to the tenant in
  context (leadmgmt.tenancy.context) and the cross-tenant purpose, if any (leadmgmt/tenancy/cross_tenant.py).
  The `set_config` travels in the same round trip as the statement. Inside a transaction it is sent once,
  again only when the context changes or a rollback to a savepoint may have undone it; in autocommit
  mode, where each statement is its own transaction, it goes with every statement. No tenant and no
  purpose means both are empty: the policies then match no row (fail closed).
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from django.db.backends.postgresql import base

from .creation import DatabaseCreation

_owner_mode = threading.local()


def in_owner_mode() -> bool:
    return getattr(_owner_mode, "depth", 0) > 0


@contextlib.contextmanager
def owner_mode(connection) -> Iterator[None]:
    """Run a block connected as the tables' owner (schema changes). Reentrant; closes the connection on
    the way in and out so that each side gets a connection of its own role."""
    depth = getattr(_owner_mode, "depth", 0)
    if depth == 0:
        connection.close()
    _owner_mode.depth = depth + 1
    try:
        yield
    finally:
        _owner_mode.depth = depth
        if depth == 0:
            connection.close()


def _context_settings() -> tuple[str, str]:
    from leadmgmt.tenancy.context import get_cross_tenant_purpose, get_current_tenant

    tenant = get_current_tenant()
    tenant_id = "" if tenant is None or tenant.pk is None else str(int(tenant.pk))
    purpose = get_cross_tenant_purpose() or ""
    return tenant_id, purpose


def settings_prefix(tenant_id: str, purpose: str) -> str:
    # Both values are safe literals: an integer, and a purpose name from cross_tenant.PURPOSES (checked there).
    return (f"SELECT set_config('app.tenant_id', '{tenant_id}', true), "
            f"set_config('app.cross_tenant', '{purpose}', true); ")


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rls_applied: tuple[str, str] | None = None
        self._rls_paused = False
        self.prepared_statements: set[str] = set()  # leadmgmt.db.prepared: what this connection has prepared
        self.execute_wrappers.append(self._rls_execute)

    # --- which role ------------------------------------------------------------------------------
    def get_connection_params(self):
        params = super().get_connection_params()
        if in_owner_mode() and self.settings_dict.get("OWNER_USER"):
            params["user"] = self.settings_dict["OWNER_USER"]
            if self.settings_dict.get("OWNER_PASSWORD"):
                params["password"] = self.settings_dict["OWNER_PASSWORD"]
            else:
                params.pop("password", None)
        return params

    def get_new_connection(self, conn_params):
        self._rls_applied = None
        self.prepared_statements = set()
        connection = super().get_new_connection(conn_params)
        connection.info  # noqa: B018 (connected)
        self._owner_connection = in_owner_mode()
        return connection

    # --- the tenant of each transaction ------------------------------------------------------------
    def _rls_execute(self, execute, sql, params, many, context):
        if self._rls_paused or getattr(self, "_owner_connection", False):
            return execute(sql, params, many, context)
        wanted = _context_settings()
        in_transaction = not self.get_autocommit()
        if in_transaction and self._rls_applied == wanted:
            return execute(sql, params, many, context)
        prefix = settings_prefix(*wanted)
        sql = prefix.encode() + sql if isinstance(sql, bytes) else prefix + sql
        result = execute(sql, params, many, context)
        if in_transaction:
            self._rls_applied = wanted
        return result

    def _forget_rls(self) -> None:
        self._rls_applied = None

    def _commit(self):
        self._forget_rls()
        return super()._commit()

    def _rollback(self):
        self._forget_rls()
        return super()._rollback()

    def _savepoint(self, sid):
        with self._transaction_control():
            return super()._savepoint(sid)

    def _savepoint_commit(self, sid):
        with self._transaction_control():
            return super()._savepoint_commit(sid)

    def _savepoint_rollback(self, sid):
        # Sent as it is: after a failed statement the transaction accepts nothing but the rollback.
        self._forget_rls()
        with self._transaction_control():
            return super()._savepoint_rollback(sid)

    @contextlib.contextmanager
    def _transaction_control(self):
        self._rls_paused = True
        try:
            yield
        finally:
            self._rls_paused = False

    def _set_autocommit(self, autocommit):
        self._forget_rls()
        return super()._set_autocommit(autocommit)

    def _close(self):
        self._forget_rls()
        return super()._close()
