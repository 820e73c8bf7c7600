"""A dependency outage holds intake instead of burning receive counts: nothing is dead-lettered, all resumes.

Against the real emulator: the queue's redrive policy allows only 2 receives, so a consumer that let SQS
redeliver during the outage would dead-letter the frames."""

import json
import time
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from shared.breaker import dependency_of
from shared.contracts import Envelope, FrameReceived
from shared.sqs import Consumer, MessageContext, Publisher, QueueResolver
from tests.factories import frame_received
from tests.support.queues import drain

QUEUE = "frames-received"


async def _allow_receives(sqs: Any, resolver: QueueResolver, count: int) -> None:
    dlq = await resolver.url(f"{QUEUE}-dlq")
    arn = (await sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"]))["Attributes"]["QueueArn"]
    await sqs.set_queue_attributes(
        QueueUrl=await resolver.url(QUEUE),
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(count)})},
    )


def _database_down() -> OperationalError:
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError as cause:
        return OperationalError("SELECT 1", {}, cause)


async def test_outage_holds_messages_in_hand_and_dead_letters_nothing(sqs_client: Any, resolver: QueueResolver) -> None:
    # GIVEN 6 frames on a queue that dead-letters on the 2nd receive, and a database that is down for 6 s
    await _allow_receives(sqs_client, resolver, 2)
    frame_ids = [f"outage-{i}" for i in range(6)]
    await Publisher(sqs_client, resolver, producer="test").publish_many(
        [frame_received(f) for f in frame_ids], correlation_ids=frame_ids
    )
    back_at = time.monotonic() + 6
    stored: dict[str, int] = {}
    calls = 0

    async def handler(envelope: Envelope[FrameReceived], context: MessageContext) -> None:
        nonlocal calls
        calls += 1
        if time.monotonic() < back_at:
            raise _database_down()
        stored[envelope.payload.context.frame_id] = context.receive_count

    consumer = Consumer(sqs_client, resolver, QUEUE, FrameReceived, handler, concurrency=3)
    # WHEN the consumer runs through the outage
    await consumer.run(until_idle=True)

    # THEN every frame is stored, on its first receive (no redelivery), nothing is in the DLQ
    assert sorted(stored) == sorted(frame_ids)
    assert set(stored.values()) == {1}
    assert await drain(sqs_client, await resolver.url(f"{QUEUE}-dlq")) == []
    assert await drain(sqs_client, await resolver.url(QUEUE)) == []
    # one outage, probed with backoff (1, 2, 4 s ...) rather than hammered by every held message
    assert consumer.breaker.outages == 1
    assert not consumer.breaker.is_open
    assert calls < 3 + 6 + 6


async def test_a_bug_is_not_an_outage(sqs_client: Any, resolver: QueueResolver) -> None:
    # GIVEN a handler that fails on its message (not on a dependency), and 2 allowed receives
    await _allow_receives(sqs_client, resolver, 2)
    await Publisher(sqs_client, resolver, producer="test").publish(frame_received("bug"), correlation_id="bug")

    async def handler(envelope: Envelope[FrameReceived], context: MessageContext) -> None:
        raise KeyError("camera")

    consumer = Consumer(sqs_client, resolver, QUEUE, FrameReceived, handler)
    consumer_run = consumer.run(until_idle=True)
    await consumer_run
    # THEN the breaker never opened and the message went the poison way (redelivered, then dead-lettered by SQS)
    assert consumer.breaker.outages == 0
    assert consumer.failed >= 1


@pytest.mark.parametrize(
    ("error", "dependency"),
    [
        (_database_down(), "database"),
        (ConnectionResetError(104, "reset"), "network"),
        (KeyError("x"), None),
        (ValueError("bad frame"), None),
    ],
)
def test_dependency_of_classifies_the_cause(error: BaseException, dependency: str | None) -> None:
    assert dependency_of(error) == dependency


def test_dependency_of_walks_the_cause_chain() -> None:
    try:
        try:
            raise _database_down()
        except OperationalError as inner:
            raise RuntimeError("could not store frame") from inner
    except RuntimeError as outer:
        assert dependency_of(outer) == "database"


async def test_retry_later_caused_by_an_unreachable_endpoint_is_held_too(
    sqs_client: Any, resolver: QueueResolver
) -> None:
    # GIVEN a handler that turns S3 being unreachable into RetryLater (as the detector does), 2 receives allowed
    from botocore.exceptions import EndpointConnectionError

    from shared.sqs import RetryLater

    await _allow_receives(sqs_client, resolver, 2)
    await Publisher(sqs_client, resolver, producer="test").publish(frame_received("s3-down"), correlation_id="s3-down")
    back_at = time.monotonic() + 4
    receive_counts: list[int] = []

    async def handler(envelope: Envelope[FrameReceived], context: MessageContext) -> None:
        if time.monotonic() < back_at:
            try:
                raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
            except EndpointConnectionError as exc:
                raise RetryLater(f"could not read the frame: {exc}", delay_s=1) from exc
        receive_counts.append(context.receive_count)

    consumer = Consumer(sqs_client, resolver, QUEUE, FrameReceived, handler)
    await consumer.run(until_idle=True)
    # THEN it is handled on its first receive once S3 answers, and the outage was recorded as "aws"
    assert receive_counts == [1]
    assert consumer.breaker.outages == 1 and consumer.breaker.dependency == "aws"
