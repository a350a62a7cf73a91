"""PostgreSQL holds every tenant-owned table to the tenant of the transaction, whatever the ORM asks.

Table by table, with raw SQL (no ORM filter, no manager): under tenant A's context none of tenant B's
rows can be read, updated, deleted or written; with no tenant in context no row at all; the app's
login is neither superuser nor BYPASSRLS nor an owner; and a tenant table without the policy (what a
migration that forgets `TenantRowLevelSecurity` leaves) is caught.
"""
from __future__ import annotations

import json
from io import StringIO

import psycopg2
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from leadmgmt.db.rls import enable_sql, tables_missing_policy, tenant_tables
from leadmgmt.tenancy.context import fresh_context, tenant_scope
from leadmgmt.tenancy.models import Tenant
from leads.models import Lead

pytestmark = pytest.mark.django_db


def _seed_demo(credentials_file) -> Tenant:
    call_command("seed_demo", "--json", "--credentials-file", str(credentials_file), stdout=StringIO())
    return Tenant.objects.get(slug="demo")


@pytest.fixture
def two_tenants(tmp_path):
    """Two tenants with rows in every tenant-owned table: the demo tenant, twice, plus what the demo lacks."""
    a = _seed_demo(tmp_path / "a.json")
    a.slug = "tenant-a"
    a.save(update_fields=["slug"])
    b = _seed_demo(tmp_path / "b.json")
    for tenant in (a, b):
        _fill_the_rest(tenant)
    return a, b


def _fill_the_rest(tenant: Tenant) -> None:
    """Rows the demo seed does not write (invitations, opportunities, escalations, messages …)."""
    from tests.support.rls import fill_every_tenant_table

    fill_every_tenant_table(tenant)


def _count(sql: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _rows_by_tenant(table: str) -> dict[int, int]:
    with connection.cursor() as cursor:  # the test harness's own view: every tenant
        cursor.execute(f'SELECT tenant_id, count(*) FROM "{table}" GROUP BY tenant_id')
        return dict(cursor.fetchall())


def test_every_tenant_table_is_under_row_level_security():
    tables = tenant_tables()
    assert len(tables) >= 41
    assert tables_missing_policy() == {}
    print(f"\n{len(tables)} tables under row-level security (enabled, forced, one tenant_isolation policy)")


def test_the_app_login_bypasses_nothing_and_owns_nothing():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb "
                       "FROM pg_roles WHERE rolname = current_user")
        user, superuser, bypass, createrole, createdb = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                       "WHERE r.rolname = current_user AND c.relnamespace = 'public'::regnamespace")
        owned = cursor.fetchone()[0]
    assert user == connection.settings_dict["USER"] != connection.settings_dict["OWNER_USER"]
    assert (superuser, bypass, createrole, createdb, owned) == (False, False, False, False, 0)


@pytest.mark.parametrize("statement", [
    'ALTER TABLE leads_lead DISABLE ROW LEVEL SECURITY',
    'ALTER TABLE leads_lead NO FORCE ROW LEVEL SECURITY',
    'DROP POLICY tenant_isolation ON leads_lead',
    'TRUNCATE leads_lead CASCADE',
    'SET ROLE postgres',
])
def test_the_app_login_cannot_switch_row_level_security_off(statement):
    with pytest.raises(ProgrammingError, match="must be owner|permission denied"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(statement)


def test_table_by_table_no_row_of_another_tenant_is_reachable_with_raw_sql(two_tenants):
    a, b = two_tenants
    tables = tenant_tables()
    checked = []
    for table in tables:
        counts = _rows_by_tenant(table)
        assert counts.get(a.pk) and counts.get(b.pk), f"{table}: the fixture must give both tenants rows {counts}"
        with tenant_scope(a):
            assert _count(f'SELECT count(*) FROM "{table}" WHERE tenant_id = %s', [b.pk]) == 0, table
            assert _count(f'SELECT count(*) FROM "{table}"') == counts[a.pk], table
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(f'UPDATE "{table}" SET tenant_id = tenant_id WHERE tenant_id = %s', [b.pk])
                    assert cursor.rowcount == 0, table
                    cursor.execute(f'DELETE FROM "{table}" WHERE tenant_id = %s', [b.pk])
                    assert cursor.rowcount == 0, table
                transaction.set_rollback(True)
            # A's row may not be moved to B (the policy's WITH CHECK), nor may a row of B be written.
            with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(f'UPDATE "{table}" SET tenant_id = %s WHERE ctid = (SELECT ctid FROM "{table}" '
                                   f'LIMIT 1)', [b.pk])
        with fresh_context():  # no tenant, no cross-tenant purpose: nothing
            assert _count(f'SELECT count(*) FROM "{table}"') == 0, table
        checked.append(table)
    assert checked == tables
    print(f"\n{len(checked)} tables: no cross-tenant read, update, delete or write under raw SQL")


def test_an_insert_for_another_tenant_is_refused(two_tenants):
    a, b = two_tenants
    with tenant_scope(a), pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO leads_account (tenant_id, domain, name, created_at) VALUES (%s, 'x.test', 'X', now())",
                           [b.pk])


def test_the_orm_without_its_filter_sees_one_tenant(two_tenants):
    a, b = two_tenants
    with tenant_scope(a):
        tenants = set(Lead.objects.unscoped().values_list("tenant_id", flat=True))
    assert tenants == {a.pk}
    with tenant_scope(b):
        assert not Lead.objects.unscoped().filter(tenant=a).exists()


def test_a_tenant_table_created_without_the_policy_is_caught():
    """What a migration adding a tenant table without `TenantRowLevelSecurity` would leave behind."""
    settings_dict = connection.settings_dict
    params = {k: v for k, v in connection.get_connection_params().items() if k not in {"cursor_factory", "context"}}
    params.update(user=settings_dict["OWNER_USER"], password=settings_dict["OWNER_PASSWORD"] or None)
    owner = psycopg2.connect(**params)
    try:
        with owner.cursor() as cursor:
            cursor.execute("CREATE TABLE rls_probe (id bigserial PRIMARY KEY, tenant_id bigint NOT NULL)")
            assert tables_missing_policy(cursor) == {"rls_probe": "not enabled, not forced, no policy"}
            cursor.execute("ALTER TABLE rls_probe ENABLE ROW LEVEL SECURITY")
            cursor.execute("CREATE POLICY tenant_isolation ON rls_probe USING (true)")
            assert tables_missing_policy(cursor) == {"rls_probe": "not forced, no policy"}
            cursor.execute("DROP POLICY tenant_isolation ON rls_probe")
            for statement in enable_sql("rls_probe"):
                cursor.execute(statement)
            assert tables_missing_policy(cursor) == {}
    finally:
        owner.rollback()
        owner.close()


def test_the_tenant_setting_lasts_one_transaction(two_tenants):
    a, _b = two_tenants
    with tenant_scope(a), transaction.atomic():
        assert _count("SELECT NULLIF(current_setting('app.tenant_id', true), '')::bigint") == a.pk
    with fresh_context(), connection.cursor() as cursor:
        cursor.execute("SELECT NULLIF(current_setting('app.tenant_id', true), '')")
        assert cursor.fetchone()[0] is None


def test_the_demo_seed_runs_under_row_level_security(tmp_path):
    """`make run` seeds as the app role with no test harness around it (a command of its own)."""
    with fresh_context():
        out = StringIO()
        call_command("seed_demo", "--json", "--credentials-file", str(tmp_path / "c.json"), stdout=out)
    data = json.loads(out.getvalue())
    demo = Tenant.objects.get(slug="demo")
    assert data and Lead.objects.unscoped().filter(tenant=demo).count() >= 5
