"""Incident changes are ordered by the notifier's per-incident version, not by when a message was published.

Through the real queue (moto), the real reporting process loop and a real PostgreSQL: an outbox re-publish of
an old "open" that arrives after "resolved" was stored must not reopen the incident.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reporting.adapters.repository import ReportingRepository
from shared.contracts import IncidentChanged
from shared.sqs import Publisher, QueueResolver
from tests.integration.reporting.builders import incident
from tests.integration.reporting.test_ingestion import drain_queues, settings_for

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


async def stored(engine: AsyncEngine, incident_id: str) -> tuple[str, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text("SELECT status, version FROM reporting_incidents WHERE incident_id = :id"), {"id": incident_id}
            )
        ).one()
    return str(row.status), int(row.version)


async def test_a_replayed_open_after_resolved_leaves_the_incident_resolved(
    monkeypatch: pytest.MonkeyPatch,
    platform_settings: Any,
    sqs_client: Any,
    resolver: QueueResolver,
    migrated_database_url: str,
    engine: AsyncEngine,
) -> None:
    publisher = Publisher(sqs_client, resolver, producer="notifier")
    settings = settings_for(monkeypatch, migrated_database_url)
    opened = incident("inc-r", started_at=T0, version=1)
    resolved = incident("inc-r", started_at=T0, status="resolved", resolved_at=T0 + timedelta(minutes=3), version=2)

    # GIVEN reporting stored "resolved" (version 2)
    await publisher.publish(resolved, correlation_id=resolved.frame_id)
    await drain_queues(settings)
    assert await stored(engine, "inc-r") == ("resolved", 2)

    # WHEN the notifier's outbox re-publishes the old "open" (version 1): a newer envelope, an older change
    await publisher.publish(opened, correlation_id=opened.frame_id)
    await drain_queues(settings)

    # THEN the incident stays resolved
    assert await stored(engine, "inc-r") == ("resolved", 2)


def change(status: str, version: int) -> IncidentChanged:
    resolved_at = T0 + timedelta(minutes=3) if status == "resolved" else None
    return incident("inc-t", started_at=T0, status=status, resolved_at=resolved_at, version=version)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        # (status, version, seconds after T0 the message was published) ...
        (("resolved", 2, 60), ("open", 1, 90), ("resolved", 2)),  # replay of an older version
        (("open", 1, 60), ("resolved", 2, 30), ("resolved", 2)),  # newer version wins though published earlier
        (("resolved", 2, 60), ("resolved", 2, 90), ("resolved", 2)),  # redelivery: same version, no change
        (("resolved", 0, 60), ("open", 0, 30), ("resolved", 0)),  # legacy (no versions): change time orders
        (("open", 0, 30), ("resolved", 0, 60), ("resolved", 0)),
        (("resolved", 2, 30), ("open", 0, 90), ("resolved", 2)),  # a legacy change never beats a versioned one
        (("open", 0, 90), ("resolved", 1, 30), ("resolved", 1)),  # the first versioned change beats legacy rows
    ],
)
async def test_ordering_rule(
    repository: ReportingRepository,
    engine: AsyncEngine,
    first: tuple[str, int, int],
    second: tuple[str, int, int],
    expected: tuple[str, int],
) -> None:
    for status, version, seconds in (first, second):
        await repository.record_incident(change(status, version), changed_at=T0 + timedelta(seconds=seconds))
    assert await stored(engine, "inc-t") == expected


def test_version_is_never_negative() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        change("open", -1)
