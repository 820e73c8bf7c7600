"""The consumer's batch processor against the real emulator: partial batch failure, malformed messages to the
DLQ, FIFO groups handed over in order (and held back behind a failure)."""

import uuid
from datetime import timedelta
from typing import Any

from shared.contracts import Envelope, FrameAnalyzed, FrameReceived
from shared.sqs import Consumer, Publisher, QueueResolver, Reject, RetryLater
from tests.factories import frame_received
from tests.support.queues import drain
from tests.unit.notifier.builders import T0, frame_analyzed

STANDARD = "frames-received"
FIFO = "frames-analyzed-notifier"


def frame_ids(envelopes: list[Envelope[Any]]) -> list[str]:
    return [envelope.payload.context.frame_id for envelope in envelopes]


async def test_a_failed_batch_is_retried_message_by_message_and_only_the_poison_one_fails(
    sqs_client: Any, resolver: QueueResolver
) -> None:
    # GIVEN six frames, one of them poison (its handler rejects it), in one queue
    publisher = Publisher(sqs_client, resolver, producer="test")
    ids = ["good-1", "good-2", "poison", "good-3", "good-4", "good-5"]
    await publisher.publish_many([frame_received(i) for i in ids], correlation_ids=ids)
    committed: list[str] = []
    calls: list[int] = []

    async def handle(envelopes: list[Envelope[FrameReceived]]) -> None:
        # all or nothing, as a database transaction would be
        calls.append(len(envelopes))
        if "poison" in frame_ids(envelopes):
            raise Reject("poison frame")
        committed.extend(frame_ids(envelopes))

    # WHEN a batch consumer takes them
    consumer = Consumer(sqs_client, resolver, STANDARD, FrameReceived, batch_handler=handle)
    await consumer.run(until_idle=True)

    # THEN the good frames are committed once each, the poison one is dead-lettered with the reason
    assert sorted(committed) == sorted(i for i in ids if i != "poison")
    assert (consumer.processed, consumer.rejected) == (5, 1)
    assert max(calls) > 1  # they were received together, so the batch really failed and was split
    dead = await drain(sqs_client, await resolver.url(f"{STANDARD}-dlq"))
    assert len(dead) == 1 and "poison" in dead[0]["Body"]
    assert dead[0]["MessageAttributes"]["reject_reason"]["StringValue"] == "poison frame"
    assert await drain(sqs_client, await resolver.url(STANDARD)) == []


async def test_malformed_messages_go_to_the_dlq_and_never_reach_the_batch_handler(
    sqs_client: Any, resolver: QueueResolver
) -> None:
    publisher = Publisher(sqs_client, resolver, producer="test")
    await publisher.publish(frame_received("good-1"), correlation_id="good-1")
    await publisher.send_raw(STANDARD, "{not json")
    await publisher.send_raw(STANDARD, '{"payload": "nonsense"}')
    await publisher.publish(frame_received("good-2"), correlation_id="good-2")
    seen: list[str] = []

    async def handle(envelopes: list[Envelope[FrameReceived]]) -> None:
        seen.extend(frame_ids(envelopes))

    consumer = Consumer(sqs_client, resolver, STANDARD, FrameReceived, batch_handler=handle)
    await consumer.run(until_idle=True)

    assert sorted(seen) == ["good-1", "good-2"]
    assert (consumer.processed, consumer.rejected) == (2, 2)
    dead = await drain(sqs_client, await resolver.url(f"{STANDARD}-dlq"))
    reasons = sorted(m["MessageAttributes"]["reject_reason"]["StringValue"][:18] for m in dead)
    assert reasons == ["malformed message:"] * 2
    assert await drain(sqs_client, await resolver.url(STANDARD)) == []


async def test_fifo_groups_are_handed_over_in_order_and_a_failure_holds_back_the_rest_of_its_group(
    sqs_client: Any, resolver: QueueResolver
) -> None:
    # GIVEN eight frames for each of three cameras on the FIFO queue (one message group per camera)
    publisher = Publisher(sqs_client, resolver, producer="test")
    cameras = ["cam-a", "cam-b", "cam-c"]
    for index in range(8):
        for camera in cameras:
            frame = frame_analyzed(f"{camera}-{index}", persons=[], camera_id=camera, at=T0 + timedelta(seconds=index))
            envelope = Envelope.wrap(frame, producer="test", correlation_id=frame.context.frame_id)
            await publisher.send_raw(FIFO, envelope.to_json(), group_id=camera, dedup_id=str(uuid.uuid4()))
    committed: dict[str, list[int]] = {camera: [] for camera in cameras}
    failed_once: set[str] = set()

    async def handle(envelopes: list[Envelope[FrameAnalyzed]]) -> None:
        batch_cameras = {envelope.payload.context.camera_id for envelope in envelopes}
        assert len(batch_cameras) == 1, "a batch holds one message group"
        ids = frame_ids(envelopes)
        # cam-b's fourth frame fails the first time it is handled alone: the rest of cam-b must wait for it
        if "cam-b-3" in ids and "cam-b-3" not in failed_once:
            if len(ids) == 1:
                failed_once.add("cam-b-3")
            raise RetryLater("not yet", delay_s=0)
        for frame_id in ids:
            camera, index = frame_id.rsplit("-", 1)
            committed[camera].append(int(index))

    # WHEN a batch consumer takes them
    consumer = Consumer(sqs_client, resolver, FIFO, FrameAnalyzed, batch_handler=handle, wait_time_s=1)
    await consumer.run(until_idle=True)

    # THEN every camera's frames were committed once each, in the order sent, several per batch
    assert committed == {camera: list(range(8)) for camera in cameras}
    assert failed_once == {"cam-b-3"}
    assert consumer.processed == 24 and consumer.batches < 24
    assert await drain(sqs_client, await resolver.url(FIFO)) == []
