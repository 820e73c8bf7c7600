"""One PostgreSQL role per service, with rights on its own tables only (issue 19 row 10).

The migration step owns the schema (it connects as the administrator, RDS's master user) and, right after
the migrations, (re)applies the services' roles: `ppe_ingest`, `ppe_notifier`, `ppe_reporting`, each with
LOGIN, the password given to it, CONNECT on the database and SELECT / INSERT / UPDATE / DELETE on the tables
of its own Alembic branch (named by its prefix) and their sequences, plus SELECT on `alembic_version`
(reporting checks its head at start). No role may create or alter tables, and none reads another service's
tables (notifier channel secrets, camera key hashes); the shared tables of the access branch get the rights
in ACCESS_GRANTS (reading users for all, managing them for reporting, appending audit records, never
changing one). Grants are reset and re-given at every run, so a table a
new migration adds is covered by the same deploy.

On AWS the migration task gets the passwords as PPE_DB_ROLE_PASSWORD_<SERVICE> from Secrets Manager, and each
service's DATABASE_URL names its own role (deploy/cfn/database.py). Locally (`make run`, compose, tests) the
services keep using the one local user: nothing sets the passwords, so nothing is applied.
"""

import os
from collections.abc import Mapping

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from shared.config import normalise_database_url
from shared.logging import get_logger

log = get_logger(__name__)

# Table name prefixes of each service's Alembic branch (migrations/versions/<service>/).
SERVICE_TABLES: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest_",),
    "notifier": ("notifier_",),
    "reporting": ("reporting_",),
}
PASSWORD_ENV = "PPE_DB_ROLE_PASSWORD_{}"
# The access branch's tables (docs/access.md) are shared: every HTTP service reads who is calling and appends
# to the audit trail; reporting manages users, sessions and tokens. No role may change or delete an audit record.
_READ_USERS = {"access_users": "SELECT", "access_site_roles": "SELECT", "access_sessions": "SELECT",
               "access_api_tokens": "SELECT, UPDATE (last_used_at)", "access_audit": "SELECT, INSERT"}
ACCESS_GRANTS: dict[str, dict[str, str]] = {
    "ingest": _READ_USERS,
    "notifier": _READ_USERS,
    "reporting": {"access_users": "SELECT, INSERT, UPDATE", "access_site_roles": "SELECT, INSERT, UPDATE, DELETE",
                  "access_sessions": "SELECT, INSERT, UPDATE", "access_api_tokens": "SELECT, INSERT, UPDATE",
                  "access_audit": "SELECT, INSERT"},
}
ACCESS_SEQUENCES = {"reporting": ("access_users_id_seq", "access_api_tokens_id_seq")}


def role_name(service: str, prefix: str = "ppe_") -> str:
    return f"{prefix}{service}"


def _connect(database_url: str) -> psycopg.Connection[tuple[object, ...]]:
    url = make_url(normalise_database_url(database_url)).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


def _relations(conn: psycopg.Connection[tuple[object, ...]], prefixes: tuple[str, ...], kind: str) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = %s AND c.relname LIKE ANY(%s) ORDER BY 1",
        (kind, [f"{prefix}%" for prefix in prefixes]),
    ).fetchall()
    return [str(row[0]) for row in rows]


def apply_roles(database_url: str, passwords: Mapping[str, str], *, prefix: str = "ppe_") -> list[str]:
    """Create or update each named service's role and reset its grants; returns the roles applied."""
    unknown = set(passwords) - set(SERVICE_TABLES)
    if unknown:
        raise ValueError(f"no tables are known for {sorted(unknown)} (known: {sorted(SERVICE_TABLES)})")
    applied = []
    with _connect(database_url) as conn, conn.transaction():
        database = str(conn.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]  # a query that always returns one row
        for service, password in sorted(passwords.items()):
            if len(password) < 16:
                raise ValueError(f"{PASSWORD_ENV.format(service.upper())} must be at least 16 characters")
            role = sql.Identifier(role_name(service, prefix))
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role_name(service, prefix),)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                    role, sql.Literal(password)
                )
            )
            conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(role))
            conn.execute(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(role))
            conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(role))
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
            tables = _relations(conn, SERVICE_TABLES[service], "r")
            for table in tables:
                conn.execute(
                    sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(sql.Identifier(table), role)
                )
            for sequence in _relations(conn, SERVICE_TABLES[service], "S"):
                grant = sql.SQL("GRANT USAGE, SELECT, UPDATE ON SEQUENCE {} TO {}")
                conn.execute(grant.format(sql.Identifier(sequence), role))
            _grant_access_tables(conn, service, role)
            if conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()[0] is not None:  # type: ignore[index]  # a query that always returns one row
                conn.execute(sql.SQL("GRANT SELECT ON alembic_version TO {}").format(role))
            log.info("database role applied", role=role_name(service, prefix), tables=len(tables))
            applied.append(role_name(service, prefix))
    return applied


def _grant_access_tables(conn: psycopg.Connection[tuple[object, ...]], service: str, role: sql.Identifier) -> None:
    for table, privileges in ACCESS_GRANTS.get(service, {}).items():
        if conn.execute("SELECT to_regclass(%s)", (f"public.{table}",)).fetchone()[0] is not None:  # type: ignore[index]  # a query that always returns one row
            # the privileges are constants of this module, never input
            conn.execute(sql.SQL("GRANT " + privileges + " ON {} TO {}").format(sql.Identifier(table), role))
    for sequence in ACCESS_SEQUENCES.get(service, ()):
        if conn.execute("SELECT to_regclass(%s)", (f"public.{sequence}",)).fetchone()[0] is not None:  # type: ignore[index]  # a query that always returns one row
            conn.execute(sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(sql.Identifier(sequence), role))


def passwords_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """PPE_DB_ROLE_PASSWORD_<SERVICE> of every service that has tables; absent ones are skipped."""
    return {
        service: environ[PASSWORD_ENV.format(service.upper())]
        for service in SERVICE_TABLES
        if environ.get(PASSWORD_ENV.format(service.upper()))
    }
