"""Reading test queues directly."""

from typing import Any


async def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Receives and deletes every message currently visible on a queue; returns them in receive order."""
    messages: list[dict[str, Any]] = []
    while True:
        response = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        )
        batch = response.get("Messages", [])
        if not batch:
            return messages
        messages += batch
        for message in batch:
            await sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
