"""The ingest Alembic branch upgrades and downgrades cleanly on a real PostgreSQL."""

import sqlalchemy as sa

from shared.migrate import downgrade, upgrade


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {name for name in sa.inspect(engine).get_table_names() if name.startswith("ingest_")}
    finally:
        engine.dispose()


def test_ingest_branch_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    upgrade(empty_database_url, "ingest@head")
    assert tables(empty_database_url) == {"ingest_cameras", "ingest_frames", "ingest_rate_buckets"}
    downgrade(empty_database_url, "ingest@base")
    assert tables(empty_database_url) == set()
    upgrade(empty_database_url, "ingest@head")
    assert tables(empty_database_url) == {"ingest_cameras", "ingest_frames", "ingest_rate_buckets"}
