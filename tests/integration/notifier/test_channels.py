"""Alerts through every channel, end to end: FrameAnalyzed on the real queue -> notifier worker ->
a real local receiver (signed webhook server, aiosmtpd, Apprise json://, SNS -> SQS on the emulator)."""

import json
from email.message import Message
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.adapters import db
from services.notifier.config import NotifierSettings
from services.notifier.main import run
from shared.aws import aws_client
from shared.config import PlatformSettings
from shared.contracts import Envelope, IncidentChanged
from shared.sqs import QueueResolver
from tests.integration.notifier.conftest import add_channel, add_webhook, bare_head_jpeg, drain, publish_frames
from tests.integration.notifier.receivers import HttpReceiver, SmtpReceiver
from tests.unit.notifier.builders import hat_scenario

KEY = "frames/site-1/cam-1/2026/11/26/still.jpg"


async def deliveries(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(db.deliveries).order_by(db.deliveries.c.created_at))).all())


async def test_incident_reaches_a_signed_webhook_with_a_working_frame_link(
    notifier_settings: NotifierSettings,
    engine: AsyncEngine,
    admin: httpx.AsyncClient,
    webhook: HttpReceiver,
    sqs_client: Any,
    s3_client: Any,
    resolver: QueueResolver,
) -> None:
    # GIVEN a webhook channel and a camera whose worker takes the hard hat off for 6 s
    await add_webhook(admin, webhook)
    photo, _ = bare_head_jpeg()
    await s3_client.put_object(Bucket=notifier_settings.frames_bucket, Key=KEY, Body=photo, ContentType="image/jpeg")
    frames = hat_scenario(before_s=2, without_s=6, after_s=4, bucket=notifier_settings.frames_bucket, key=KEY)
    await publish_frames(sqs_client, resolver, frames)

    # WHEN a notifier worker handles the queue
    await run(notifier_settings, until_idle=True, engine=engine)

    # THEN the webhook got one signed "open" and one signed "resolved" for the same incident
    received = await webhook.wait_for(2)
    assert [r.json()["event"] for r in received] == ["incident.open", "incident.resolved"]
    assert all(r.signature_ok for r in received)
    assert received[0].json()["incident"]["incident_id"] == received[1].json()["incident"]["incident_id"]
    assert received[0].json()["incident"]["missing_equipment"] == ["HEAD_COVER"]
    assert received[0].headers["x-ppe-delivery"] != received[1].headers["x-ppe-delivery"]
    # ... whose frame link is a presigned URL that serves a JPEG of the frame (its blurred copy, not the raw one)
    async with httpx.AsyncClient() as client:
        frame = await client.get(received[0].json()["frame_url"])
    assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8" and frame.content != photo
    # ... the delivery log says both were sent, and reporting got the incident changes
    assert [(d.event, d.status) for d in await deliveries(engine)] == [("open", "sent"), ("resolved", "sent")]
    changes = [
        Envelope[IncidentChanged].model_validate_json(m["Body"]).payload
        for m in await drain(sqs_client, await resolver.url("incidents-reporting"))
    ]
    # ... numbered per incident, so reporting can order them whatever order they arrive in
    assert sorted((c.status, c.version) for c in changes) == [("open", 1), ("resolved", 2)]


async def test_a_429_with_retry_after_is_honoured(
    notifier_settings: NotifierSettings,
    engine: AsyncEngine,
    admin: httpx.AsyncClient,
    webhook: HttpReceiver,
    sqs_client: Any,
    resolver: QueueResolver,
) -> None:
    await add_webhook(admin, webhook)
    webhook.script = [(429, {"Retry-After": "1"})]
    await publish_frames(sqs_client, resolver, hat_scenario(before_s=1, without_s=4, after_s=0))

    await run(notifier_settings, until_idle=True, engine=engine)

    received = await webhook.wait_for(2)
    assert len(received) == 2
    first, retry = received
    assert first.headers["x-ppe-delivery"] == retry.headers["x-ppe-delivery"]
    assert retry.at - first.at >= 0.95
    assert [(d.event, d.status) for d in await deliveries(engine)] == [("open", "sent")]


async def test_a_refused_delivery_goes_to_the_dlq_with_its_reason(
    notifier_settings: NotifierSettings,
    engine: AsyncEngine,
    admin: httpx.AsyncClient,
    webhook: HttpReceiver,
    sqs_client: Any,
    resolver: QueueResolver,
) -> None:
    await add_webhook(admin, webhook)
    webhook.always = 400
    await publish_frames(sqs_client, resolver, hat_scenario(before_s=1, without_s=4, after_s=0))

    await run(notifier_settings, until_idle=True, engine=engine)

    dead = await drain(sqs_client, await resolver.url("notifier-deliveries-dlq"))
    assert len(dead) == 1
    assert "HTTP 400" in dead[0]["MessageAttributes"]["reject_reason"]["StringValue"]
    [delivery] = await deliveries(engine)
    assert delivery.status == "dead" and "HTTP 400" in delivery.last_error
    assert len(webhook.received) == 1  # a 4xx is not retried


def _laplacian_var(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


@pytest.mark.parametrize("legacy_opt_out", [False, True])
async def test_email_arrives_with_a_face_blurred_snapshot_even_where_an_old_rule_opted_out(
    legacy_opt_out: bool,
    platform_settings: PlatformSettings,
    migrated_database_url: str,
    engine: AsyncEngine,
    admin: httpx.AsyncClient,
    sqs_client: Any,
    s3_client: Any,
    resolver: QueueResolver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a photo-like frame with a large bare head (drawn edges and sensor noise to blur), and a local SMTP server
    photo, heads = bare_head_jpeg()
    left, top, width, height = heads[0]
    person_box = (left, top, width, min(height / 0.3, 1.0 - top))  # the head is the top of the person box
    await s3_client.put_object(Bucket=platform_settings.frames_bucket, Key=KEY, Body=photo, ContentType="image/jpeg")
    with SmtpReceiver() as smtp:
        settings = NotifierSettings(smtp_host="127.0.0.1", smtp_port=smtp.port)  # type: ignore[call-arg]
        await add_channel(admin, name="safety-mail", kind="email", target="safety@example.com, lead@example.com")
        if legacy_opt_out:
            # the API refuses the opt-out now; a rule stored before that still loads, and changes nothing
            response = await admin.post("/v1/rules", json={"site_id": "site-1", "policy": {"blur_faces": False}})
            assert response.status_code == 422 and "raw_frames_in_console" in response.text
            async with engine.begin() as conn:
                await conn.execute(db.rules.insert().values(site_id="site-1", policy={"blur_faces": False}))
        frames = hat_scenario(
            before_s=1, without_s=4, after_s=3, bucket=platform_settings.frames_bucket, key=KEY, box=person_box
        )
        await publish_frames(sqs_client, resolver, frames)

        # WHEN the notifier runs until idle (a "resolved" mail handled before its "open" mail is sent is held
        # and released when the open mail has gone; the run waits for it)
        await run(settings, until_idle=True, engine=engine)

    # THEN both recipients get an "open" and a "resolved" mail saying what, where, when, with a snapshot
    log_rows = [(d.event, d.status, d.attempts, d.last_error) for d in await deliveries(engine)]
    assert len(smtp.mailbox.messages) == 2, f"delivery log: {log_rows}"
    recipients, opened = smtp.mailbox.messages[0]
    assert sorted(recipients) == ["lead@example.com", "safety@example.com"]
    assert "head cover" in opened["Subject"] and "cam-1" in opened["Subject"]
    text = _part(opened, "text/plain").get_payload(decode=True).decode()
    for fact in (
        "site site-1 / zone zone-1 / camera cam-1",
        "Started: 2026-11-26T08:30:01",
        "Confidence:",
        "Frame: http",
    ):
        assert fact in text
    snapshot = cv2.imdecode(
        np.frombuffer(_part(opened, "image/jpeg").get_payload(decode=True), np.uint8), cv2.IMREAD_COLOR
    )
    original = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.resize(original, (snapshot.shape[1], snapshot.shape[0]))
    h, w = snapshot.shape[:2]
    y1, y2, x1, x2 = int(top * h), int((top + height) * h), int(left * w), int((left + width) * w)
    ratio = _laplacian_var(snapshot[y1:y2, x1:x2]) / _laplacian_var(original[y1:y2, x1:x2])
    assert ratio < 0.2, f"head region keeps {ratio:.0%} of its detail"


def _part(message: Message, content_type: str) -> Message:
    return next(p for p in message.walk() if p.get_content_type() == content_type)


async def test_apprise_channel_posts_to_a_chat_style_endpoint(
    notifier_settings: NotifierSettings,
    engine: AsyncEngine,
    admin: httpx.AsyncClient,
    sqs_client: Any,
    resolver: QueueResolver,
) -> None:
    chat = await HttpReceiver(secret="unused-secret-0123456789").start()
    try:
        await add_channel(admin, name="chat", kind="apprise", target=f"json://127.0.0.1:{chat.port}/chat")
        await publish_frames(sqs_client, resolver, hat_scenario(before_s=1, without_s=4, after_s=0))
        await run(notifier_settings, until_idle=True, engine=engine)
        [message] = await chat.wait_for(1)
    finally:
        await chat.stop()
    body = message.json()
    assert "PPE violation" in body["title"] and "head cover" in body["title"]
    assert "camera cam-1" in body["message"]


async def test_sns_channel_publishes_to_a_topic(
    notifier_settings: NotifierSettings,
    platform_settings: PlatformSettings,
    engine: AsyncEngine,
    admin: httpx.AsyncClient,
    sqs_client: Any,
    resolver: QueueResolver,
) -> None:
    # GIVEN an SNS topic with an SQS queue subscribed, on the emulator
    async with aws_client("sns", platform_settings) as sns:
        topic = (await sns.create_topic(Name=f"{platform_settings.queue_prefix}alerts"))["TopicArn"]
        inbox = (await sqs_client.create_queue(QueueName=f"{platform_settings.queue_prefix}alerts-inbox"))["QueueUrl"]
        arn = (await sqs_client.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"]))["Attributes"][
            "QueueArn"
        ]
        await sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    await add_channel(admin, name="aws-alerts", kind="sns", target=topic, min_severity="warning")
    await publish_frames(sqs_client, resolver, hat_scenario(before_s=1, without_s=4, after_s=0))

    await run(notifier_settings, until_idle=True, engine=engine)

    [notification] = await drain(sqs_client, inbox)
    document = json.loads(json.loads(notification["Body"])["Message"])
    assert document["event"] == "incident.open"
    assert document["incident"]["camera_id"] == "cam-1"
    assert "frame_url" in document


async def test_webhook_retries_server_errors_with_backoff_and_signs_with_the_default_secret() -> None:
    from services.notifier.adapters.channels import ChannelConfig, WebhookSender
    from services.notifier.adapters.targets import parse_networks
    from services.notifier.messages import Alert

    receiver = await HttpReceiver(secret="default-secret-0123456789").start()
    receiver.script = [(503, {}), (502, {})]
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            sender = WebhookSender(
                client,
                attempts=3,
                backoff_s=0.2,
                default_secret="default-secret-0123456789",
                allowed_networks=parse_networks(["127.0.0.0/8"]),  # the receiver is local
            )
            channel = ChannelConfig(id=1, name="ops", kind="webhook", target=f"{receiver.url}/hook")
            await sender.send(channel, Alert("d-1", "title", "text", {"event": "incident.open"}))
    finally:
        await receiver.stop()
    assert len(receiver.received) == 3
    assert all(r.signature_ok for r in receiver.received)
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # 0.2 s then 0.4 s, each times a jitter factor in [0.5, 1.5)


async def test_an_unreachable_receiver_keeps_the_delivery_queued_for_a_later_retry(
    notifier_settings: NotifierSettings,
    engine: AsyncEngine,
    admin: httpx.AsyncClient,
    webhook: HttpReceiver,
    sqs_client: Any,
    resolver: QueueResolver,
) -> None:
    await add_webhook(admin, webhook)
    webhook.always = 503
    await publish_frames(sqs_client, resolver, hat_scenario(before_s=1, without_s=4, after_s=0))

    await run(notifier_settings, until_idle=True, engine=engine, patience_s=2)

    # Three tries in process (backoff), then the message waits on the queue for its next receive: not lost.
    assert len(webhook.received) == notifier_settings.webhook_attempts
    [delivery] = await deliveries(engine)
    assert delivery.status == "failed" and "HTTP 503" in delivery.last_error
    attributes = await sqs_client.get_queue_attributes(
        QueueUrl=await resolver.url("notifier-deliveries"), AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert await drain(sqs_client, await resolver.url("notifier-deliveries-dlq")) == []


async def test_a_resolution_waits_held_until_its_opening_alert_is_sent(
    notifier_settings: NotifierSettings,
    engine: AsyncEngine,
    admin: httpx.AsyncClient,
    webhook: HttpReceiver,
    sqs_client: Any,
    resolver: QueueResolver,
) -> None:
    # GIVEN a receiver that fails the first three requests (the opening alert's tries in process), so the
    # opening alert goes back to its queue for about 11 s while the resolution is already there
    await add_webhook(admin, webhook)
    webhook.script = [(503, {})] * notifier_settings.webhook_attempts
    await publish_frames(sqs_client, resolver, hat_scenario(before_s=1, without_s=4, after_s=3))

    # WHEN one worker runs until idle
    await run(notifier_settings, until_idle=True, engine=engine)

    # THEN the resolution was not sent before the opening alert, nor requeued until its receive count ran out:
    # it was held, released when the opening alert went out, and sent once; the run returned only after that
    accepted = webhook.received[notifier_settings.webhook_attempts :]
    assert [r.json()["event"] for r in accepted] == ["incident.open", "incident.resolved"]
    rows = {d.event: d for d in await deliveries(engine)}
    assert (rows["open"].status, rows["open"].attempts) == ("sent", 2)
    assert (rows["resolved"].status, rows["resolved"].attempts, rows["resolved"].held_request) == ("sent", 1, None)
    assert await drain(sqs_client, await resolver.url("notifier-deliveries-dlq")) == []
