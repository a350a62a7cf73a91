"""Reading a CSV file for an import: its encoding, delimiter and header row, its data rows with their line
numbers, and the mapping of its columns to lead fields (suggested from the header names, validated)."""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError

from leadmgmt.api import text_problem
from leads.capture_input import FIELD_ALIASES, MAX_ATTRIBUTE_KEY_LENGTH

DELIMITERS = ",;\t|"
SAMPLE_CHARS = 64 * 1024
ATTRIBUTE_PREFIX = "attributes."

# Targets only an import has (the intake has no such fields): who owns the lead, the consent's date, where the
# lead stands, its id in the system it came from, and when it was created there (history).
IMPORT_ALIASES: dict[str, tuple[str, ...]] = {
    "owner_email": ("owner_email", "owner", "lead_owner", "lead_owner_email", "owner_e_mail", "assigned_to",
                    "sales_rep", "rep_email"),
    "consent_at": ("consent_at", "consent_date", "consented_at", "opt_in_date", "optin_date", "consent_timestamp"),
    "status": ("status", "lead_status"),
    "stage": ("stage", "lifecycle_stage", "lead_stage", "funnel_stage"),
    "external_id": ("external_id", "id", "crm_id", "record_id", "lead_id", "contact_id", "source_id"),
    "created_at": ("created_at", "created", "created_date", "date_created", "create_date", "createdate"),
}
# Every target a column may have, besides "attributes.<key>" and "" (ignored).
TARGETS: tuple[str, ...] = (*FIELD_ALIASES, *IMPORT_ALIASES)
_ALIAS_TO_TARGET = {alias: target for target, aliases in {**FIELD_ALIASES, **IMPORT_ALIASES}.items()
                    for alias in aliases}


class ImportFileRefused(ValidationError):
    """The file cannot be imported (too large, too many rows, not text, no rows); `status` is the HTTP answer."""

    def __init__(self, message: str, *, status: int = 400):
        super().__init__({"file": [message]})
        self.status = status


@dataclass(frozen=True)
class Detection:
    encoding: str
    delimiter: str
    has_header: bool
    headers: list[str]
    row_count: int


def header_normalize(header: str) -> str:
    """A header as a key: "E-mail Address" → "e_mail_address", "firstName" → "first_name", "Prénom" → "prenom"."""
    ascii_only = "".join(c for c in unicodedata.normalize("NFKD", header) if not unicodedata.combining(c))
    key = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", ascii_only.strip())
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def content_decode(content: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 with a BOM, UTF-8, else Windows-1252 (Latin-1's superset Excel writes), else Latin-1."""
    if content.startswith(codecs.BOM_UTF8):
        return content.decode("utf-8-sig"), "utf-8-sig"
    for encoding in ("utf-8", "cp1252"):
        try:
            return content.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return content.decode("latin-1"), "latin-1"


def _delimiter_guess(sample: str) -> str:
    """csv.Sniffer among , ; tab |; when it cannot tell, the candidate that splits the first lines into the
    same number of columns (the most columns wins a tie); a single column is ','."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    lines = sample.splitlines()[:20]
    best, best_score = ",", (0.0, 1)
    for delimiter in DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=delimiter) if row]
        if not widths or max(widths) < 2:
            continue
        common = max(set(widths), key=widths.count)
        score = (widths.count(common) / len(widths), common)
        if score > best_score:
            best, best_score = delimiter, score
    return best


_DATA_LIKE = re.compile(r"@|^[\d\s+().:/-]+$")


def _looks_like_header(cells: Sequence[str]) -> bool:
    """A first row is a header unless a cell in it looks like data (an email address, a number, a date)."""
    filled = [cell.strip() for cell in cells if cell.strip()]
    return bool(filled) and not any(_DATA_LIKE.search(cell) for cell in filled)


def rows_read(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number where the row starts, cells) of every non-blank row, header included."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    for cells in reader:
        line, start = start, reader.line_num + 1
        if any(cell.strip() for cell in cells):
            yield line, cells


def file_detect(*, content: bytes) -> Detection:
    """Encoding, delimiter, header row and data row count of an uploaded file; `ImportFileRefused` above the
    limits (IMPORT_MAX_BYTES: 413, IMPORT_MAX_ROWS: 400), for a file that is not CSV text, or one with no rows."""
    if len(content) > settings.IMPORT_MAX_BYTES:
        raise ImportFileRefused(
            f"The file is {len(content):,} bytes; imports are limited to {settings.IMPORT_MAX_BYTES:,} bytes.", status=413)
    if b"\x00" in content:
        raise ImportFileRefused("This is not a CSV text file (it holds binary data).")
    text, encoding = content_decode(content)
    sample = text[:SAMPLE_CHARS]
    if len(text) > SAMPLE_CHARS and "\n" in sample:
        sample = sample[:sample.rindex("\n")]
    delimiter = _delimiter_guess(sample)
    rows = rows_read(text, delimiter)
    try:
        first = next(rows, None)
        if first is None:
            raise ImportFileRefused("The file has no rows.")
        has_header = _looks_like_header(first[1])
        count = 0 if has_header else 1
        for _row in rows:
            count += 1
            if count > settings.IMPORT_MAX_ROWS:
                raise ImportFileRefused(
                    f"The file has more than {settings.IMPORT_MAX_ROWS:,} rows, the most one import accepts: "
                    "split it into several files.")
    except csv.Error as exc:
        raise ImportFileRefused(f"The file cannot be read as CSV: {exc}.") from exc
    width = len(first[1])
    if has_header:
        headers = [cell.strip() or f"Column {n}" for n, cell in enumerate(first[1], start=1)]
    else:
        headers = [f"Column {n}" for n in range(1, width + 1)]
    if count == 0:
        raise ImportFileRefused("The file has a header row but no data rows.")
    return Detection(encoding=encoding, delimiter=delimiter, has_header=has_header, headers=headers, row_count=count)


def data_rows(*, content: bytes, encoding: str, delimiter: str, has_header: bool) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of the file's data rows, in file order."""
    rows = rows_read(content.decode(encoding), delimiter)
    if has_header:
        next(rows, None)
    yield from rows


# --- Mapping ---------------------------------------------------------------------------------------------


def headers_key(headers: Sequence[str]) -> str:
    """The key a tenant's remembered mapping is found by: the normalised header names, in order."""
    return hashlib.sha256(json.dumps([header_normalize(h) for h in headers]).encode()).hexdigest()


def mapping_suggest(headers: Sequence[str]) -> list[str]:
    """A target per column from its header: a known name or synonym of a lead field or import field, else a
    custom attribute named after the header; a second column for a target already taken becomes an attribute."""
    taken: set[str] = set()
    mapping = []
    for header in headers:
        key = header_normalize(header)
        target = _ALIAS_TO_TARGET.get(key) or _ALIAS_TO_TARGET.get(key.replace("_", ""), "")
        if not target or target in taken:
            target = f"{ATTRIBUTE_PREFIX}{key}" if key else ""
        taken.add(target)
        mapping.append(target)
    return mapping


def mapping_validate(*, headers: Sequence[str], mapping) -> list[str]:
    """The mapping, or ValidationError with a message per faulty column (`mapping.<index>`)."""
    if not isinstance(mapping, list) or len(mapping) != len(headers):
        raise ValidationError({"mapping": [f"Give one target per column: a list of {len(headers)} field names "
                                           "(\"\" to skip a column)."]})
    errors: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    clean = []
    for index, target in enumerate(mapping):
        target = "" if target is None else target
        column = headers[index]
        if not isinstance(target, str):
            errors[f"mapping.{index}"] = [f"Column '{column}': a field name is text."]
            clean.append("")
            continue
        target = target.strip()
        problem = text_problem(target)
        if problem:
            errors[f"mapping.{index}"] = [f"Column '{column}': {problem}"]
            clean.append("")
            continue
        if target.startswith(ATTRIBUTE_PREFIX):
            key = target[len(ATTRIBUTE_PREFIX):].strip()
            if not key or len(key) > MAX_ATTRIBUTE_KEY_LENGTH:
                errors[f"mapping.{index}"] = [
                    f"Column '{column}': a custom attribute needs a name of 1 to {MAX_ATTRIBUTE_KEY_LENGTH} characters."]
            target = f"{ATTRIBUTE_PREFIX}{key}"
        elif target and target not in TARGETS:
            errors[f"mapping.{index}"] = [f"Column '{column}': unknown field '{target}'."]
        if target and target in seen and f"mapping.{index}" not in errors:
            errors[f"mapping.{index}"] = [
                f"Columns '{headers[seen[target]]}' and '{column}' are both mapped to '{target}'; map one of them."]
        seen.setdefault(target, index)
        clean.append(target)
    if not ({"email", "phone"} & set(clean)):
        errors.setdefault("mapping", []).append("Map a column to email or to phone: a lead needs one of them.")
    if "consent_at" in clean and "marketing_consent" not in clean:
        errors.setdefault("mapping", []).append("A consent date needs a column mapped to marketing_consent.")
    if errors:
        raise ValidationError(errors)
    return clean
