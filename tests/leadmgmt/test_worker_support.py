"""The URL handed to worker and manage.py subprocesses reaches the test database on this run's server.

The embedded PostgreSQL (pgserver) of a plain `make test` listens on a unix socket only and its URL
names the socket directory in `?host=`; a URL rebuilt from HOST/PORT sent the subprocesses to
localhost:5432 instead (another server, or none).
"""
from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import dj_database_url
import psycopg2
import pytest

from tests.support import worker as worker_support
from tests.support.worker import test_database_url

CONNECTION_KEYS = ("USER", "PASSWORD", "HOST", "PORT", "OPTIONS")


def connection_of(db: dict) -> dict:
    return {k: db.get(k) or None for k in CONNECTION_KEYS}


@pytest.mark.parametrize("url", [
    "postgresql://postgres:@/leadmgmt?host=/tmp/pgserver-sock-dir",  # what pgserver's get_uri() gives
    "postgres://postgres@127.0.0.1:5432/leadmgmt",
    "postgres://app:p%40ss%2Fword@db.internal:6543/leadmgmt?sslmode=require&application_name=lm",
    "postgres://app@%2Fvar%2Frun%2Fpostgresql/leadmgmt",  # socket directory as a percent-encoded host
])
def test_the_url_keeps_host_port_credentials_and_query_and_names_the_test_database(monkeypatch, url):
    test_db = {**dj_database_url.parse(url), "NAME": "test_leadmgmt_gw3"}
    monkeypatch.setattr(worker_support, "settings",
                        SimpleNamespace(DATABASE_URL=url, DATABASES={"default": test_db}))
    monkeypatch.setattr(worker_support, "connection", SimpleNamespace(settings_dict=test_db), raising=False)

    result = test_database_url()

    parsed = dj_database_url.parse(result)
    assert parsed["NAME"] == "test_leadmgmt_gw3"
    assert connection_of(parsed) == connection_of(test_db)
    assert parse_qs(urlsplit(result).query) == parse_qs(urlsplit(url).query)


@pytest.mark.django_db
def test_a_subprocess_url_reaches_the_same_server_and_database_as_the_tests():
    from django.db import connection

    query = "SELECT current_database(), pg_postmaster_start_time(), inet_server_port()"
    with connection.cursor() as cursor:
        cursor.execute(query)
        ours = cursor.fetchone()
    conn = psycopg2.connect(test_database_url())
    try:
        with conn.cursor() as cursor:
            cursor.execute(query)
            assert cursor.fetchone() == ours
    finally:
        conn.close()
