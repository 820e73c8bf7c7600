"""The scenario operators care about, across two notifier workers on the same queue: a worker takes the hard
hat off for 20 s of frame time and puts it back -> exactly one incident opened and one resolved, one alert;
a relapse within the cooldown is recorded but not alerted; after the cooldown it alerts again."""

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.adapters import db
from services.notifier.config import NotifierSettings
from services.notifier.main import drain_until_idle, worker
from shared.contracts import Envelope, IncidentChanged
from shared.sqs import Publisher, QueueResolver
from tests.integration.notifier.conftest import add_webhook, drain, publish_frames
from tests.integration.notifier.receivers import HttpReceiver
from tests.unit.notifier.builders import T0, hat_scenario


async def two_workers(settings: NotifierSettings, engine: AsyncEngine) -> list[int]:
    """Two complete workers (own clients, shared database) consume the queues concurrently until idle."""

    async def one() -> int:
        async with worker(settings, engine) as w:
            await drain_until_idle(w)
            return w.frames.processed

    return list(await asyncio.gather(one(), one()))


async def incidents(engine: AsyncEngine, camera_id: str) -> list[Any]:
    async with engine.connect() as conn:
        query = sa.select(db.incidents).where(db.incidents.c.camera_id == camera_id).order_by(db.incidents.c.started_at)
        return list((await conn.execute(query)).all())


async def test_twenty_seconds_without_hard_hat_is_one_incident_and_the_cooldown_holds_across_two_workers(
    notifier_settings: NotifierSettings,
    engine: AsyncEngine,
    admin: httpx.AsyncClient,
    webhook: HttpReceiver,
    sqs_client: Any,
    resolver: QueueResolver,
) -> None:
    # GIVEN a site rule with a 60 s camera cooldown, and a webhook channel
    rule = {
        "site_id": "site-1",
        "policy": {"cooldown_camera_s": 60, "cooldown_person_s": 0, "min_violation_s": 2, "resolve_after_s": 2},
    }
    assert (await admin.post("/v1/rules", json=rule)).status_code == 201
    await add_webhook(admin, webhook)

    # ... and 40 s of one camera at 2 frames/s: hat on 10 s, off 20 s, on 10 s; every frame sent twice
    frames = hat_scenario(before_s=10, without_s=20, after_s=10, fps=2)
    await publish_frames(sqs_client, resolver, frames)
    duplicates = Publisher(sqs_client, resolver, producer="detector")
    for frame in frames[::5]:
        body = Envelope.wrap(frame, producer="detector", correlation_id=frame.context.frame_id).to_json()
        await duplicates.send_raw("frames-analyzed-notifier", body, group_id="cam-1", dedup_id=str(uuid.uuid4()))

    # WHEN two workers consume the queue concurrently
    processed = await two_workers(notifier_settings, engine)

    # THEN every message was handled, and there is exactly one incident, opened and resolved
    assert sum(processed) == len(frames) + len(frames[::5])
    [incident] = await incidents(engine, "cam-1")
    assert incident.status == "resolved"
    assert incident.started_at == T0 + timedelta(seconds=10)
    assert incident.resolved_at is not None and incident.resolved_at - incident.started_at < timedelta(seconds=25)
    changes = [
        Envelope[IncidentChanged].model_validate_json(m["Body"]).payload
        for m in await drain(sqs_client, await resolver.url("incidents-reporting"))
    ]
    assert sorted((c.incident_id, c.status) for c in changes) == [(incident.id, "open"), (incident.id, "resolved")]
    received = await webhook.wait_for(2)
    assert [r.json()["event"] for r in received] == ["incident.open", "incident.resolved"]

    # WHEN the worker relapses 10 s later (inside the cooldown), and again 2 minutes later (after it)
    relapse = hat_scenario(start=T0 + timedelta(seconds=50), before_s=1, without_s=6, after_s=4, prefix="r")
    later = hat_scenario(start=T0 + timedelta(seconds=160), before_s=1, without_s=6, after_s=4, prefix="l")
    await publish_frames(sqs_client, resolver, relapse + later)
    await two_workers(notifier_settings, engine)

    # THEN the relapse is recorded as an incident but suppressed by the cooldown; the later one alerts again
    first, second, third = await incidents(engine, "cam-1")
    assert (first.alerted, second.alerted, third.alerted) == (True, False, True)
    assert "camera cooldown" in second.suppressed_reason
    received = await webhook.wait_for(4)
    assert [r.json()["event"] for r in received] == ["incident.open", "incident.resolved"] * 2
    assert received[2].json()["incident"]["incident_id"] == third.id
    async with engine.connect() as conn:
        suppressed = (
            await conn.execute(sa.select(db.deliveries).where(db.deliveries.c.incident_id == second.id))
        ).all()
    assert [(d.event, d.status) for d in suppressed] == [("open", "suppressed")]
