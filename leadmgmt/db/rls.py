"""Row-level security on tenant-owned tables: the policy, the migration operation, and the check.

Every table with a `tenant_id` column gets, in the migration that creates it:

    ALTER TABLE t ENABLE ROW LEVEL SECURITY;
    ALTER TABLE t FORCE ROW LEVEL SECURITY;     -- the table's owner too
    CREATE POLICY tenant_isolation ON t USING (<TENANT_MATCH>) WITH CHECK (<TENANT_MATCH>);

so a transaction reads and writes only rows of the tenant its `app.tenant_id` names, unless a
listed cross-tenant path set `app.cross_tenant` (leadmgmt/tenancy/cross_tenant.py). In a migration:
`migrations.RunSQL`-like `TenantRowLevelSecurity("app_model_table")`. `tables_missing_policy()` is
what tests/leadmgmt/test_row_level_security.py holds every table to.
"""
from __future__ import annotations

from django.db import connection as default_connection
from django.db.migrations.operations.base import Operation

POLICY = "tenant_isolation"
TENANT_MATCH = ("tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint "
                "OR COALESCE(current_setting('app.cross_tenant', true), '') <> ''")


def enable_sql(table: str) -> list[str]:
    return [
        f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
        f'DROP POLICY IF EXISTS {POLICY} ON "{table}"',
        f'CREATE POLICY {POLICY} ON "{table}" USING ({TENANT_MATCH}) WITH CHECK ({TENANT_MATCH})',
    ]


def disable_sql(table: str) -> list[str]:
    return [
        f'DROP POLICY IF EXISTS {POLICY} ON "{table}"',
        f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY',
    ]


class TenantRowLevelSecurity(Operation):
    """Migration operation: the tenant isolation policy on the given tables (reversible)."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, *tables: str):
        self.tables = tables

    def deconstruct(self):
        return self.__class__.__qualname__, list(self.tables), {}

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        for table in self.tables:
            for statement in enable_sql(table):
                schema_editor.execute(statement)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        for table in self.tables:
            for statement in disable_sql(table):
                schema_editor.execute(statement)

    def describe(self):
        return f"Row-level security (tenant isolation) on {', '.join(self.tables)}"


def tenant_tables(cursor=None) -> list[str]:
    """Every table of the schema with a `tenant_id` column (`cursor`: any DB-API cursor; default: Django's)."""
    if cursor is None:
        with default_connection.cursor() as cursor:
            return tenant_tables(cursor)
    cursor.execute("""
        SELECT c.table_name FROM information_schema.columns c
        JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
        WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE'
        ORDER BY 1""")
    return [row[0] for row in cursor.fetchall()]


def tables_missing_policy(cursor=None) -> dict[str, str]:
    """Tenant tables without RLS enabled and forced, or without the isolation policy as written here (for
    every command, on both reads and writes, and no other policy to widen it): {table: what is missing}."""
    if cursor is None:
        with default_connection.cursor() as cursor:
            return tables_missing_policy(cursor)
    cursor.execute(r"""
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s AND p.polcmd = '*'
                       AND p.polpermissive AND p.polroles = '{0}'
                       AND pg_get_expr(p.polqual, p.polrelid) = pg_get_expr(p.polwithcheck, p.polrelid)
                       AND regexp_replace(pg_get_expr(p.polqual, p.polrelid), '[()\s]|::[a-z ]+', '', 'g')
                           = regexp_replace(%s, '[()\s]|::[a-z ]+', '', 'g')),
               (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r'""", [POLICY, TENANT_MATCH])
    state = {name: (enabled, forced, policy and count == 1) for name, enabled, forced, policy, count in cursor.fetchall()}
    missing = {}
    for table in tenant_tables(cursor):
        enabled, forced, policy = state.get(table, (False, False, False))
        gaps = [what for what, ok in (("not enabled", enabled), ("not forced", forced), ("no policy", policy)) if not ok]
        if gaps:
            missing[table] = ", ".join(gaps)
    return missing
