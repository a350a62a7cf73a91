"""leadmgmt/db/prepared.py against real PostgreSQL: prepared once per connection, run with EXECUTE after, again
after a reconnect, through a rolled-back transaction, and under the tenant's row-level security."""
from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from leadmgmt.db.prepared import _statement, execute_prepared
from leadmgmt.tenancy.context import tenant_scope
from leads.models import Lead
from tests.support.factories import LeadFactory

pytestmark = pytest.mark.django_db(transaction=True)

SQL = "SELECT %s::int + %s::int, '100%%'"


def _run(sql=SQL, params=(2, 3)):
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, list(params))
        return cursor.fetchone()


def test_a_statement_is_prepared_once_per_connection_then_executed():
    with CaptureQueriesContext(connection) as queries:
        assert _run() == (5, "100%")
        assert _run(params=(4, 5)) == (9, "100%")
    sent = [q["sql"] for q in queries.captured_queries]
    assert len(sent) == 3 and "PREPARE" in sent[0] and all("EXECUTE" in s and "PREPARE" not in s for s in sent[1:])
    connection.close()
    with CaptureQueriesContext(connection) as queries:
        assert _run() == (5, "100%")
    assert "PREPARE" in queries.captured_queries[0]["sql"]  # a new connection prepares again


def test_a_prepared_statement_outlives_a_rolled_back_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        _run()
        raise RuntimeError
    assert _run(params=(1, 1)) == (2, "100%")


def test_the_placeholders_must_match_the_parameters():
    with pytest.raises(ValueError, match="1 parameters for 2 placeholders"):
        _run(params=(1,))
    name, prepare, count = _statement(SQL)
    assert count == 2 and "$1::int + $2::int" in prepare and "'100%'" in prepare


def test_row_level_security_applies_per_execution(tenant, other_tenant):
    mine, theirs = LeadFactory(tenant=tenant), LeadFactory(tenant=other_tenant)
    sql = f"SELECT array_agg(id::text) FROM {Lead._meta.db_table} WHERE id IN (%s, %s)"  # noqa: S608
    with tenant_scope(tenant):
        assert _run(sql, (mine.pk, theirs.pk)) == ([str(mine.pk)],)
    with tenant_scope(other_tenant):
        assert _run(sql, (mine.pk, theirs.pk)) == ([str(theirs.pk)],)
