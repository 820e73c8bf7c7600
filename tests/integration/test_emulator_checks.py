"""shared.emulator answers moto's FIFO and retention checks without scanning the queue: same answers as moto."""

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError


async def fifo(sqs: Any, *, content_dedup: bool) -> str:
    name = f"emu-{uuid.uuid4().hex[:8]}.fifo"
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": str(content_dedup).lower()}
    return str((await sqs.create_queue(QueueName=name, Attributes=attributes))["QueueUrl"])


async def test_fifo_without_content_deduplication_still_requires_ids(sqs_client: Any) -> None:
    url = await fifo(sqs_client, content_dedup=False)
    with pytest.raises(ClientError) as missing_dedup:
        await sqs_client.send_message(QueueUrl=url, MessageBody="a", MessageGroupId="g")
    assert missing_dedup.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as missing_group:
        await sqs_client.send_message(QueueUrl=url, MessageBody="a", MessageDeduplicationId="d")
    assert missing_group.value.response["Error"]["Code"] in ("MissingParameter", "MissingRequiredParameterException")


async def test_fifo_with_content_deduplication_dedupes_and_messages_are_received(sqs_client: Any) -> None:
    url = await fifo(sqs_client, content_dedup=True)
    for body in ("same", "same", "other"):
        await sqs_client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    received = (await sqs_client.receive_message(QueueUrl=url, MaxNumberOfMessages=10))["Messages"]
    assert [m["Body"] for m in received] == ["same", "other"]
