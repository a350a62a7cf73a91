"""Planner statistics after a bulk load.

PostgreSQL plans each statement on statistics that autovacuum refreshes a minute or so after a table changed
by a tenth. An import puts tens of thousands of leads into a tenant in that minute, and the capture pipeline's
statements for its batches are planned meanwhile on a tenant that had a few dozen leads: an index scan that
reads every lead of the tenant looks as cheap as one that reads the batch. PostgreSQL's advice for a bulk load
is to ANALYZE after it (Populating a Database, "Run ANALYZE Afterwards"), which the import does through
`leads_statistics_refresh()` (migration leads 0021: the app role may not ANALYZE a table it does not own)."""
from __future__ import annotations

from django.db import connection


def lead_statistics_refresh() -> None:
    """ANALYZE the leads, accounts and touches tables (a few hundred milliseconds at 100,000 leads: PostgreSQL
    reads a sample of 30,000 rows of each)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT leads_statistics_refresh()")
