"""Measured alert precision per camera and site, from the reviewers' verdicts the notifier sends.

Through the real queue (moto), the real reporting loop and a real PostgreSQL: IncidentChanged messages carrying
verdicts, one re-published out of order (an old version without the verdict must not erase it).
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reporting.adapters.repository import ReportingRepository
from shared.sqs import Publisher, QueueResolver
from tests.integration.reporting.builders import incident
from tests.integration.reporting.conftest import app_client
from tests.integration.reporting.test_ingestion import drain_queues, settings_for

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
RANGE = "start=2026-04-01T00:00:00Z&end=2026-04-02T00:00:00Z"


async def test_precision_is_confirmed_over_reviewed_per_camera_and_site(
    monkeypatch: pytest.MonkeyPatch, platform_settings: Any, sqs_client: Any, resolver: QueueResolver,
    migrated_database_url: str, engine: AsyncEngine,
) -> None:
    publisher = Publisher(sqs_client, resolver, producer="notifier")
    settings = settings_for(monkeypatch, migrated_database_url)
    verdicts = [  # (incident, camera, site, verdict)
        ("i1", "cam-1", "site-a", "confirmed"), ("i2", "cam-1", "site-a", "confirmed"),
        ("i3", "cam-1", "site-a", "false_positive"), ("i4", "cam-1", "site-a", None),
        ("i5", "cam-2", "site-a", "false_positive"), ("i6", "cam-3", "site-b", "confirmed"),
    ]
    changes = []
    for n, (incident_id, camera, site, verdict) in enumerate(verdicts):
        opened = incident(incident_id, started_at=T0 + timedelta(minutes=n), camera_id=camera, site_id=site,
                          version=1)
        changes.append(opened)
        if verdict is not None:
            changes.append(opened.model_copy(update={
                "status": "updated", "version": 2, "review": verdict,
                "review_reason": "shadow" if verdict == "false_positive" else None}))
    changes.append(changes[0])  # "i1" opened, re-published after its verdict: older, ignored
    for change in changes:
        await publisher.publish(change, correlation_id=change.frame_id)
    await drain_queues(settings)

    async with app_client(ReportingRepository(engine)) as client:
        response = await client.get(f"/api/v1/precision?site_id=site-a&{RANGE}")
        everywhere = (await client.get(f"/api/v1/precision?{RANGE}")).json()
        listed = (await client.get(f"/api/v1/incidents?site_id=site-a&{RANGE}")).json()["items"]
    assert response.status_code == 200, response.text
    body = response.json()
    rows = {(r["camera_id"]): (r["incidents"], r["reviewed"], r["confirmed"], r["false_positives"], r["precision"])
            for r in body["cameras"]}
    assert rows == {"cam-1": (4, 3, 2, 1, 0.6667), "cam-2": (1, 1, 0, 1, 0.0)}
    assert [(s["site_id"], s["incidents"], s["reviewed"], s["confirmed"], s["precision"]) for s in body["sites"]] == [
        ("site-a", 5, 4, 2, 0.5)]
    assert [(s["site_id"], s["precision"]) for s in everywhere["sites"]] == [("site-a", 0.5), ("site-b", 1.0)]
    # ... and the incident list shows each verdict
    assert {i["incident_id"]: i["review"] for i in listed} == {
        "i1": "confirmed", "i2": "confirmed", "i3": "false_positive", "i4": None, "i5": "false_positive"}
