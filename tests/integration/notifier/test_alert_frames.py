"""No raw faces in alerts (issue 19, row 5): every channel links to one face-blurred copy of the frame, stored
once under alerts/<incident>/<frame>.jpg; the raw frame's key never appears in what leaves the platform.

Real parts: the emulator's S3 / SQS / SNS, a real PostgreSQL, the notifier's own run loop, a local webhook server.
"""

import json
from typing import Any
from urllib.parse import unquote, urlparse

import cv2
import httpx
import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.config import NotifierSettings
from services.notifier.main import run
from services.notifier.policy import RawFrameRefused, RulePolicy, check_raw_frame_view
from shared.aws import aws_client
from shared.config import PlatformSettings
from shared.s3 import FrameStore
from shared.sqs import QueueResolver
from tests.integration.notifier.conftest import add_channel, add_webhook, bare_head_jpeg, drain, publish_frames
from tests.integration.notifier.receivers import HttpReceiver
from tests.unit.notifier.builders import hat_scenario

KEY = "frames/site-1/cam-1/2026/11/26/raw-still.jpg"


def _detail(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


async def test_every_channel_links_the_one_blurred_copy_and_never_the_raw_frame(
    notifier_settings: NotifierSettings,
    platform_settings: PlatformSettings,
    engine: AsyncEngine,
    admin: httpx.AsyncClient,
    webhook: HttpReceiver,
    sqs_client: Any,
    s3_client: Any,
    resolver: QueueResolver,
) -> None:
    bucket = notifier_settings.frames_bucket
    # GIVEN a versioned frames bucket (every write of a key leaves a version to count) holding a photo-like frame
    await s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    photo, heads = bare_head_jpeg()
    left, top, width, height = heads[0]
    person_box = (left, top, width, min(height / 0.3, 1.0 - top))  # the head is the top of the person box
    await s3_client.put_object(Bucket=bucket, Key=KEY, Body=photo, ContentType="image/jpeg")
    # ... a webhook that answers the first try with 429 (the delivery is redelivered) and an SNS topic
    await add_webhook(admin, webhook)
    webhook.script = [(429, {"Retry-After": "1"})]
    async with aws_client("sns", platform_settings) as sns:
        topic = (await sns.create_topic(Name=f"{platform_settings.queue_prefix}alerts"))["TopicArn"]
        inbox = (await sqs_client.create_queue(QueueName=f"{platform_settings.queue_prefix}alerts-inbox"))["QueueUrl"]
        attributes = await sqs_client.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
        await sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=attributes["Attributes"]["QueueArn"])
    await add_channel(admin, name="aws-alerts", kind="sns", target=topic, min_severity="warning")
    frames = hat_scenario(before_s=1, without_s=4, after_s=0, bucket=bucket, key=KEY, box=person_box)
    await publish_frames(sqs_client, resolver, frames)

    # WHEN the notifier runs until idle
    await run(notifier_settings, until_idle=True, engine=engine)

    # THEN the webhook got the refused try and the retry, SNS got one message: three payloads of one "open"
    received = await webhook.wait_for(2)
    [notification] = await drain(sqs_client, inbox)
    sns_body = json.loads(notification["Body"])["Message"]
    bodies = [r.body.decode() for r in received] + [sns_body]
    documents = [json.loads(body) for body in bodies]
    assert [d["event"] for d in documents] == ["incident.open"] * 3
    incident_id, frame_id = documents[0]["incident"]["incident_id"], documents[0]["frame_id"]
    copy_key = f"alerts/{incident_id}/{frame_id}.jpg"
    # ... every link points at the alerts/ copy, and the raw key appears nowhere
    for document in documents:
        assert unquote(urlparse(document["frame_url"]).path).endswith(f"/{bucket}/{copy_key}"), document["frame_url"]
    for body in bodies:
        assert KEY not in body and "raw-still" not in body
    # ... the copy was written once, though three sends (one a redelivery) asked for it
    versions = await s3_client.list_object_versions(Bucket=bucket, Prefix="alerts/")
    assert [(v["Key"], v["IsLatest"]) for v in versions.get("Versions", [])] == [(copy_key, True)]
    # ... and what the link serves has the head blurred beyond recognition
    async with httpx.AsyncClient() as client:
        served = await client.get(documents[-1]["frame_url"])
    assert served.status_code == 200
    copy = cv2.imdecode(np.frombuffer(served.content, np.uint8), cv2.IMREAD_COLOR)
    raw = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
    raw = cv2.resize(raw, (copy.shape[1], copy.shape[0]))
    h, w = copy.shape[:2]
    y1, y2, x1, x2 = int(top * h), int((top + height) * h), int(left * w), int((left + width) * w)
    ratio = _detail(copy[y1:y2, x1:x2]) / _detail(raw[y1:y2, x1:x2])
    assert ratio < 0.2, f"the linked head region keeps {ratio:.0%} of its detail"


async def test_a_frame_gone_from_storage_gives_an_alert_without_a_link(
    notifier_settings: NotifierSettings,
    engine: AsyncEngine,
    admin: httpx.AsyncClient,
    webhook: HttpReceiver,
    sqs_client: Any,
    s3_client: Any,
    resolver: QueueResolver,
) -> None:
    # GIVEN frames whose image retention already removed
    await add_webhook(admin, webhook)
    frames = hat_scenario(before_s=1, without_s=4, after_s=0, bucket=notifier_settings.frames_bucket, key=KEY)
    await publish_frames(sqs_client, resolver, frames)

    await run(notifier_settings, until_idle=True, engine=engine)

    # THEN the alert is still sent, with no link at all (and no fallback to the raw key)
    [received] = await webhook.wait_for(1)
    document = received.json()
    assert document["frame_url"] is None and document["frame_url_expires_at"] is None
    assert KEY not in received.body.decode()
    listed = await s3_client.list_objects_v2(Bucket=notifier_settings.frames_bucket, Prefix="alerts/")
    assert listed.get("KeyCount", 0) == 0


@pytest.mark.parametrize(
    ("opted_in", "view", "authenticated", "refused"),
    [
        (False, "console", True, "not opted in"),
        (True, "console", False, "authenticated"),
        (True, "console", True, None),
        *[(True, kind, True, "never leave") for kind in ("webhook", "sns", "email", "apprise")],
    ],
)
def test_raw_frames_only_in_the_authenticated_console_of_a_site_that_opted_in(
    opted_in: bool, view: str, authenticated: bool, refused: str | None
) -> None:
    policy = RulePolicy(raw_frames_in_console=opted_in)
    if refused is None:
        check_raw_frame_view(policy, view=view, authenticated=authenticated)
    else:
        with pytest.raises(RawFrameRefused, match=refused):
            check_raw_frame_view(policy, view=view, authenticated=authenticated)


def test_raw_frames_in_console_is_off_by_default() -> None:
    with pytest.raises(RawFrameRefused):
        check_raw_frame_view(RulePolicy(), view="console", authenticated=True)


async def test_a_conditional_put_never_overwrites_a_stored_copy(
    platform_settings: PlatformSettings, s3_client: Any, provisioned: dict[str, str]
) -> None:
    # (two workers racing on one alert frame: the second write is refused by S3 and the first copy stays)
    store = FrameStore(s3_client, platform_settings.frames_bucket)
    assert await store.put_new("alerts/i/f.jpg", b"first", content_type="image/jpeg", metadata={}) is True
    assert await store.put_new("alerts/i/f.jpg", b"second", content_type="image/jpeg", metadata={}) is False
    assert (await store.get("alerts/i/f.jpg")).data == b"first"
