"""One database role per service on a real, migrated PostgreSQL: each reads and writes its own tables only."""

import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

from shared.db_roles import SERVICE_TABLES, apply_roles, passwords_from_env, role_name


def connect_as(database_url: str, role: str, password: str) -> psycopg.Connection:  # type: ignore[type-arg]
    url = make_url(database_url).set(drivername="postgresql", username=role, password=password)
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


def denied(conn: psycopg.Connection, statement: str) -> bool:  # type: ignore[type-arg]
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_each_service_role_reaches_its_own_tables_and_nothing_else(migrated_database_url: str) -> None:
    # GIVEN the migrated schema and the three services' roles applied by the migration step
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    passwords = {service: f"{service}-password-0123456789" for service in SERVICE_TABLES}
    assert apply_roles(migrated_database_url, passwords, prefix=prefix) == [
        role_name(s, prefix) for s in sorted(SERVICE_TABLES)
    ]

    with connect_as(migrated_database_url, role_name("ingest", prefix), passwords["ingest"]) as ingest:
        # THEN ingest uses its ledger (read, write, delete: the retention purge) ...
        ingest.execute("SELECT count(*) FROM ingest_frames")
        ingest.execute("DELETE FROM ingest_frames WHERE received_at < now() - interval '30 days'")
        ingest.execute("SELECT version_num FROM alembic_version")
        # ... and cannot read the notifier's channel secrets or reporting's tables, nor change the schema
        assert denied(ingest, "SELECT secret FROM notifier_channels")
        assert denied(ingest, "SELECT count(*) FROM reporting_frames")
        assert denied(ingest, "DROP TABLE ingest_frames")
        assert denied(ingest, "CREATE TABLE public.intruder (id int)")
        assert denied(ingest, "UPDATE alembic_version SET version_num = 'x'")

    with connect_as(migrated_database_url, role_name("notifier", prefix), passwords["notifier"]) as notifier:
        # a sequence-backed insert works (the channel id), and the camera key hashes stay out of reach
        notifier.execute(
            "INSERT INTO notifier_channels (name, kind, target) VALUES ('c', 'webhook', 'https://example.org/h')"
        )
        assert denied(notifier, "SELECT key_hash FROM ingest_cameras")

    with connect_as(migrated_database_url, role_name("reporting", prefix), passwords["reporting"]) as reporting:
        reporting.execute("SELECT count(*) FROM reporting_incidents")
        assert denied(reporting, "SELECT count(*) FROM notifier_incidents")

    # AND a second run (every deploy) is idempotent and changes the password
    passwords["ingest"] = "rotated-ingest-password-0123456789"
    apply_roles(migrated_database_url, {"ingest": passwords["ingest"]}, prefix=prefix)
    with connect_as(migrated_database_url, role_name("ingest", prefix), passwords["ingest"]) as ingest:
        ingest.execute("SELECT count(*) FROM ingest_frames")


def test_passwords_come_from_the_environment_and_bad_input_is_refused(migrated_database_url: str) -> None:
    env = {"PPE_DB_ROLE_PASSWORD_INGEST": "x" * 20, "PPE_DB_ROLE_PASSWORD_NOTIFIER": "", "OTHER": "y"}
    assert passwords_from_env(env) == {"ingest": "x" * 20}
    with pytest.raises(ValueError, match="no tables are known"):
        apply_roles(migrated_database_url, {"detector": "z" * 20})
    with pytest.raises(ValueError, match="at least 16"):
        apply_roles(migrated_database_url, {"ingest": "short"})


def test_every_service_reads_users_and_appends_audit_records_and_only_reporting_manages_users(
    migrated_database_url: str,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    passwords = {service: f"{service}-password-0123456789" for service in SERVICE_TABLES}
    apply_roles(migrated_database_url, passwords, prefix=prefix)
    with connect_as(migrated_database_url, role_name("reporting", prefix), passwords["reporting"]) as reporting:
        reporting.execute("INSERT INTO access_users (username, password_hash) VALUES ('u', 'h') RETURNING id")
        reporting.execute("INSERT INTO access_api_tokens (user_id, name, token_hash) "
                          "SELECT id, 't', repeat('a', 64) FROM access_users")
        reporting.execute("UPDATE access_api_tokens SET revoked_at = now()")
    for service in ("ingest", "notifier", "reporting"):
        with connect_as(migrated_database_url, role_name(service, prefix), passwords[service]) as conn:
            conn.execute("SELECT u.username, r.role FROM access_users u "
                         "LEFT JOIN access_site_roles r ON r.user_id = u.id")
            conn.execute("SELECT count(*) FROM access_sessions")
            conn.execute("UPDATE access_api_tokens SET last_used_at = now()")
            conn.execute("INSERT INTO access_audit (seq, occurred_at, actor, action, details, prev_hash, hash) "
                         f"VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM access_audit), now(), '{service}', 'x', "
                         "'{}', '', '')")
            assert denied(conn, "UPDATE access_audit SET actor = 'someone else'")
            assert denied(conn, "DELETE FROM access_audit")
            if service != "reporting":
                assert denied(conn, "INSERT INTO access_users (username, password_hash) VALUES ('x', 'h')")
                assert denied(conn, "UPDATE access_api_tokens SET revoked_at = NULL")
