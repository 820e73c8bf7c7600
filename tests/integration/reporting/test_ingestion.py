"""Ingestion through the real queues (moto) into the real database: idempotency, DLQ, incidents, retention."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reporting.adapters.repository import ReportingRepository
from services.reporting.config import ReportingSettings
from services.reporting.domain import frame_record
from services.reporting.main import run
from services.reporting.retention import RetentionJob
from shared.config import PlatformSettings
from shared.contracts import FrameAnalyzed, parse_envelope
from shared.sqs import Publisher, QueueResolver
from shared.topology import provision_buckets
from tests.integration.reporting.builders import HEAD, frame_analyzed, incident, person
from tests.integration.reporting.conftest import ADMIN, ANALYST, make_app


def settings_for(monkeypatch: pytest.MonkeyPatch, database_url: str, **overrides: str) -> ReportingSettings:
    """Settings read from the environment, as in production (platform_settings set the AWS / queue part)."""
    env = {"DATABASE_URL": database_url, "REPORTING_ANALYST_TOKEN": ANALYST, "REPORTING_ADMIN_TOKEN": ADMIN}
    env |= {"REPORTING_RETENTION_DAYS": "3650"} | {f"REPORTING_{k.upper()}": v for k, v in overrides.items()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return ReportingSettings()  # type: ignore[call-arg]


async def drain_queues(settings: ReportingSettings) -> None:
    await run(settings, until_idle=True, serve_http=False, install_signals=False)


async def table_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            table: int(await conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)
            for table in ("reporting_frames", "reporting_person_events", "reporting_incidents")
        } | {
            "rollup_persons": int(
                await conn.scalar(
                    sa.text(
                        "SELECT coalesce(sum(persons_with + persons_without + persons_indeterminate), 0) "
                        "FROM reporting_rollup_15m WHERE equipment_type = 'ALL'"
                    )
                )
                or 0
            )
        }


async def test_frames_from_the_queue_are_stored_once_even_when_sent_twice(
    monkeypatch: pytest.MonkeyPatch,
    platform_settings: PlatformSettings,
    sqs_client: Any,
    resolver: QueueResolver,
    migrated_database_url: str,
    engine: AsyncEngine,
) -> None:
    captured = datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
    frames = [
        frame_analyzed("q-1", captured_at=captured, persons=[person(0, head=True, face=True), person(1, head=False)]),
        frame_analyzed("q-2", captured_at=captured, persons=[person(0, head=True, face=True)]),
    ]
    publisher = Publisher(sqs_client, resolver, producer="detector")
    # GIVEN the detector publishes both frames, and then q-1 again (a producer retry)
    await publisher.publish_many(frames, correlation_ids=["q-1", "q-2"])
    await publisher.publish(frames[0], correlation_id="q-1")
    await publisher.send_raw("frames-analyzed-reporting", "{broken")

    # WHEN reporting drains its queues
    await drain_queues(settings_for(monkeypatch, migrated_database_url))

    # THEN each frame is stored once, its persons counted once in the rollup, the broken message is in the DLQ
    assert await table_counts(engine) == {
        "reporting_frames": 2,
        "reporting_person_events": 3,
        "reporting_incidents": 0,
        "rollup_persons": 3,
    }
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT frame_id, person_index, outcome, head_cover, head_cover_confidence, face_cover, "
                    "face_cover_confidence, hand_cover FROM reporting_person_events ORDER BY frame_id, person_index"
                )
            )
        ).all()
    # q-1 p1: bare head (head part 97% seen, no detection) and no face part -> without; face indeterminate 0.
    assert [tuple(r) for r in rows] == [
        ("q-1", 0, "with", "with", 93.0, "with", 93.0, None),
        ("q-1", 1, "without", "without", 97.0, "indeterminate", 0.0, None),
        ("q-2", 0, "with", "with", 93.0, "with", 93.0, None),
    ]
    dlq = await sqs_client.receive_message(QueueUrl=await resolver.url("frames-analyzed-reporting-dlq"))
    assert [m["Body"] for m in dlq.get("Messages", [])] == ["{broken"]


async def test_repository_ingest_is_idempotent(repository: ReportingRepository, engine: AsyncEngine) -> None:
    record = frame_record(
        frame_analyzed("dup", captured_at=datetime(2026, 3, 2, tzinfo=UTC), persons=[person(0, head=False)])
    )
    assert await repository.ingest_frame(record) is True
    before = await table_counts(engine)
    assert await repository.ingest_frame(record) is False
    assert await table_counts(engine) == before == {
        "reporting_frames": 1,
        "reporting_person_events": 1,
        "reporting_incidents": 0,
        "rollup_persons": 1,
    }


async def test_incidents_latest_change_wins_and_pages_with_a_cursor(
    monkeypatch: pytest.MonkeyPatch,
    platform_settings: PlatformSettings,
    sqs_client: Any,
    resolver: QueueResolver,
    migrated_database_url: str,
    engine: AsyncEngine,
    repository: ReportingRepository,
) -> None:
    t0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
    changes = [
        incident("inc-1", started_at=t0, severity="warning"),
        incident("inc-2", started_at=t0 + timedelta(minutes=5), severity="critical", site_id="site-b"),
        incident("inc-3", started_at=t0 + timedelta(minutes=10)),
        incident("inc-4", started_at=t0 + timedelta(minutes=15), camera_id="cam-2"),
        incident("inc-5", started_at=t0 + timedelta(minutes=20), severity="info"),
    ]
    publisher = Publisher(sqs_client, resolver, producer="notifier")
    await publisher.publish_many(changes, correlation_ids=[c.frame_id for c in changes])
    await drain_queues(settings_for(monkeypatch, migrated_database_url))
    # inc-1 resolves; then an older "updated" for inc-1 arrives late and must not undo it.
    resolved = incident("inc-1", started_at=t0, status="resolved", resolved_at=t0 + timedelta(minutes=30))
    late = incident("inc-1", started_at=t0, status="updated", last_seen_at=t0 + timedelta(minutes=2))
    # (changed_at is when the notifier emitted the change; the queued ones above were emitted just now.)
    emitted = datetime.now(UTC)
    await repository.record_incident(resolved, changed_at=emitted + timedelta(seconds=60))
    await repository.record_incident(late, changed_at=emitted + timedelta(seconds=30))
    await repository.record_incident(resolved, changed_at=emitted + timedelta(seconds=60))  # redelivery

    app = make_app(repository)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://reporting",
        headers={"Authorization": f"Bearer {ANALYST}"},
    ) as client:
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/v1/incidents", params=params)).json()
            seen += [item["incident_id"] for item in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert (seen, pages) == (["inc-5", "inc-4", "inc-3", "inc-2", "inc-1"], 3)

        async def ids(**params: str) -> list[str]:
            response = await client.get("/api/v1/incidents", params=params)
            assert response.status_code == 200, response.text
            return [item["incident_id"] for item in response.json()["items"]]

        assert await ids(status="resolved") == ["inc-1"]
        assert await ids(severity="critical") == ["inc-2"]
        assert await ids(site_id="site-b") == ["inc-2"]
        assert await ids(camera_id="cam-2") == ["inc-4"]
        assert await ids(start="2026-04-01T08:05:00Z", end="2026-04-01T08:15:00Z") == ["inc-3", "inc-2"]
        first = (await client.get("/api/v1/incidents", params={"status": "resolved"})).json()["items"][0]
        assert first["resolved_at"] == "2026-04-01T08:30:00Z"
        assert (await client.get("/api/v1/incidents", params={"cursor": "not-a-cursor"})).status_code == 422


async def test_retention_purges_old_events_and_sets_the_frames_lifecycle(
    platform_settings: PlatformSettings,
    s3_client: Any,
    provisioned: dict[str, str],
    repository: ReportingRepository,
    engine: AsyncEngine,
) -> None:
    now = datetime.now(UTC)
    for frame_id, age in (("old", timedelta(days=100)), ("recent", timedelta(days=1))):
        payload = frame_analyzed(frame_id, captured_at=now - age, persons=[person(0, head=False)], required=(HEAD,))
        await repository.ingest_frame(frame_record(payload))
    await repository.record_incident(incident("old-inc", started_at=now - timedelta(days=100)), changed_at=now)
    await repository.record_incident(incident("new-inc", started_at=now - timedelta(hours=1)), changed_at=now)
    # Another rule on the bucket (e.g. from operations) must survive reporting's own.
    keep = {"ID": "abort-uploads", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}
    await s3_client.put_bucket_lifecycle_configuration(
        Bucket=platform_settings.frames_bucket, LifecycleConfiguration={"Rules": [keep]}
    )
    job = RetentionJob(
        repository, s3_client, bucket=platform_settings.frames_bucket, retention_days=90, frames_retention_days=7
    )
    result = await job.run_once(now=now)
    assert (result.person_events, result.frames, result.incidents) == (1, 1, 1)
    assert result.rollup_rows == 2  # the old frame's ALL row and its HEAD_COVER row
    assert await table_counts(engine) == {
        "reporting_frames": 1,
        "reporting_person_events": 1,
        "reporting_incidents": 1,
        "rollup_persons": 1,
    }
    lifecycle = await s3_client.get_bucket_lifecycle_configuration(Bucket=platform_settings.frames_bucket)
    assert sorted((r["ID"], r["Expiration"]["Days"]) for r in lifecycle["Rules"]) == [
        ("abort-uploads", 1),
        ("expire-frames", 7),
    ]

    # AND re-provisioning the topology (every `make run` does) leaves reporting's rule alone: one owner
    # (before issue 19 row 8 it put back a 30-day rule over the whole bucket)
    await provision_buckets(
        s3_client, {"frames_bucket": platform_settings.frames_bucket}, region=platform_settings.aws_region
    )
    lifecycle = await s3_client.get_bucket_lifecycle_configuration(Bucket=platform_settings.frames_bucket)
    assert sorted((r["ID"], r["Expiration"]["Days"]) for r in lifecycle["Rules"]) == [
        ("abort-uploads", 1),
        ("expire-frames", 7),
    ]


async def test_duplicate_person_ids_in_one_frame_go_to_the_dlq(
    monkeypatch: pytest.MonkeyPatch,
    platform_settings: PlatformSettings,
    sqs_client: Any,
    resolver: QueueResolver,
    migrated_database_url: str,
    engine: AsyncEngine,
) -> None:
    bad = frame_analyzed(
        "bad-ids", captured_at=datetime(2026, 3, 2, tzinfo=UTC), persons=[person(0, head=True), person(0, head=False)]
    )
    await Publisher(sqs_client, resolver, producer="detector").publish(bad, correlation_id="bad-ids")
    await drain_queues(settings_for(monkeypatch, migrated_database_url))
    assert (await table_counts(engine))["reporting_frames"] == 0
    dlq = await sqs_client.receive_message(
        QueueUrl=await resolver.url("frames-analyzed-reporting-dlq"), MessageAttributeNames=["All"]
    )
    messages = dlq.get("Messages", [])
    assert len(messages) == 1
    assert parse_envelope(messages[0]["Body"], FrameAnalyzed).correlation_id == "bad-ids"
    assert "constraints" in messages[0]["MessageAttributes"]["reject_reason"]["StringValue"]
