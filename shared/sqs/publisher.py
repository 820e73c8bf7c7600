"""Publishing: payloads to every queue the topology routes their type to, batched, retried with backoff."""

import asyncio
import random
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.backoff import backoff_delay
from shared.contracts import Envelope, Payload
from shared.logging import get_logger
from shared.sqs.base import PUBLISHED, PublishError, QueueResolver
from shared.topology import TOPOLOGY, Topology

log = get_logger(__name__)


class Publisher:
    """Publishes payloads to every queue the topology routes their type to.

    Batches of up to 10, and entries SQS fails are retried with exponential backoff and jitter (on top of
    botocore's own retries of whole calls). FIFO queues get the message group (per camera) and a
    deduplication id derived from the business id, so a producer that sends twice is deduplicated.
    """

    def __init__(
        self,
        sqs: Any,
        resolver: QueueResolver,
        *,
        producer: str,
        topology: Topology = TOPOLOGY,
        attempts: int = 5,
        linger_s: float = 0.0,
        batches_in_flight: int = 2,
    ) -> None:
        """`linger_s > 0`: `publish` calls from concurrent tasks share SendMessageBatch calls (up to 10 per
        queue). A message waits at most `linger_s` for company while fewer than `batches_in_flight` batches
        are on their way to that queue; otherwise it waits for one of them to return (group commit: no
        added delay at low rates, bigger batches under load). Each caller still returns only once SQS has
        accepted its own message, and gets a `PublishError` for its own message only."""
        self._sqs = sqs
        self._resolver = resolver
        self._producer = producer
        self._topology = topology
        self._attempts = attempts
        self._linger_s = linger_s
        self._waiting: dict[str, list[tuple[Envelope[Any], str | None, asyncio.Future[None]]]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._batches_in_flight = max(1, batches_in_flight)
        self._busy: dict[str, int] = {}

    async def publish(self, payload: Payload, *, correlation_id: str, group_id: str | None = None) -> None:
        if self._linger_s <= 0:
            await self.publish_many([payload], correlation_ids=[correlation_id], group_ids=[group_id])
            return
        envelope = Envelope.wrap(payload, producer=self._producer, correlation_id=correlation_id)
        await asyncio.gather(*(self._enqueue(queue, envelope, group_id) for queue in self._queues(payload)))

    def _queues(self, payload: Payload) -> Sequence[str]:
        queues = self._topology.routes.get(payload.MESSAGE_TYPE, ())
        if not queues:
            raise PublishError(f"no queue is routed for {payload.MESSAGE_TYPE}; add it to shared/topology.py")
        return queues

    def _enqueue(self, queue: str, envelope: Envelope[Any], group_id: str | None) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[None] = loop.create_future()
        waiting = self._waiting.setdefault(queue, [])
        waiting.append((envelope, group_id, accepted))
        if len(waiting) >= 10:
            self._flush(queue)
        elif queue not in self._timers and self._busy.get(queue, 0) < self._batches_in_flight:
            self._timers[queue] = loop.call_later(self._linger_s, self._flush, queue)
        # else: it leaves with the batch that goes when one in flight returns
        return accepted

    def _flush(self, queue: str) -> None:
        timer = self._timers.pop(queue, None)
        if timer is not None:
            timer.cancel()
        batch = self._waiting.pop(queue, [])
        if batch:
            self._busy[queue] = self._busy.get(queue, 0) + 1
            task = asyncio.create_task(self._send_waiting(queue, batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send_waiting(
        self, queue: str, batch: list[tuple[Envelope[Any], str | None, asyncio.Future[None]]]
    ) -> None:
        try:
            url = await self._resolver.url(queue)
            entries = self._entries(queue, [(envelope, group_id) for envelope, group_id, _ in batch])
            failed = await self._send_batch(queue, url, entries, raise_on_failure=False)
        except Exception as exc:  # noqa: BLE001 - every waiter must hear about it, not the event loop
            error = exc if isinstance(exc, PublishError) else PublishError(f"could not publish to {queue}: {exc}")
            failed = {str(i): str(error) for i in range(len(batch))}
        self._busy[queue] -= 1
        if self._waiting.get(queue) and queue not in self._timers:
            self._flush(queue)
        for index, (_, _, accepted) in enumerate(batch):
            if accepted.done():
                continue
            if str(index) in failed:
                reason = failed[str(index)]
                accepted.set_exception(PublishError(f"SQS did not accept the message for {queue}: {reason}"))
            else:
                accepted.set_result(None)

    async def publish_many(
        self,
        payloads: Sequence[Payload],
        *,
        correlation_ids: Sequence[str],
        group_ids: Sequence[str | None] | None = None,
    ) -> None:
        group_ids = group_ids or [None] * len(payloads)
        per_queue: dict[str, list[tuple[Envelope[Any], str | None]]] = {}
        for payload, correlation_id, group_id in zip(payloads, correlation_ids, group_ids, strict=True):
            envelope = Envelope.wrap(payload, producer=self._producer, correlation_id=correlation_id)
            for queue in self._queues(payload):
                per_queue.setdefault(queue, []).append((envelope, group_id))
        await asyncio.gather(*(self._send_all(queue, items) for queue, items in per_queue.items()))

    async def send_raw(
        self, queue: str, body: str, *, group_id: str | None = None, dedup_id: str | None = None
    ) -> None:
        """Send a body as it is (tests use it to inject malformed messages)."""
        entry: dict[str, Any] = {"QueueUrl": await self._resolver.url(queue), "MessageBody": body}
        if self._resolver.is_fifo(queue):
            entry["MessageGroupId"] = group_id or "default"
            entry["MessageDeduplicationId"] = dedup_id or str(random.getrandbits(64))
        await self._sqs.send_message(**entry)

    async def _send_all(self, queue: str, items: list[tuple[Envelope[Any], str | None]]) -> None:
        url = await self._resolver.url(queue)
        for start in range(0, len(items), 10):
            await self._send_batch(queue, url, self._entries(queue, items[start : start + 10]))

    def _entries(self, queue: str, items: list[tuple[Envelope[Any], str | None]]) -> list[dict[str, Any]]:
        fifo = self._resolver.is_fifo(queue)
        entries = []
        for index, (envelope, group_id) in enumerate(items):
            entry: dict[str, Any] = {
                "Id": str(index),
                "MessageBody": envelope.to_json(),
                "MessageAttributes": {
                    "message_type": {"DataType": "String", "StringValue": envelope.message_type},
                    "correlation_id": {"DataType": "String", "StringValue": envelope.correlation_id},
                },
            }
            if fifo:
                entry["MessageGroupId"] = group_id or envelope.correlation_id
                entry["MessageDeduplicationId"] = f"{envelope.message_type}-{envelope.correlation_id}"[:128]
            entries.append(entry)
        return entries

    async def _send_batch(
        self, queue: str, url: str, entries: list[dict[str, Any]], *, raise_on_failure: bool = True
    ) -> dict[str, str]:
        """Sends with retries of failed entries; returns {entry Id: error} of entries never accepted
        (raises PublishError instead when `raise_on_failure`)."""
        pending = entries
        refused: dict[str, str] = {}
        for attempt in range(self._attempts):
            refused_now: dict[str, str] = {}
            try:
                response = await self._sqs.send_message_batch(QueueUrl=url, Entries=pending)
            except (ClientError, BotoCoreError) as exc:
                failed_ids = {entry["Id"] for entry in pending}
                error = str(exc)
            else:
                failed = response.get("Failed", [])
                senders_fault = [f for f in failed if f.get("SenderFault")]
                if senders_fault and raise_on_failure:
                    raise PublishError(f"SQS refused messages for {queue}: {senders_fault}")
                refused_now = {f["Id"]: f"refused: {f.get('Code')} {f.get('Message', '')}" for f in senders_fault}
                failed_ids = {f["Id"] for f in failed if not f.get("SenderFault")}
                error = str(failed)
            refused.update(refused_now)
            PUBLISHED.labels(queue).inc(len(pending) - len(failed_ids) - len(refused_now))
            pending = [entry for entry in pending if entry["Id"] in failed_ids]
            if not pending:
                return refused
            delay = backoff_delay(attempt, first_s=0.1, max_s=5.0)
            log.warning("publish retry", queue=queue, failed=len(pending), attempt=attempt + 1, error=error)
            await asyncio.sleep(delay)
        if raise_on_failure:
            raise PublishError(
                f"could not publish {len(pending)} message(s) to {queue} after {self._attempts} attempts"
            )
        return refused | {entry["Id"]: f"not accepted after {self._attempts} attempts" for entry in pending}
