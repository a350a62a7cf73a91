"""Multi-row INSERTs for batch writes, several times cheaper in Python than Django's `bulk_create`.

`bulk_create` compiles every value of every row as a query expression (for a batch of 300 assignments, SLA
clocks, audit events and notifications that costs more than PostgreSQL takes to write them); `rows_insert`
prepares each value as `save()` does (`pre_save`: defaults and `auto_now`; `get_db_prep_save`: adapters) and
sends one INSERT … VALUES through the connection's cursor, so the transaction's tenant applies (RLS)."""
from __future__ import annotations

from collections.abc import Sequence

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.expressions import DatabaseDefault


def rows_insert(objs: Sequence[models.Model], *, ignore_conflicts: bool = False) -> None:
    """Insert these new instances of one model in one statement. Columns left to their database default
    (`db_default`) are not sent. The auto ids are read back (`RETURNING`, in row order, as `bulk_create`
    does) onto the instances, except with `ignore_conflicts` (`ON CONFLICT DO NOTHING`: a skipped row has
    no id), which leaves them unset."""
    if not objs:
        return
    meta = objs[0]._meta
    conn = connections[DEFAULT_DB_ALIAS]  # not the thread-local proxy: it is read once per value otherwise
    auto = meta.auto_field
    fields = [f for f in meta.local_concrete_fields if not f.generated and f is not auto
              and not isinstance(f.pre_save(objs[0], True), DatabaseDefault)]
    params: list = []
    for obj in objs:
        for f in fields:
            value = f.pre_save(obj, True)
            if isinstance(value, DatabaseDefault):
                raise ValueError(f"{meta.label}.{f.name}: set on some rows and left to its database default on others.")
            params.append(f.get_db_prep_save(value, connection=conn))
    qn = conn.ops.quote_name
    row = f"({', '.join(['%s'] * len(fields))})"
    sql = (f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "  # noqa: S608
           f"VALUES {', '.join([row] * len(objs))}")
    returning = auto is not None and not ignore_conflicts
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    elif returning:
        sql += f" RETURNING {qn(auto.column)}"
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()] if returning else None
    for obj, pk in zip(objs, ids or (), strict=False):
        setattr(obj, auto.attname, pk)
        obj._state.adding, obj._state.db = False, DEFAULT_DB_ALIAS
