"""The notifier's retention purge on a real, migrated PostgreSQL: what goes, and what stays whatever its age."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.config import NotifierSettings
from services.notifier.main import purge_schedule

OLD = datetime.now(UTC) - timedelta(days=40)
NEW = datetime.now(UTC) - timedelta(days=1)


async def seed(engine: AsyncEngine) -> None:
    incident = (
        "INSERT INTO notifier_incidents (id, camera_id, site_id, zone_id, track_id, status, missing_equipment, "
        "severity, started_at, last_seen_at, resolved_at, max_confidence, opened_frame_id, last_frame_id, alerted) "
        "VALUES (:id, 'cam', 'site', 'zone', 1, :status, '[]', 'warning', :at, :at, :resolved, 90, 'f', 'f', true)"
    )
    delivery = (
        "INSERT INTO notifier_deliveries (id, incident_id, channel_id, event, status, created_at) "
        "VALUES (:id, :incident, 1, :event, :status, :at)"
    )
    async with engine.begin() as conn:
        for id_, status, at, resolved in (
            ("old-resolved", "resolved", OLD, OLD),  # goes
            ("old-open", "open", OLD, None),  # stays: still open
            ("old-resolved-pending", "resolved", OLD, OLD),  # stays: a delivery of it is still to be sent
            ("new-resolved", "resolved", NEW, NEW),  # stays: recent
        ):
            await conn.execute(sa.text(incident), {"id": id_, "status": status, "at": at, "resolved": resolved})
        for id_, incident_id, event, status, at in (
            ("d-old-sent", "old-resolved", "open", "sent", OLD),  # goes
            ("d-old-dead", "old-resolved", "resolved", "dead", OLD),  # goes
            ("d-old-failed", "old-resolved-pending", "open", "failed", OLD),  # stays: will be retried
            ("d-old-held", "old-open", "open", "held", OLD),  # stays: waits for its opening alert
            ("d-new-sent", "new-resolved", "open", "sent", NEW),  # stays: recent
        ):
            values = {"id": id_, "incident": incident_id, "event": event, "status": status, "at": at}
            await conn.execute(sa.text(delivery), values)
        await conn.execute(
            sa.text(
                "INSERT INTO notifier_applied_frames (camera_id, frame_id, applied_at) "
                "VALUES ('cam', 'f-old', :o), ('cam', 'f-new', :n)"
            ),
            {"o": OLD, "n": NEW},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO notifier_outbox (camera_id, frame_id, message_type, payload, created_at, published_at) "
                "VALUES ('cam', 'f-old', 'IncidentChanged', '{}', :o, :o), "  # goes: published long ago
                "('cam', 'f-unpublished', 'IncidentChanged', '{}', :o, NULL), "  # stays: never published
                "('cam', 'f-new', 'IncidentChanged', '{}', :n, :n)"
            ),
            {"o": OLD, "n": NEW},
        )
        await conn.execute(
            sa.text("INSERT INTO notifier_alert_counts (channel_id, hour, count) VALUES (1, :o, 3), (1, :n, 2)"),
            {"o": OLD, "n": NEW},
        )


async def ids(engine: AsyncEngine, sql: str) -> list[str]:
    async with engine.connect() as conn:
        return sorted(str(row[0]) for row in await conn.execute(sa.text(sql)))


async def test_the_purge_removes_old_finished_rows_and_keeps_what_is_pending_or_recent(
    engine: AsyncEngine, notifier_settings: NotifierSettings
) -> None:
    # GIVEN rows 40 days old and 1 day old in every table the purge covers
    await seed(engine)

    # WHEN the purge runs with the default 30-day retention
    deleted = await purge_schedule(notifier_settings, engine).run_once()

    # THEN only finished rows past the retention are gone
    assert deleted == {
        "notifier_applied_frames": 1,
        "notifier_outbox": 1,
        "notifier_deliveries": 2,
        "notifier_incidents": 1,
        "notifier_alert_counts": 1,
    }
    kept = ["new-resolved", "old-open", "old-resolved-pending"]
    assert await ids(engine, "SELECT id FROM notifier_incidents") == kept
    assert await ids(engine, "SELECT id FROM notifier_deliveries") == ["d-new-sent", "d-old-failed", "d-old-held"]
    assert await ids(engine, "SELECT frame_id FROM notifier_applied_frames") == ["f-new"]
    assert await ids(engine, "SELECT frame_id FROM notifier_outbox") == ["f-new", "f-unpublished"]
    assert len(await ids(engine, "SELECT hour FROM notifier_alert_counts")) == 1

    # AND a second run finds nothing more (idempotent; several workers may run it at once)
    assert sum((await purge_schedule(notifier_settings, engine).run_once()).values()) == 0


def test_a_retention_shorter_than_the_dlq_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("NOTIFIER_ADMIN_TOKEN", "a-real-admin-token-0123456789")
    monkeypatch.setenv("NOTIFIER_SECRETS_KEY", "a-real-secrets-key-0123456789abcdefghij")
    monkeypatch.setenv("NOTIFIER_RETENTION_DAYS", "7")
    with pytest.raises(ValidationError, match="retention_days"):
        NotifierSettings()  # type: ignore[call-arg]
