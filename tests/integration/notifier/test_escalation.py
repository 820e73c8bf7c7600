"""Escalation against real PostgreSQL, the emulator and real webhook receivers on 127.0.0.1.

A rule alerts the "ops" webhook when an incident opens and escalates to the "escalation" webhook when nobody
acknowledges it within 1.2 s (after_min 0.02). The camera's worker takes the hard hat off and the frames stop,
so the incident stays open.
"""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.adapters import db
from services.notifier.config import NotifierSettings
from services.notifier.escalation import escalate_due
from services.notifier.main import run
from shared.db import make_engine
from shared.sqs import Publisher, QueueResolver
from tests.conftest import REPO_ROOT, free_port
from tests.integration.notifier.conftest import ADMIN_TOKEN, WEBHOOK_SECRET, add_webhook, publish_frames
from tests.integration.notifier.receivers import HttpReceiver
from tests.unit.notifier.builders import hat_scenario

ESCALATE_AFTER_S = 1.2


@pytest.fixture
async def escalation_hook() -> AsyncIterator[HttpReceiver]:
    receiver = await HttpReceiver(secret=WEBHOOK_SECRET).start()
    yield receiver
    await receiver.stop()


async def open_incident(
    admin: httpx.AsyncClient, ops: HttpReceiver, escalation: HttpReceiver, sqs: Any, resolver: QueueResolver,
    settings: NotifierSettings, engine: AsyncEngine,
) -> str:
    """The rule, the channels, and one alerted incident left open; returns its id."""
    ops_id = await add_webhook(admin, ops, name="ops")
    escalation_id = await add_webhook(admin, escalation, name="site-manager")
    policy = {"channel_ids": [ops_id], "min_violation_s": 1, "cooldown_camera_s": 0, "cooldown_person_s": 0,
              "escalation": [{"after_min": ESCALATE_AFTER_S / 60, "channel_ids": [escalation_id]}]}
    response = await admin.post("/v1/rules", json={"site_id": "site-1", "policy": policy})
    assert response.status_code == 201, response.text
    await publish_frames(sqs, resolver, hat_scenario(before_s=2, without_s=6, after_s=0))
    await run(settings, until_idle=True, engine=engine)
    assert [r.json()["event"] for r in await ops.wait_for(1)] == ["incident.open"]
    async with engine.connect() as conn:
        [(incident_id, escalate_at)] = (
            await conn.execute(sa.select(db.incidents.c.id, db.incidents.c.escalate_at))
        ).all()
    assert escalate_at is not None
    return str(incident_id)


async def log_of(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(db.deliveries.c.event, db.deliveries.c.status)
                                  .order_by(db.deliveries.c.created_at))
        return [(r.event, r.status) for r in rows]


async def test_acknowledged_in_time_does_not_escalate(
    notifier_settings: NotifierSettings, engine: AsyncEngine, admin: httpx.AsyncClient, webhook: HttpReceiver,
    escalation_hook: HttpReceiver, sqs_client: Any, resolver: QueueResolver,
) -> None:
    incident_id = await open_incident(admin, webhook, escalation_hook, sqs_client, resolver, notifier_settings, engine)
    # WHEN an operator acknowledges it before the step is due, and the sweep runs after it would have been
    assert (await admin.post(f"/v1/incidents/{incident_id}/acknowledge")).status_code == 200
    await asyncio.sleep(ESCALATE_AFTER_S + 0.5)
    publisher = Publisher(sqs_client, resolver, producer="notifier")
    assert await escalate_due(engine, publisher) == 0
    await run(notifier_settings, until_idle=True, engine=engine)
    # THEN nothing escalated
    assert escalation_hook.received == []
    assert await log_of(engine) == [("open", "sent")]


async def test_left_alone_escalates_once_even_with_two_workers_racing(
    notifier_settings: NotifierSettings, engine: AsyncEngine, admin: httpx.AsyncClient, webhook: HttpReceiver,
    escalation_hook: HttpReceiver, sqs_client: Any, resolver: QueueResolver,
) -> None:
    incident_id = await open_incident(admin, webhook, escalation_hook, sqs_client, resolver, notifier_settings, engine)
    await asyncio.sleep(ESCALATE_AFTER_S + 0.3)
    # WHEN two workers (own engines, own connections) sweep at the same moment, three times each
    other = make_engine(notifier_settings.database_url, pool_size=2)
    publisher = Publisher(sqs_client, resolver, producer="notifier")
    try:
        fired = [
            n for _ in range(3)
            for n in await asyncio.gather(escalate_due(engine, publisher), escalate_due(other, publisher))
        ]
    finally:
        await other.dispose()
    await run(notifier_settings, until_idle=True, engine=engine)
    # THEN exactly one step fired, and the second channel got exactly one signed escalation
    assert sum(fired) == 1
    received = await escalation_hook.wait_for(1)
    await asyncio.sleep(1.0)
    assert len(escalation_hook.received) == 1 and received[0].signature_ok
    body = received[0].json()
    assert body["event"] == "incident.escalated" and body["escalation_step"] == 1
    assert body["incident"]["incident_id"] == incident_id
    assert len(webhook.received) == 1  # ops got the opening alert only
    assert await log_of(engine) == [("open", "sent"), ("escalation1", "sent")]
    # ... the history says so, and an acknowledgement afterwards changes nothing more
    history = (await admin.get(f"/v1/incidents/{incident_id}")).json()["history"]
    assert [(h["action"], h["details"]["step"]) for h in history] == [("escalate", 1)]
    assert await escalate_due(engine, publisher) == 0


def start_notifier(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "services.notifier.main"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


async def test_a_restart_in_between_still_escalates(
    notifier_settings: NotifierSettings, engine: AsyncEngine, admin: httpx.AsyncClient, webhook: HttpReceiver,
    escalation_hook: HttpReceiver, sqs_client: Any, resolver: QueueResolver, provisioned: dict[str, str],
) -> None:
    # GIVEN the incident opened by a worker that has stopped since
    await open_incident(admin, webhook, escalation_hook, sqs_client, resolver, notifier_settings, engine)
    # WHEN a fresh notifier process starts (its own memory: only PostgreSQL knows the incident)
    env = {**os.environ, "DATABASE_URL": str(notifier_settings.database_url), "NOTIFIER_ADMIN_TOKEN": ADMIN_TOKEN,
           "NOTIFIER_PORT": str(free_port()), "NOTIFIER_HOST": "127.0.0.1", "NOTIFIER_SWEEP_INTERVAL_S": "0.5",
           "NOTIFIER_WEBHOOK_SECRET": WEBHOOK_SECRET, "PPE_LOG_FORMAT": "json"}
    process = start_notifier(env)
    try:
        received = await escalation_hook.wait_for(1, timeout_s=60)
        await asyncio.sleep(1.5)  # a few more sweeps: still one
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read().decode() if process.stdout else ""
    # THEN it fires the step that came due, once
    assert len(received) == 1, output[-3000:]
    assert received[0].json()["event"] == "incident.escalated"
    assert await log_of(engine) == [("open", "sent"), ("escalation1", "sent")]
