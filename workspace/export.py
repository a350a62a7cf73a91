"""CSV export of a lead list: the catalogue of exportable columns, and one generator that streams the rows of
any list the viewer sees (the API's filters, My queue, the team queue, the admin's selection) as CSV lines.

Streaming: the rows come from a PostgreSQL cursor declared in the export's own transaction (`DECLARE … NO
SCROLL CURSOR`, then `FETCH FORWARD` a chunk at a time), so a 100,000-row export holds one chunk in memory,
never the list. Django's own server-side cursors are off in this project (settings: the tenant setting
cannot travel with a `DECLARE` that Django sends by itself); here the DECLARE and every FETCH go through the
connection's usual cursor, in one transaction that carries the tenant, so row-level security holds.

Cells are escaped against formula injection (OWASP): a text cell starting with `=`, `+`, `-`, `@`, a tab or a
carriage return gets a leading apostrophe, so a spreadsheet shows it as text and never runs it. The file
starts with a UTF-8 byte order mark so that Excel reads accents right. Every export is audited
(`leads.exported`: the filters, the columns and the number of rows written).
"""
from __future__ import annotations

import csv
import datetime as dt
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet, ValidationError
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record
from leadmgmt.tenancy.context import tenant_scope
from leadmgmt.tenancy.models import Tenant
from leads.models import Lead

BOM = "\ufeff"
CHUNK_ROWS = 2000
ATTRIBUTE_PREFIX = "attributes."
ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9_\-]{1,64}")
ATTRIBUTE_COLUMN_PATTERN = r"^attributes\.[A-Za-z0-9_\-]{1,64}$"  # the same rule, as the API schema says it
MAX_COLUMNS = 60
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportColumn:
    key: str
    label: str
    expression: object  # a field path or an expression for QuerySet.values()


def _column(key: str, label: str, path: str | None = None) -> ExportColumn:
    return ExportColumn(key=key, label=label, expression=F(path or key))


# The catalogue, in the order of the column chooser. Owner and account come through joins of the one query.
COLUMNS: dict[str, ExportColumn] = {c.key: c for c in [
    _column("id", "Lead ID"),
    _column("first_name", "First name"),
    _column("last_name", "Last name"),
    _column("email", "Email"),
    _column("phone", "Phone"),
    _column("job_title", "Job title"),
    _column("company", "Company"),
    _column("company_domain", "Company domain"),
    _column("company_size", "Company size"),
    _column("industry", "Industry"),
    _column("country", "Country"),
    _column("account", "Account", "account__name"),
    _column("account_domain", "Account domain", "account__domain"),
    _column("owner_email", "Owner email", "owner__email"),
    _column("owner_name", "Owner name", "owner__username"),
    _column("status", "Status"),
    _column("stage", "Stage"),
    _column("score", "Score"),
    _column("fit_score", "Fit score"),
    _column("engagement_score", "Engagement score"),
    _column("band", "Band"),
    _column("lead_class", "Class"),
    _column("is_hot", "Hot"),
    _column("conversion_probability", "Conversion probability"),
    _column("predictive_score", "Predictive score"),
    _column("source", "Source"),
    _column("campaign", "Campaign"),
    _column("utm_source", "UTM source"),
    _column("utm_medium", "UTM medium"),
    _column("utm_campaign", "UTM campaign"),
    _column("product_interest", "Product interest"),
    _column("marketing_consent", "Marketing consent"),
    _column("rejection_reason", "Rejection reason"),
    _column("created_at", "Created"),
    _column("updated_at", "Updated"),
    _column("assigned_at", "Assigned"),
    _column("sla_due_at", "SLA due"),
    _column("first_contacted_at", "First contacted"),
    _column("last_activity_at", "Last activity"),
    _column("email_bounced_at", "Email bounced"),
]}

DEFAULT_COLUMNS = ("first_name", "last_name", "email", "phone", "company", "job_title", "country", "owner_email",
                   "status", "stage", "score", "band", "source", "created_at")


def export_columns_parse(value: str | Iterable[str] | None) -> list[str]:
    """Column keys from `a,b,c` (or a list), in the order given; no `columns` at all is the default set. Unknown keys are
    a `ValidationError` on `columns` naming each; `attributes.<key>` is a custom form field by its key."""
    if value is None or value == []:
        return list(DEFAULT_COLUMNS)
    items = value.split(",") if isinstance(value, str) else [part for v in value for part in str(v).split(",")]
    keys = [item.strip() for item in items]
    problems = ["A column key is empty: name the columns as a,b,c."] if "" in keys else []
    keys = [key for key in keys if key]
    for key in keys:
        if key.startswith(ATTRIBUTE_PREFIX):
            if not ATTRIBUTE_KEY.fullmatch(key[len(ATTRIBUTE_PREFIX):]):
                problems.append(f"{key[:80]!r}: a custom field key is 1 to 64 letters, digits, '_' or '-'.")
        elif key not in COLUMNS:
            problems.append(f"Unknown column {key[:80]!r}.")
    if len(keys) > MAX_COLUMNS:
        problems.append(f"At most {MAX_COLUMNS} columns.")
    if len(set(keys)) != len(keys):
        problems.append("A column is named twice.")
    if problems:
        raise ValidationError({"columns": problems})
    return keys


def _expression(key: str):
    if key.startswith(ATTRIBUTE_PREFIX):
        return KeyTextTransform(key[len(ATTRIBUTE_PREFIX):], "attributes")
    return COLUMNS[key].expression


def _label(key: str) -> str:
    return key[len(ATTRIBUTE_PREFIX):] if key.startswith(ATTRIBUTE_PREFIX) else COLUMNS[key].label


def csv_cell(value) -> str:
    """One cell as text: dates in ISO 8601 UTC, booleans yes/no, and text that a spreadsheet would run as a
    formula escaped with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, (int, float, uuid.UUID, dt.date)):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Line:
    """The file-like object csv.writer writes one line into; `writerow` then returns the line."""

    def write(self, value: str) -> str:
        return value


def export_rows_sql(queryset: QuerySet[Lead], keys: list[str]) -> tuple[str, tuple]:
    """The one SELECT of the export: the columns by alias (c0, c1, …), owner and account joined."""
    values = queryset.values(**{f"c{i}": _expression(key) for i, key in enumerate(keys)})
    sql, params = values.query.get_compiler(using=queryset.db).as_sql()
    return sql, tuple(params)


def leads_export_csv(*, tenant: Tenant, actor: Actor, queryset: QuerySet[Lead], columns: list[str],
                     filters: dict | None = None, source: str = "api",
                     chunk_rows: int | None = None) -> Iterator[str]:
    """CSV lines (BOM and header first) of the leads of `queryset`, in its order, with `columns` (keys of
    `COLUMNS` or `attributes.<key>`, already parsed by `export_columns_parse`).

    `queryset` must already be the viewer's (leads.selectors `lead_list` / `lead_queue`, or the admin's
    tenant-scoped queryset) and filtered: this function decides nothing about who sees what. The rows are
    read from a cursor `chunk_rows` at a time inside one transaction held while the caller iterates. When
    the iteration ends (all rows written, or the client went away and the response was closed) one
    `leads.exported` audit event records the filters, the columns, the rows written and whether the file
    was complete.
    """
    chunk_rows = int(chunk_rows or CHUNK_ROWS)
    try:
        sql, params = export_rows_sql(queryset, columns)
    except EmptyResultSet:  # e.g. `owner=me` asked by an API key: no query to run, the header alone
        sql, params = None, ()
    writer = csv.writer(_Line(), lineterminator="\r\n")
    written, complete = 0, False
    try:
        yield BOM + writer.writerow([_label(key) for key in columns])
        if sql is None:
            complete = True
            return
        name = f"lead_export_{uuid.uuid4().hex}"
        # The tenant is set around each statement only (never across a yield: the response is iterated after
        # the view and its middleware have returned); the transaction holds the cursor between chunks.
        with transaction.atomic(), connection.cursor() as cursor:
            with tenant_scope(tenant):
                cursor.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", params)
            while True:
                with tenant_scope(tenant):
                    cursor.execute(f"FETCH FORWARD {chunk_rows} FROM {name}")
                    rows = cursor.fetchall()
                if not rows:
                    break
                written += len(rows)  # counted before the yield: a client that leaves here has them
                yield "".join(writer.writerow([csv_cell(v) for v in row]) for row in rows)
            with tenant_scope(tenant):
                cursor.execute(f"CLOSE {name}")
        complete = True
    finally:
        with tenant_scope(tenant), transaction.atomic():
            audit_record(tenant=tenant, actor=actor, action="leads.exported", object_type="leads.lead",
                         metadata={"source": source, "filters": filters or {}, "columns": columns,
                                   "rows": written, "complete": complete})


def export_chooser(*, filters: list[tuple[str, str]], chosen: list[str] | None = None) -> dict:
    """The context of templates/workspace/_export_chooser.html: the catalogue with the default set ticked, and
    the page's filters as hidden fields (app.js refreshes them from the filter form as it changes)."""
    chosen = set(chosen or DEFAULT_COLUMNS)
    return {
        "export_columns": [{"key": c.key, "label": c.label, "checked": c.key in chosen} for c in COLUMNS.values()],
        "export_params": [(name, value) for name, value in filters if name not in ("page", "columns")],
    }


def export_filename(*, tenant: Tenant, now: dt.datetime | None = None) -> str:
    now = now or timezone.now()
    return f"leads-{tenant.slug}-{now:%Y%m%d-%H%M%S}.csv"
