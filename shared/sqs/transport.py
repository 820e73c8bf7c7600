"""One consumed queue's SQS calls: its settings, deletes (at once or batched), visibility, dead letters."""

import asyncio
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.logging import get_logger
from shared.sqs.base import MESSAGES, QueueResolver

log = get_logger(__name__)


class QueueTransport:
    """What the consumer does to messages it holds, apart from handling them.

    `delete_linger_s > 0`: handled messages are collected for up to that long and deleted with
    DeleteMessageBatch (up to 10 per call). `await_deletes`: `delete` returns once the delete was sent (a FIFO
    group's next messages become receivable only then); otherwise the slot frees at once. A message whose
    delete is still lingering when the process dies comes back after its visibility timeout: handlers are
    idempotent.
    """

    def __init__(
        self, sqs: Any, resolver: QueueResolver, queue: str, *, delete_linger_s: float, await_deletes: bool
    ) -> None:
        self._sqs = sqs
        self._resolver = resolver
        self.queue = queue
        self._delete_linger_s = delete_linger_s
        self._await_deletes = await_deletes
        self._deletes: list[tuple[str, asyncio.Future[None]]] = []  # receipt handles waiting for a batch delete
        self._delete_flush: asyncio.TimerHandle | None = None
        self._delete_tasks: set[asyncio.Task[None]] = set()
        self.url = ""
        self._dlq_url: str | None = None
        self.visibility_s = 30
        self.fifo = False
        self.rejected = 0

    async def prepare(self) -> None:
        self.url = await self._resolver.url(self.queue)
        attributes = (await self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["All"]))["Attributes"]
        self.visibility_s = int(attributes.get("VisibilityTimeout", 30))
        self.fifo = attributes.get("FifoQueue") == "true"
        if "RedrivePolicy" in attributes:
            dlq_name = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].rsplit(":", 1)[-1]
            self._dlq_url = (await self._sqs.get_queue_url(QueueName=dlq_name))["QueueUrl"]
        else:
            log.warning("queue has no redrive policy: poison messages will cycle", queue=self.queue)

    async def keep_visible(self, in_hand: list[dict[str, Any]]) -> None:
        """Extend the visibility of every message still in `in_hand` (a list the caller shrinks) until cancelled."""
        interval = max(1.0, self.visibility_s / 2)
        while True:
            await asyncio.sleep(interval)
            for message in list(in_hand):
                await self.change_visibility(message, self.visibility_s)

    async def change_visibility(self, message: dict[str, Any], seconds: int) -> None:
        try:
            await self._sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=min(seconds, 43_200)
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not change visibility", error=str(exc))

    async def delete(self, message: dict[str, Any]) -> None:
        if self._delete_linger_s > 0:
            deleted = self._batch_delete(message, self._delete_linger_s)
            if self._await_deletes:
                await deleted
            return
        try:
            await self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        except (ClientError, BotoCoreError) as exc:
            # The work is done; a redelivery will be absorbed by the handler's idempotency.
            log.warning("could not delete processed message", error=str(exc))

    async def delete_all(self, messages: list[dict[str, Any]]) -> None:
        """A handled batch: DeleteMessageBatch calls (shared with other batches deleted within the linger)."""
        if len(messages) == 1:
            await self.delete(messages[0])
            return
        await asyncio.gather(*(self._batch_delete(message, self._delete_linger_s) for message in messages))

    def _batch_delete(self, message: dict[str, Any], linger_s: float) -> asyncio.Future[None]:
        """Queue `message` for a DeleteMessageBatch sent within `linger_s` (at once when 10 are waiting).

        The future resolves when its batch has been sent, whether or not SQS deleted it (a message left
        behind comes back and the handler's idempotency absorbs it)."""
        loop = asyncio.get_running_loop()
        deleted: asyncio.Future[None] = loop.create_future()
        self._deletes.append((message["ReceiptHandle"], deleted))
        if len(self._deletes) >= 10:
            self._start_flush(linger_s)
        elif self._delete_flush is None:
            self._delete_flush = loop.call_later(linger_s, self._start_flush, linger_s)
        return deleted

    def _start_flush(self, linger_s: float) -> None:
        if self._delete_flush is not None:
            self._delete_flush.cancel()
            self._delete_flush = None
        batch, self._deletes = self._deletes[:10], self._deletes[10:]
        if self._deletes:
            self._delete_flush = asyncio.get_running_loop().call_later(linger_s, self._start_flush, linger_s)
        if batch:
            task = asyncio.create_task(self._delete_batch(batch))
            self._delete_tasks.add(task)
            task.add_done_callback(self._delete_tasks.discard)

    async def _delete_batch(self, batch: list[tuple[str, asyncio.Future[None]]]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": handle} for i, (handle, _) in enumerate(batch)]
        try:
            response = await self._sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
            for failed in response.get("Failed", []):
                log.warning("could not delete processed message", code=failed.get("Code"), error=failed.get("Message"))
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not delete processed messages", count=len(entries), error=str(exc))
        finally:
            for _, deleted in batch:
                if not deleted.done():
                    deleted.set_result(None)

    async def flush_deletes(self) -> None:
        """Delete every handled message now (stop, idle): nothing waits on a timer after the consumer returns."""
        while self._deletes:
            self._start_flush(0.0)
        if self._delete_flush is not None:
            self._delete_flush.cancel()
            self._delete_flush = None
        if self._delete_tasks:
            await asyncio.gather(*self._delete_tasks, return_exceptions=True)

    async def dead_letter(self, message: dict[str, Any], reason: str) -> None:
        self.rejected += 1
        MESSAGES.labels(self.queue, "rejected").inc()
        log.error("message rejected to dead-letter queue", reason=reason)
        if self._dlq_url is None:
            log.error("no dead-letter queue configured; leaving the message for redelivery")
            return
        entry: dict[str, Any] = {
            "QueueUrl": self._dlq_url,
            "MessageBody": message["Body"] or "<empty>",
            "MessageAttributes": {
                "reject_reason": {"DataType": "String", "StringValue": reason[:1000] or "rejected"},
                "source_queue": {"DataType": "String", "StringValue": self.queue},
                "source_message_id": {"DataType": "String", "StringValue": message["MessageId"]},
            },
        }
        if self.fifo:
            entry["MessageGroupId"] = message.get("Attributes", {}).get("MessageGroupId") or "rejected"
            entry["MessageDeduplicationId"] = message["MessageId"]
        await self._sqs.send_message(**entry)
        await self.delete(message)
