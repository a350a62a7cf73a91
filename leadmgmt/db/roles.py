"""The app role: the PostgreSQL login the app runs as, held to row-level security.

The tables' owner (the `DATABASE_URL` login, used for migrations only) creates it when it is
missing and grants it data access, after every `migrate` (and `flush`):

    CREATE ROLE leadmgmt_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO leadmgmt_app;

It owns nothing, so it cannot switch row-level security off, alter a policy or truncate a table.
If the role already exists with SUPERUSER or BYPASSRLS, migrate takes those away. When the owner
may not create roles (a managed database), create the role yourself once with the statement above.
"""
from __future__ import annotations

from django.db import connections
from psycopg2 import sql


def app_role_name(alias: str = "default") -> str:
    return connections[alias].settings_dict["USER"]


def ensure_app_role(alias: str = "default") -> None:
    """As the owner: the app role exists, may log in, bypasses nothing, and may read and write the tables."""
    connection = connections[alias]
    settings_dict = connection.settings_dict
    role = settings_dict["USER"]
    owner = settings_dict.get("OWNER_USER")
    if not owner or role == owner:
        return  # one login for everything (not a supported set-up outside of tooling): nothing to do
    password = settings_dict.get("PASSWORD") or None
    name = sql.Identifier(role)
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
        row = cursor.fetchone()
        if row is None:
            # Several test runs may share a cluster: a concurrent CREATE ROLE is not an error.
            cursor.execute(sql.SQL(
                "DO $$ BEGIN CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$").format(name).as_string(cursor.cursor))
        elif row[0] or row[1]:
            cursor.execute(sql.SQL("ALTER ROLE {} NOSUPERUSER NOBYPASSRLS").format(name).as_string(cursor.cursor))
        if password:
            cursor.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(name, sql.Literal(password)).as_string(cursor.cursor))
        database = sql.Identifier(settings_dict["NAME"])
        for statement in (
            "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}",
            "GRANT USAGE ON SCHEMA public TO {role}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
            "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
            "REVOKE CREATE ON SCHEMA public FROM {role}",
        ):
            cursor.execute(sql.SQL(statement).format(db=database, role=name).as_string(cursor.cursor))
