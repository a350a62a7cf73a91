"""Batch writes of new rows, several times cheaper than Django's `bulk_create` (which compiles every value of
every row as a query expression: for a batch of assignments, SLA clocks, audit events and notifications that
costs more than PostgreSQL takes to write them).

Both prepare each value as `save()` does (`pre_save`: defaults and `auto_now`; `get_db_prep_save`: adapters;
a plain field holding a plain value is taken as it is, which is what those return for it) and run on the
connection's cursor inside the caller's transaction, so the transaction's tenant applies (RLS):

- `rows_insert`: one INSERT … VALUES, the auto ids read back (batches of hundreds);
- `rows_copy`: COPY into a temporary table of the same columns, then one INSERT … SELECT (thousands of rows:
  PostgreSQL parses and types each literal of a multi-row INSERT one by one). Row-level security refuses COPY
  FROM into a table with a policy, hence the temporary table (no policy, no index, no WAL); the INSERT … SELECT
  checks the tenant policy, the constraints and the indexes as any INSERT does;
- `instance_builder`: new unsaved instances, each as `Model(**values)` builds it, for thousands of rows (Django's
  `__init__` makes every default again, a query expression for each `db_default`, per instance);
- `values_copy`: the same COPY for rows given as tuples of plain values, no model instance per row (an import's
  tens of thousands of touches and audit events: building and preparing an instance costs more than its row)."""
from __future__ import annotations

import datetime as dt
import decimal
import io
import itertools
import json
import uuid
from collections.abc import Callable, Iterator, Sequence

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.base import ModelState
from django.db.models.expressions import DatabaseDefault

_PLAIN_FIELDS = (models.CharField, models.TextField, models.BooleanField, models.IntegerField, models.UUIDField)
_PLAIN_VALUES = frozenset({str, bool, int, uuid.UUID, type(None)})
# COPY's text format: a backslash, a tab (the delimiter) and line breaks are escaped; \N is NULL.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_temp_names = itertools.count(1)


def _fields(objs: Sequence[models.Model]) -> list[models.Field]:
    """The columns to send: not generated, not the auto id, not left to their database default."""
    meta = objs[0]._meta
    return [f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field
            and not isinstance(f.pre_save(objs[0], True), DatabaseDefault)]


def _prepared_rows(objs: Sequence[models.Model], fields: list[models.Field], conn) -> Iterator[list]:
    """Each instance's values for `fields`, as save() would send them."""
    meta = objs[0]._meta
    # A timestamp column that sets nothing itself (no auto_now) takes an aware datetime as it is.
    plan = [(f, f.attname, (isinstance(f, _PLAIN_FIELDS) and not f.choices) or isinstance(f, models.ForeignKey),
             isinstance(f, models.DateTimeField) and not (f.auto_now or f.auto_now_add)) for f in fields]
    for obj in objs:
        state = obj.__dict__
        values = []
        for f, attname, plain, moment in plan:
            value = state.get(attname)
            if plain and type(value) in _PLAIN_VALUES:
                values.append(value)
                continue
            if moment and type(value) is dt.datetime and value.tzinfo is not None:
                values.append(value)
                continue
            value = f.pre_save(obj, True)
            if isinstance(value, DatabaseDefault):
                raise ValueError(f"{meta.label}.{f.name}: set on some rows and left to its database default on others.")
            values.append(f.get_db_prep_save(value, connection=conn))
        yield values


def instance_builder(model: type[models.Model]) -> Callable[..., models.Model]:
    """`build(**values)`: a new unsaved instance of `model`, what `model(**values)` builds (a field not given has
    its default: a callable one, as `uuid4`, `timezone.now`, `dict` or `list`, called for each instance; a constant
    or a `db_default` shared), copied from one instance built once. For a model with no `pre_init` or `post_init`
    receiver (nothing would see the copies being made)."""
    prototype = model().__dict__
    fresh = [(f.name, f.attname, f.get_default) for f in model._meta.concrete_fields
             if f.has_default() and callable(f.default)]

    def build(**values) -> models.Model:
        obj = model.__new__(model)
        obj.__dict__ = {**prototype, "_state": ModelState()}
        for name, attname, default in fresh:
            if name not in values and attname not in values:
                obj.__dict__[attname] = default()
        for name, value in values.items():
            setattr(obj, name, value)
        return obj

    return build


def rows_insert(objs: Sequence[models.Model], *, ignore_conflicts: bool = False,
                using: str = DEFAULT_DB_ALIAS) -> None:
    """Insert these new instances of one model in one statement. The auto ids are read back (`RETURNING`, in row
    order, as `bulk_create` does) onto the instances, except with `ignore_conflicts` (`ON CONFLICT DO NOTHING`:
    a skipped row has no id), which leaves them unset."""
    if not objs:
        return
    meta = objs[0]._meta
    conn = connections[using]  # not the thread-local proxy: it is read once per value otherwise
    auto = meta.auto_field
    fields = _fields(objs)
    params = [value for values in _prepared_rows(objs, fields, conn) for value in values]
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
        obj._state.adding, obj._state.db = False, using


def _copy_text(value) -> str:
    """One prepared value in COPY's text format."""
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
    """INSERT these new, unsaved instances of one model through COPY (nothing is returned: give them their ids,
    as UUID primary keys are, if the caller needs them)."""
    if not objs:
        return
    conn = connections[using]
    fields = _fields(objs)
    shared = _shared_fields(objs, fields)
    varying = [f for f in fields if f not in shared]
    constants = dict(zip([f.column for f in shared], next(_prepared_rows(objs[:1], shared, conn)), strict=True))
    _copy(objs[0]._meta, [f.column for f in varying], _prepared_rows(objs, varying, conn), conn=conn,
          constants=constants)


_UNSET = object()


def _shared_fields(objs: Sequence[models.Model], fields: list[models.Field]) -> list[models.Field]:
    """The fields (but the first) every instance holds the very same value object in, written as it is held (no
    `auto_now`, no JSON, which `save()` prepares per row): one value in the INSERT … SELECT instead of a copied
    value per row, prepared once (the tenant, a batch's `now`, every default a batch leaves alone)."""
    if len(objs) < 2:
        return []
    shared = []
    for f in fields[1:]:
        if isinstance(f, models.JSONField) or getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            continue
        if not isinstance(f, (*_PLAIN_FIELDS, models.DateTimeField, models.ForeignKey)):
            continue
        first = objs[0].__dict__.get(f.attname, _UNSET)
        if first is not _UNSET and all(obj.__dict__.get(f.attname, _UNSET) is first for obj in objs):
            shared.append(f)
    return shared


def values_copy(model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence], *,
                ignore_conflicts: bool = False, using: str = DEFAULT_DB_ALIAS) -> None:
    """INSERT `rows` (each a tuple of values for `columns`, as `get_db_prep_save` would give them: str, bool, int,
    UUID, datetime, None, a dict or list for a JSON column) into `model`'s table through COPY. Columns left out
    take their database default; `ignore_conflicts` skips a row a unique constraint already holds."""
    if not rows:
        return
    _copy(model._meta, columns, rows, conn=connections[using], ignore_conflicts=ignore_conflicts)


def _copy(meta, columns: Sequence[str], rows, *, conn, ignore_conflicts: bool = False,
          constants: dict[str, object] | None = None) -> None:
    out = io.StringIO()
    for values in rows:
        out.write("\t".join([_copy_text(value) for value in values]))
        out.write("\n")
    out.seek(0)
    qn = conn.ops.quote_name
    names = ", ".join(qn(column) for column in columns)
    constants = constants or {}
    targets = ", ".join([names, *(qn(column) for column in constants)])
    selected = ", ".join([names, *(["%s"] * len(constants))])
    temp = f"bulk_{meta.db_table}_{next(_temp_names)}"
    conflicts = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE {qn(temp)} ON COMMIT DROP AS "  # noqa: S608
                       f"SELECT {names} FROM {qn(meta.db_table)} WITH NO DATA")
        cursor.copy_expert(f"COPY {qn(temp)} ({names}) FROM STDIN", out)
        cursor.execute(f"INSERT INTO {qn(meta.db_table)} ({targets}) "  # noqa: S608
                       f"SELECT {selected} FROM {qn(temp)}{conflicts}", list(constants.values()) or None)
        cursor.execute(f"DROP TABLE {qn(temp)}")
