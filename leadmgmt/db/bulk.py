"""Bulk writes of many new rows through COPY: thousands of rows in two statements, at a fraction of the cost of a
multi-row INSERT (whose tens of thousands of literals PostgreSQL parses and types one by one).

Row-level security refuses COPY FROM into a table with a policy, so the rows go to a temporary table of the same
columns (no policy, no index, no WAL) and from there into the real table with one INSERT … SELECT, where the
tenant policy's WITH CHECK, the constraints and the indexes apply as for any INSERT."""
from __future__ import annotations

import datetime as dt
import decimal
import io
import itertools
import json
import uuid
from collections.abc import Sequence

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.expressions import DatabaseDefault

# COPY's text format: a backslash, a tab (the delimiter) and line breaks are escaped; \N is NULL.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_temp_names = itertools.count(1)
_PLAIN_FIELDS = (models.CharField, models.TextField, models.BooleanField, models.IntegerField, models.UUIDField)
_PLAIN_VALUES = frozenset({str, bool, int, uuid.UUID, type(None)})


def _copy_text(value) -> str:
    """One prepared value (what Field.get_db_prep_save returns) in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (int, float, decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if hasattr(value, "adapted") and hasattr(value, "dumps"):  # psycopg2's Json (JSONField)
        return value.dumps(value.adapted).translate(_ESCAPES)
    if isinstance(value, (dict, list)):
        return json.dumps(value).translate(_ESCAPES)
    raise TypeError(f"No COPY text form for {type(value).__name__}")


def rows_copy(objs: Sequence[models.Model], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """INSERT these new, unsaved instances of one model, each value prepared as `save()` prepares it (defaults,
    `auto_now`, adapters); columns left to their database default (`db_default`) and an auto id are not sent,
    nothing is returned. Runs on the connection's cursor, inside the caller's transaction (the tenant of the
    transaction applies)."""
    if not objs:
        return
    meta = objs[0]._meta
    conn = connections[using]  # not the thread-local proxy: it is read once per value otherwise
    fields = [f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field
              and not isinstance(f.pre_save(objs[0], True), DatabaseDefault)]
    # A plain field holding a plain value is sent as it is (its pre_save and get_db_prep_save return it unchanged);
    # anything else goes the way save() prepares it.
    plain = [isinstance(f, _PLAIN_FIELDS) and not f.choices or isinstance(f, models.ForeignKey) for f in fields]
    columns_of = list(zip(fields, [f.attname for f in fields], plain, strict=True))
    out = io.StringIO()
    write = out.write
    for obj in objs:
        state = obj.__dict__
        texts = []
        for f, attname, is_plain in columns_of:
            value = state.get(attname)
            if is_plain and type(value) in _PLAIN_VALUES:
                texts.append(_copy_text(value))
                continue
            value = f.pre_save(obj, True)
            if isinstance(value, DatabaseDefault):
                raise ValueError(f"{meta.label}.{f.name}: set on some rows and left to its database default on others.")
            texts.append(_copy_text(f.get_db_prep_save(value, connection=conn)))
        write("\t".join(texts))
        write("\n")
    out.seek(0)
    qn = conn.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    temp = f"bulk_{meta.db_table}_{next(_temp_names)}"
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE {qn(temp)} ON COMMIT DROP AS "  # noqa: S608
                       f"SELECT {columns} FROM {qn(meta.db_table)} WITH NO DATA")
        cursor.copy_expert(f"COPY {qn(temp)} ({columns}) FROM STDIN", out)
        cursor.execute(f"INSERT INTO {qn(meta.db_table)} ({columns}) SELECT {columns} FROM {qn(temp)}")  # noqa: S608
        cursor.execute(f"DROP TABLE {qn(temp)}")
