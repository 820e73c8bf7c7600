"""The rules / channels API on a real database, rule matching, idempotency, and the process lifecycle."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.adapters import db
from services.notifier.adapters.rules import RuleRepository
from services.notifier.config import NotifierSettings
from services.notifier.handlers import publish_outbox
from services.notifier.main import run
from shared.config import PlatformSettings
from shared.contracts import Envelope, IncidentChanged
from shared.rekognition import EquipmentType
from shared.sqs import Publisher, QueueResolver
from tests.conftest import REPO_ROOT, free_port, wait_http
from tests.integration.notifier.conftest import ADMIN_TOKEN, SECRETS_KEY, add_webhook, drain, publish_frames
from tests.integration.notifier.receivers import HttpReceiver
from tests.unit.notifier.builders import hat_scenario


async def test_the_api_refuses_requests_without_the_admin_token(admin: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong-token-0123456789"}):
        response = await admin.get("/v1/rules", headers=headers)
        assert response.status_code == 401
    assert (await admin.get("/healthz", headers={"Authorization": ""})).status_code == 200


@pytest.mark.parametrize("token", ["", "changeme", "short"])
def test_placeholder_admin_tokens_are_refused_at_start(token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_ADMIN_TOKEN", token)
    with pytest.raises(ValidationError, match="NOTIFIER_ADMIN_TOKEN"):
        NotifierSettings()  # type: ignore[call-arg]


async def test_rules_crud_and_the_most_specific_rule_wins(admin: httpx.AsyncClient, engine: AsyncEngine) -> None:
    site = await admin.post("/v1/rules", json={"site_id": "s", "policy": {"min_confidence": 70}})
    zone = await admin.post("/v1/rules", json={"site_id": "s", "zone_id": "z", "policy": {"min_confidence": 80}})
    camera = await admin.post(
        "/v1/rules", json={"site_id": "s", "zone_id": "z", "camera_id": "c", "policy": {"min_confidence": 90}}
    )
    assert [r.status_code for r in (site, zone, camera)] == [201, 201, 201]
    duplicate = await admin.post("/v1/rules", json={"site_id": "s", "policy": {}})
    assert duplicate.status_code == 409

    async def confidence(zone_id: str, camera_id: str) -> float | None:
        async with engine.connect() as conn:
            _, policy = await RuleRepository(conn).matching_policy(site_id="s", zone_id=zone_id, camera_id=camera_id)
        return policy.min_confidence if policy else None

    assert await confidence("z", "c") == 90
    assert await confidence("z", "other") == 80
    assert await confidence("y", "other") == 70
    async with engine.connect() as conn:
        elsewhere = await RuleRepository(conn).matching_policy(site_id="elsewhere", zone_id="z", camera_id="c")
    assert elsewhere == (None, None)

    rule_id = camera.json()["id"]
    changed = await admin.put(
        f"/v1/rules/{rule_id}",
        json={"site_id": "s", "zone_id": "z", "camera_id": "c", "policy": {"min_confidence": 95}},
    )
    assert changed.status_code == 200 and changed.json()["policy"]["min_confidence"] == 95
    assert (await admin.delete(f"/v1/rules/{rule_id}")).status_code == 204
    assert await confidence("z", "c") == 80
    assert (await admin.get(f"/v1/rules/{rule_id}")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"site_id": "s", "policy": {"min_frames": 5, "window_frames": 2}},
        {"site_id": "s", "policy": {"timezone": "Nowhere/Land"}},
        {"site_id": "", "policy": {}},
        {"site_id": "s", "policy": {}, "extra": True},
        {"site_id": "s\u0000", "policy": {}},  # PostgreSQL text cannot hold NUL (found by the schema fuzzer)
        {"site_id": "s", "policy": {"channel_ids": [2**40]}},  # ids are 32-bit
        {"site_id": "s", "policy": {"required_equipment": ["goggles"]}},
    ],
)
async def test_bad_rules_get_422_and_change_nothing(body: dict[str, Any], admin: httpx.AsyncClient) -> None:
    refused = await admin.post("/v1/rules", json=body)
    # every 422 has FastAPI's documented shape: detail = [{loc, msg, type}, ...]
    assert refused.status_code == 422 and all({"loc", "msg", "type"} <= set(e) for e in refused.json()["detail"])
    assert (await admin.get("/v1/rules")).json() == []


@pytest.mark.parametrize(
    "path", ["/v1/rules/2147483648", "/v1/rules/0", "/v1/channels/99999999999999", "/v1/incidents?camera_id=%00"]
)
async def test_ids_out_of_range_and_nul_filters_get_422_not_a_server_error(path: str, admin: httpx.AsyncClient) -> None:
    method = admin.delete if "channels" in path else admin.get
    assert (await method(path)).status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"name": "w", "kind": "webhook", "target": "http://x/hook"},  # no signing secret
        {"name": "w", "kind": "webhook", "target": "ftp://x/hook", "secret": "s" * 20},
        {"name": "w", "kind": "pager", "target": "x"},
        {"name": "w\u0000", "kind": "sns", "target": "arn:aws:sns:us-east-1:123456789012:t"},
    ],
)
async def test_bad_channels_are_refused(body: dict[str, Any], admin: httpx.AsyncClient) -> None:
    assert (await admin.post("/v1/channels", json=body)).status_code == 422
    assert (await admin.get("/v1/channels")).json() == []


async def test_channel_listing_never_shows_the_secret(admin: httpx.AsyncClient) -> None:
    created = await admin.post(
        "/v1/channels", json={"name": "w", "kind": "webhook", "target": "http://127.0.0.1:9/h", "secret": "s" * 20}
    )
    assert created.status_code == 201
    assert "s" * 20 not in (await admin.get("/v1/channels")).text
    assert created.json()["has_secret"] is True


async def test_a_redelivered_frame_changes_nothing(
    notifier_settings: NotifierSettings,
    engine: AsyncEngine,
    admin: httpx.AsyncClient,
    webhook: HttpReceiver,
    sqs_client: Any,
    resolver: QueueResolver,
) -> None:
    await add_webhook(admin, webhook)
    frames = hat_scenario(before_s=1, without_s=4, after_s=0)
    await publish_frames(sqs_client, resolver, frames)
    await run(notifier_settings, until_idle=True, engine=engine)
    async with engine.connect() as conn:
        before = (await conn.execute(sa.select(db.camera_state.c.state))).scalar_one()

    # The same frames again, as a producer that sends twice would (new SQS dedup ids, same frame ids)
    publisher = Publisher(sqs_client, resolver, producer="detector")
    for frame in frames:
        body = Envelope.wrap(frame, producer="detector", correlation_id=frame.context.frame_id).to_json()
        await publisher.send_raw("frames-analyzed-notifier", body, group_id="cam-1", dedup_id=str(uuid.uuid4()))
    await run(notifier_settings, until_idle=True, engine=engine)

    async with engine.connect() as conn:
        after = (await conn.execute(sa.select(db.camera_state.c.state))).scalar_one()
        count = (await conn.execute(sa.select(sa.func.count()).select_from(db.incidents))).scalar_one()
    assert after == before and count == 1
    assert len(webhook.received) == 1


async def test_a_malformed_frame_message_goes_to_the_dlq(
    notifier_settings: NotifierSettings, engine: AsyncEngine, sqs_client: Any, resolver: QueueResolver
) -> None:
    publisher = Publisher(sqs_client, resolver, producer="detector")
    await publisher.send_raw("frames-analyzed-notifier", '{"payload": "nonsense"}', group_id="cam-1")
    await run(notifier_settings, until_idle=True, engine=engine)
    dlq = await resolver.url("frames-analyzed-notifier-dlq")
    [dead] = (await sqs_client.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"]))["Messages"]
    assert dead["MessageAttributes"]["reject_reason"]["StringValue"].startswith("malformed message")


def start_service(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.notifier.main"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def test_the_service_starts_from_env_serves_health_and_drains_on_sigterm(
    notifier_settings: NotifierSettings, platform_settings: PlatformSettings, provisioned: dict[str, str]
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": str(notifier_settings.database_url),
        "NOTIFIER_ADMIN_TOKEN": ADMIN_TOKEN,
        "NOTIFIER_SECRETS_KEY": SECRETS_KEY,
        "NOTIFIER_PORT": str(port),
        "NOTIFIER_HOST": "127.0.0.1",
        "PPE_LOG_FORMAT": "json",
    }
    process = start_service(env)
    try:
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/healthz", timeout_s=30)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(50):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.2)
            assert (await client.get("/readyz")).status_code == 200
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200 and "python_info" in metrics.text
            assert (await client.get("/v1/rules", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).json() == []
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 30)
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read().decode() if process.stdout else ""
    assert code == 0, output
    assert "notifier stopped" in output


async def test_the_sweep_publishes_what_a_crashed_worker_left_in_the_outbox(
    engine: AsyncEngine, sqs_client: Any, resolver: QueueResolver
) -> None:
    # GIVEN an incident change committed to the outbox a minute ago but never published (worker died after commit)
    now = datetime.now(UTC)
    change = IncidentChanged(
        incident_id="inc-left-behind",
        status="open",
        camera_id="cam-1",
        site_id="site-1",
        zone_id="zone-1",
        missing_equipment=[EquipmentType.HEAD_COVER],
        severity="warning",
        started_at=now - timedelta(seconds=65),
        last_seen_at=now - timedelta(seconds=60),
        frame_id="f-9",
        max_confidence=97.5,
    )
    async with engine.begin() as conn:
        await conn.execute(
            db.outbox.insert().values(
                camera_id="cam-1",
                frame_id="f-9",
                message_type="IncidentChanged",
                payload=change.model_dump(mode="json"),
                created_at=now - timedelta(seconds=60),
            )
        )
    publisher = Publisher(sqs_client, resolver, producer="notifier")

    # WHEN the sweep runs twice
    first, second = (
        await publish_outbox(engine, publisher, older_than_s=30),
        await publish_outbox(engine, publisher, older_than_s=30),
    )

    # THEN the change is published once, intact
    assert (first, second) == (1, 0)
    [message] = await drain(sqs_client, await resolver.url("incidents-reporting"))
    assert Envelope[IncidentChanged].model_validate_json(message["Body"]).payload == change
