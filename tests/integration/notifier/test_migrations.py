"""The notifier Alembic branch upgrades and downgrades cleanly on a real PostgreSQL; a downgrade past the
'held' status turns held deliveries into dead ones with the reason (their queue message is gone)."""

import sqlalchemy as sa

from shared.migrate import downgrade, upgrade


def columns(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns("notifier_deliveries")}
    finally:
        engine.dispose()


def test_notifier_branch_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    upgrade(empty_database_url, "notifier@head")
    assert "held_request" in columns(empty_database_url)
    engine = sa.create_engine(empty_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO notifier_deliveries (id, incident_id, channel_id, event, status, held_request) "
                    "VALUES ('d1', 'i1', 1, 'resolved', 'held', '{}')"
                )
            )
        downgrade(empty_database_url, "n0001_notifier_initial")
        assert "held_request" not in columns(empty_database_url)
        with engine.connect() as conn:
            status, error = conn.execute(sa.text("SELECT status, last_error FROM notifier_deliveries")).one()
        assert status == "dead" and "held" in error
        downgrade(empty_database_url, "notifier@base")
        upgrade(empty_database_url, "notifier@head")
        assert "held_request" in columns(empty_database_url)
    finally:
        engine.dispose()


def test_incident_version_column_starts_at_zero_for_stored_incidents(empty_database_url: str) -> None:
    upgrade(empty_database_url, "n0002_notifier_held_deliveries")
    engine = sa.create_engine(empty_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO notifier_incidents (id, camera_id, site_id, zone_id, track_id, status, "
                    "missing_equipment, severity, started_at, last_seen_at, max_confidence, opened_frame_id, "
                    "last_frame_id, alerted) VALUES ('i1', 'c', 's', 'z', 1, 'open', '[]', 'warning', now(), now(), "
                    "90, 'f1', 'f1', true)"
                )
            )
        upgrade(empty_database_url, "n0003_notifier_incident_version")
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT version FROM notifier_incidents WHERE id = 'i1'")) == 0
        downgrade(empty_database_url, "n0002_notifier_held_deliveries")
        inspector = sa.inspect(engine)
        assert "version" not in {c["name"] for c in inspector.get_columns("notifier_incidents")}
    finally:
        engine.dispose()
