"""The detector worker end to end on moto (SQS + S3), with the rekognition engine on a fake endpoint.

Real frames go through the real queue; what is checked is the worker's contract: the merged FrameAnalyzed
reaches both downstream queues, bad frames land in the DLQ with their reason, model errors are retried a
bounded number of times, and a frame seen twice publishes one result.
"""

import asyncio
from typing import Any

import pytest

from services.detector.adapters.results import ResultRecord, ResultStore
from services.detector.config import DetectorSettings
from services.detector.main import run
from shared.config import PlatformSettings
from shared.contracts import FrameAnalyzed
from shared.s3 import FrameStore
from shared.sqs import Publisher, QueueResolver
from tests.integration.detector.conftest import VEST_ARN, ppe_answer, vest_answer
from tests.integration.detector.fake_rekognition import FakeRekognition
from tests.integration.detector.helpers import dead_letters, published, submit_frame
from tests.support.images import photo_jpeg


async def run_until_empty(
    settings: DetectorSettings, sqs: Any, resolver: QueueResolver, *, timeout_s: float = 30
) -> None:
    """Run the worker until frames-received holds nothing, in flight or waiting (redeliveries included)."""
    url = await resolver.url("frames-received")
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        await run(settings, until_idle=True, serve_http=False)
        attributes = (
            await sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )
        )["Attributes"]
        if attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0":
            return
        assert asyncio.get_running_loop().time() < deadline, f"frames-received still holds messages: {attributes}"
        await asyncio.sleep(0.5)


@pytest.fixture
def settings(platform_settings: PlatformSettings, fake_rekognition: FakeRekognition) -> DetectorSettings:
    return DetectorSettings(
        ppe_engine="rekognition",
        rekognition_endpoint_url=fake_rekognition.url,
        rekognition_attempts=1,
        custom_label_models={"vest": {"engine": "rekognition", "project_version_arn": VEST_ARN}},
        custom_label_sites={"*": ["vest"], "site-plain": []},
        model_attempts=2,
        retry_delay_s=0,
        concurrency=4,
    )


@pytest.fixture
def store(s3_client: Any, platform_settings: PlatformSettings, provisioned: dict[str, str]) -> FrameStore:
    return FrameStore(s3_client, platform_settings.frames_bucket)


@pytest.fixture
def publisher(sqs_client: Any, resolver: QueueResolver) -> Publisher:
    return Publisher(sqs_client, resolver, producer="ingest")


async def test_frames_are_analysed_merged_and_fanned_out(
    settings: DetectorSettings,
    fake_rekognition: FakeRekognition,
    store: FrameStore,
    publisher: Publisher,
    sqs_client: Any,
    resolver: QueueResolver,
) -> None:
    fake_rekognition.defaults["DetectProtectiveEquipment"] = ppe_answer()
    fake_rekognition.defaults["DetectCustomLabels"] = vest_answer()
    # GIVEN two frames on a site with the vest model and one on a site without custom labels
    sent = [
        await submit_frame(photo_jpeg(), "f-1", store=store, publisher=publisher),
        await submit_frame(photo_jpeg(), "f-2", store=store, publisher=publisher, camera_id="cam-2"),
        await submit_frame(
            photo_jpeg(), "f-3", store=store, publisher=publisher, site_id="site-plain"
        ),
    ]
    # WHEN the detector drains the queue
    await run(settings, until_idle=True, serve_http=False)

    # THEN each frame's result reaches the notifier (FIFO) and reporting queues once
    to_notifier = await published(sqs_client, resolver, "frames-analyzed-notifier")
    to_reporting = await published(sqs_client, resolver, "frames-analyzed-reporting")
    assert sorted(r.context.frame_id for r in to_notifier) == ["f-1", "f-2", "f-3"]
    assert sorted(r.model_dump_json() for r in to_notifier) == sorted(r.model_dump_json() for r in to_reporting)
    results: dict[str, FrameAnalyzed] = {r.context.frame_id: r for r in to_notifier}
    for received in sent:
        result = results[received.context.frame_id]
        assert (result.context, result.frame, result.summarization) == (
            received.context,
            received.frame,
            received.summarization,
        )
        assert result.ppe.to_aws() == ppe_answer()
        assert result.model_versions["rekognition"] == "1.0"
        assert result.timings_ms["ppe"] > 0
    # the vest sits on person 0's torso; the plain site ran no custom-label model
    assert [(a.engine, a.person_id, a.label.Name) for a in results["f-1"].custom_labels] == [("vest", 0, "hi_vis_vest")]
    assert results["f-3"].custom_labels == [] and "vest" not in results["f-3"].model_versions
    # the engine saw each frame's own bytes
    assert sum(op == "DetectProtectiveEquipment" for op, _ in fake_rekognition.requests) == 3
    assert sum(op == "DetectCustomLabels" for op, _ in fake_rekognition.requests) == 2
    assert await dead_letters(sqs_client, resolver) == {}


async def test_missing_and_undecodable_frames_go_to_the_dlq_with_their_reason(
    settings: DetectorSettings,
    fake_rekognition: FakeRekognition,
    store: FrameStore,
    publisher: Publisher,
    sqs_client: Any,
    resolver: QueueResolver,
) -> None:
    fake_rekognition.defaults["DetectProtectiveEquipment"] = ppe_answer()
    fake_rekognition.defaults["DetectCustomLabels"] = vest_answer()
    good = photo_jpeg()
    await submit_frame(good, "missing", store=store, publisher=publisher, put=False)
    await submit_frame(b"\xff\xd8\xff\xe0 this is not a jpeg", "garbage", store=store, publisher=publisher)
    await submit_frame(good, "good", store=store, publisher=publisher)

    await run(settings, until_idle=True, serve_http=False)

    reasons = await dead_letters(sqs_client, resolver)
    assert sorted(reasons) == ["garbage", "missing"]
    assert reasons["missing"].startswith("frame missing")
    assert "InvalidImageFormatException" in reasons["garbage"]
    assert [r.context.frame_id for r in await published(sqs_client, resolver, "frames-analyzed-reporting")] == ["good"]
    # nothing was sent to the engine for the bad frames
    assert sum(op == "DetectProtectiveEquipment" for op, _ in fake_rekognition.requests) == 1


async def test_model_errors_are_retried_a_bounded_number_of_times(
    settings: DetectorSettings,
    fake_rekognition: FakeRekognition,
    store: FrameStore,
    publisher: Publisher,
    sqs_client: Any,
    resolver: QueueResolver,
) -> None:
    # GIVEN an engine that fails once on the first frame, and always on the second
    fake_rekognition.defaults["DetectCustomLabels"] = vest_answer()
    await submit_frame(photo_jpeg(), "flaky", store=store, publisher=publisher)
    fake_rekognition.script("DetectProtectiveEquipment", ("InternalServerError", 500), ppe_answer())
    await run(settings, until_idle=True, serve_http=False)
    assert [r.context.frame_id for r in await published(sqs_client, resolver, "frames-analyzed-reporting")] == ["flaky"]

    fake_rekognition.defaults["DetectProtectiveEquipment"] = ("InternalServerError", 500)
    await submit_frame(photo_jpeg(), "broken", store=store, publisher=publisher)
    await run_until_empty(settings, sqs_client, resolver)
    reasons = await dead_letters(sqs_client, resolver)
    # THEN the second frame is rejected after model_attempts (2) deliveries, with the model's error
    assert list(reasons) == ["broken"] and "model failed on 2 deliveries" in reasons["broken"]
    # (botocore's standard mode also retries each call on 5xx: 3 calls per delivery at most)
    ppe_calls = [op for op, _ in fake_rekognition.requests if op == "DetectProtectiveEquipment"]
    assert 2 + 2 <= len(ppe_calls) <= 2 + 2 * 3
    assert await published(sqs_client, resolver, "frames-analyzed-reporting") == []


async def test_a_frame_processed_twice_publishes_one_result(
    settings: DetectorSettings,
    fake_rekognition: FakeRekognition,
    store: FrameStore,
    publisher: Publisher,
    sqs_client: Any,
    s3_client: Any,
    resolver: QueueResolver,
) -> None:
    fake_rekognition.defaults["DetectProtectiveEquipment"] = ppe_answer()
    fake_rekognition.defaults["DetectCustomLabels"] = vest_answer()
    data = photo_jpeg()
    # GIVEN a producer that sends the same frame twice at once, and once more later
    await submit_frame(data, "twice", store=store, publisher=publisher)
    await submit_frame(data, "twice", store=store, publisher=publisher)
    await run_until_empty(settings, sqs_client, resolver)
    first = await published(sqs_client, resolver, "frames-analyzed-reporting")
    await submit_frame(data, "twice", store=store, publisher=publisher)
    await run(settings, until_idle=True, serve_http=False)
    # THEN one result was published: the stored one (first deliveries skip the read, so a duplicate may be
    # analysed again, but its result loses the conditional create and is never published)
    assert [r.context.frame_id for r in first] == ["twice"]
    assert await published(sqs_client, resolver, "frames-analyzed-reporting") == []
    stored = await ResultStore(s3_client, settings.frames_bucket, prefix=settings.results_prefix).get("twice")
    assert stored is not None and stored.state == "published"
    assert first[0].model_dump_json() == stored.result.model_dump_json()
    assert await dead_letters(sqs_client, resolver) == {}


async def test_a_crash_between_analysis_and_publish_publishes_the_stored_result(
    settings: DetectorSettings,
    fake_rekognition: FakeRekognition,
    store: FrameStore,
    publisher: Publisher,
    sqs_client: Any,
    s3_client: Any,
    resolver: QueueResolver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_rekognition.defaults["DetectProtectiveEquipment"] = ppe_answer()
    fake_rekognition.defaults["DetectCustomLabels"] = vest_answer()
    # GIVEN a worker that stored its result and died before publishing (publish fails)
    failing = pytest.MonkeyPatch()

    async def publish_fails(self: Publisher, *args: object, **kwargs: object) -> None:
        raise RuntimeError("worker died here")

    await submit_frame(photo_jpeg(), "crash", store=store, publisher=publisher)
    failing.setattr(Publisher, "publish", publish_fails)
    await run(settings, until_idle=True, serve_http=False)
    failing.undo()
    results = ResultStore(s3_client, settings.frames_bucket, prefix=settings.results_prefix)
    stored = await results.get("crash")
    assert isinstance(stored, ResultRecord) and stored.state == "analysed"
    # WHEN the message comes back (after the consumer's backoff) to a healthy worker
    await run_until_empty(settings, sqs_client, resolver)
    out = await published(sqs_client, resolver, "frames-analyzed-reporting")
    # THEN it publishes exactly the stored result without analysing again
    assert [r.model_dump_json() for r in out] == [stored.result.model_dump_json()]
    assert sum(op == "DetectProtectiveEquipment" for op, _ in fake_rekognition.requests) == 1
    assert (await results.get("crash")).state == "published"  # type: ignore[union-attr]
