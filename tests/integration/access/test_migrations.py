"""The access Alembic branch upgrades and downgrades cleanly on a real PostgreSQL."""

import sqlalchemy as sa

from shared.migrate import downgrade, upgrade

TABLES = {"access_users", "access_site_roles", "access_sessions", "access_api_tokens", "access_audit"}


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_access_branch_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    upgrade(empty_database_url, "access@head")
    assert TABLES <= tables(empty_database_url)
    downgrade(empty_database_url, "access@base")
    assert not TABLES & tables(empty_database_url)
    upgrade(empty_database_url, "access@head")
    assert TABLES <= tables(empty_database_url)
