"""The shared SQS runtime against a real moto server: batching, DLQ, redelivery, draining."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shared.contracts import Envelope, FrameReceived
from shared.sqs import Consumer, MessageContext, Publisher, PublishError, QueueResolver
from tests.factories import frame_received
from tests.support.queues import drain

QUEUE = "frames-received"


async def test_published_frames_reach_the_handler(sqs_client: Any, resolver: QueueResolver) -> None:
    publisher = Publisher(sqs_client, resolver, producer="test")
    frame_ids = [f"frame-{i}" for i in range(23)]
    await publisher.publish_many([frame_received(f) for f in frame_ids], correlation_ids=frame_ids)
    seen: list[str] = []

    async def handler(envelope: Envelope[FrameReceived], context: MessageContext) -> None:
        assert envelope.correlation_id == envelope.payload.context.frame_id
        seen.append(envelope.payload.context.frame_id)

    consumer = Consumer(sqs_client, resolver, QUEUE, FrameReceived, handler, concurrency=4)
    await consumer.run(until_idle=True)
    assert sorted(seen) == sorted(frame_ids)
    assert await drain(sqs_client, await resolver.url(QUEUE)) == []


async def test_malformed_message_goes_to_dlq_and_good_ones_in_the_batch_are_processed(
    sqs_client: Any, resolver: QueueResolver
) -> None:
    publisher = Publisher(sqs_client, resolver, producer="test")
    # GIVEN a queue holding good frames with a broken body and a wrong-type envelope among them
    await publisher.publish(frame_received("good-1"), correlation_id="good-1")
    await publisher.send_raw(QUEUE, "{not json")
    wrong_type = json.loads(Envelope.wrap(frame_received("x"), producer="t", correlation_id="x").to_json())
    wrong_type["message_type"] = "FrameAnalyzed"
    await publisher.send_raw(QUEUE, json.dumps(wrong_type))
    await publisher.publish(frame_received("good-2"), correlation_id="good-2")
    seen: list[str] = []

    async def handler(envelope: Envelope[FrameReceived], context: MessageContext) -> None:
        seen.append(envelope.payload.context.frame_id)

    # WHEN the consumer runs
    consumer = Consumer(sqs_client, resolver, QUEUE, FrameReceived, handler, batch_size=10)
    await consumer.run(until_idle=True)

    # THEN the good frames are handled, the two bad messages are in the DLQ with a reason, the queue is empty
    assert sorted(seen) == ["good-1", "good-2"]
    dead = await drain(sqs_client, await resolver.url(f"{QUEUE}-dlq"))
    assert sorted(m["Body"] for m in dead) == sorted(["{not json", json.dumps(wrong_type)])
    reasons = [m["MessageAttributes"]["reject_reason"]["StringValue"] for m in dead]
    assert all(reason.startswith("malformed message") for reason in reasons)
    assert await drain(sqs_client, await resolver.url(QUEUE)) == []


async def test_poison_message_reaches_dlq_through_redrive(sqs_client: Any, resolver: QueueResolver) -> None:
    url = await resolver.url(QUEUE)
    dlq_arn = (await sqs_client.get_queue_attributes(QueueUrl=await resolver.url(f"{QUEUE}-dlq"), AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    await sqs_client.set_queue_attributes(
        QueueUrl=url,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})},
    )
    await Publisher(sqs_client, resolver, producer="test").publish(frame_received("poison"), correlation_id="poison")
    attempts: list[int] = []

    async def handler(envelope: Envelope[FrameReceived], context: MessageContext) -> None:
        attempts.append(context.receive_count)
        raise RuntimeError("model crashed on this frame")

    consumer = Consumer(sqs_client, resolver, QUEUE, FrameReceived, handler)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        await consumer.run(until_idle=True)
        dead = await drain(sqs_client, await resolver.url(f"{QUEUE}-dlq"))
        if dead:
            break
        await asyncio.sleep(1)
    assert attempts == [1, 2]
    assert len(dead) == 1 and json.loads(dead[0]["Body"])["correlation_id"] == "poison"


async def test_slow_handler_keeps_its_message_invisible(sqs_client: Any, resolver: QueueResolver) -> None:
    url = await resolver.url(QUEUE)
    await sqs_client.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "2"})
    await Publisher(sqs_client, resolver, producer="test").publish(frame_received("slow"), correlation_id="slow")
    calls: list[str] = []

    async def handler(envelope: Envelope[FrameReceived], context: MessageContext) -> None:
        calls.append(envelope.correlation_id)
        await asyncio.sleep(5)  # longer than the visibility timeout: the heartbeat must extend it

    first = Consumer(sqs_client, resolver, QUEUE, FrameReceived, handler, handler_timeout_s=10)
    second = Consumer(sqs_client, resolver, QUEUE, FrameReceived, handler, handler_timeout_s=10)
    await asyncio.gather(first.run(until_idle=True), second.run(until_idle=True))
    assert calls == ["slow"]
    assert first.processed + second.processed == 1


async def test_stop_drains_in_flight_work(sqs_client: Any, resolver: QueueResolver) -> None:
    await Publisher(sqs_client, resolver, producer="test").publish(frame_received("drain"), correlation_id="drain")
    started = asyncio.Event()
    finished: list[str] = []

    async def handler(envelope: Envelope[FrameReceived], context: MessageContext) -> None:
        started.set()
        await asyncio.sleep(1.0)
        finished.append(envelope.correlation_id)

    consumer = Consumer(sqs_client, resolver, QUEUE, FrameReceived, handler)
    run = asyncio.create_task(consumer.run())
    await asyncio.wait_for(started.wait(), 10)
    consumer.request_stop()  # what SIGTERM does
    await asyncio.wait_for(run, 10)
    assert finished == ["drain"]
    assert await drain(sqs_client, await resolver.url(QUEUE)) == []


WORKER = Path(__file__).with_name("idempotent_worker.py")


async def test_killed_worker_message_is_redelivered_and_processed_once(
    sqs_client: Any, resolver: QueueResolver, migrated_database_url: str, tmp_path: Path
) -> None:
    engine = sa.create_engine(migrated_database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE handled (frame_id text PRIMARY KEY, deliveries int NOT NULL)"))
    url = await resolver.url(QUEUE)
    await sqs_client.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "3"})
    publisher = Publisher(sqs_client, resolver, producer="test")
    await publisher.publish(frame_received("victim"), correlation_id="victim")

    # GIVEN a worker process that records the frame, then hangs before acknowledging it
    marker = tmp_path / "started"
    env = {**os.environ, "DATABASE_URL": migrated_database_url, "MARKER": str(marker), "HANG": "1"}
    worker = subprocess.Popen([sys.executable, str(WORKER)], env=env, cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline, "worker never started the message"
            assert worker.poll() is None, "worker exited early"
            await asyncio.sleep(0.1)
        # WHEN it is killed mid-message
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()

    # AND the producer sends the same frame again (a duplicate from the producer side)
    await publisher.publish(frame_received("victim"), correlation_id="victim")
    # THEN a healthy worker gets the message again once it is visible, and the effect happens once
    env["HANG"] = "0"
    await asyncio.sleep(3.5)
    result = subprocess.run([sys.executable, str(WORKER)], env=env, cwd=Path(__file__).parents[2], timeout=60)
    assert result.returncode == 0
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT frame_id, deliveries FROM handled")).all()
    assert [row.frame_id for row in rows] == ["victim"]
    assert rows[0].deliveries == 3  # killed delivery + redelivery + producer duplicate, all one frame
    assert await drain(sqs_client, url) == []
    engine.dispose()


async def test_batched_receive_and_delete_handle_every_message_once_with_fewer_calls(
    sqs_client: Any, resolver: QueueResolver
) -> None:
    # GIVEN 25 frames waiting, and a consumer that polls for 4 free slots at once and batches its deletes
    url = await resolver.url(QUEUE)
    frame_ids = [f"frame-{i}" for i in range(25)]
    await Publisher(sqs_client, resolver, producer="test").publish_many(
        [frame_received(f) for f in frame_ids], correlation_ids=frame_ids
    )
    calls = {"receive_message": 0, "delete_message": 0, "delete_message_batch": 0}

    class CountingClient:  # the real aiobotocore client, with its calls counted
        def __getattr__(self, name: str) -> Any:
            if name in calls:
                calls[name] += 1
            return getattr(sqs_client, name)

    seen: list[str] = []

    async def handler(envelope: Envelope[FrameReceived], context: MessageContext) -> None:
        await asyncio.sleep(0.01)
        seen.append(envelope.payload.context.frame_id)

    # WHEN it runs until the queue is idle
    consumer = Consumer(
        CountingClient(),
        resolver,
        QUEUE,
        FrameReceived,
        handler,
        concurrency=8,
        receive_when_free=4,
        delete_linger_s=0.2,
    )
    await consumer.run(until_idle=True)

    # THEN every frame was handled once and deleted (nothing left in flight or invisible) ...
    assert sorted(seen) == sorted(frame_ids)
    attributes = (
        await sqs_client.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    # ... with batch deletes only, and fewer receives than messages
    assert calls["delete_message"] == 0
    assert 3 <= calls["delete_message_batch"] < len(frame_ids)
    assert calls["receive_message"] < len(frame_ids)


async def test_lingering_publisher_shares_batches_and_answers_each_caller(
    sqs_client: Any, resolver: QueueResolver
) -> None:
    # GIVEN a publisher that lets concurrent publishes share a SendMessageBatch
    batches: list[int] = []

    class CountingClient:  # the real aiobotocore client, with its batch sizes recorded
        def __getattr__(self, name: str) -> Any:
            if name == "send_message_batch":

                async def send_message_batch(**kwargs: Any) -> Any:
                    batches.append(len(kwargs["Entries"]))
                    return await sqs_client.send_message_batch(**kwargs)

                return send_message_batch
            return getattr(sqs_client, name)

    publisher = Publisher(CountingClient(), resolver, producer="test", linger_s=0.05)
    frame_ids = [f"frame-{i}" for i in range(25)]

    # WHEN 25 callers publish at once
    await asyncio.gather(*(publisher.publish(frame_received(f), correlation_id=f) for f in frame_ids))

    # THEN every message is on the queue once, and they went out in full batches of 10, not one call each
    bodies = await drain(sqs_client, await resolver.url(QUEUE))
    assert sorted(json.loads(m["Body"])["correlation_id"] for m in bodies) == sorted(frame_ids)
    assert sorted(batches) == [5, 10, 10]

    # AND a caller whose batch cannot be sent gets PublishError (it must answer 503, not hang or succeed)
    broken = Publisher(sqs_client, QueueResolver(sqs_client, prefix="missing-"), producer="test", linger_s=0.01)
    with pytest.raises(PublishError):
        await asyncio.wait_for(broken.publish(frame_received("lost"), correlation_id="lost"), timeout=30)
