"""SQS runtime shared by every service: one publisher and one generic consumer.

The consumer owns transport; handlers own business. A handler is `async (envelope, context) -> None`:
returning means success (the message is deleted); raising `RetryLater` puts the message back after a delay;
raising `Reject` sends it to the dead-letter queue with the reason; any other exception is a failure that
SQS redelivers with backoff until the queue's redrive policy moves it to the DLQ (poison messages) - unless
it is a dependency outage (`shared.breaker.dependency_of`): then the consumer holds intake and keeps the
message in hand until the dependency answers, so an outage spends no receive count and dead-letters nothing.
Malformed bodies never reach a handler: they go straight to the DLQ with the validation error.
"""

import asyncio
import contextlib
import json
import random
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic

from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from shared.breaker import Breaker, dependency_of
from shared.contracts import Envelope, P, Payload, parse_envelope
from shared.logging import bind_context, get_logger
from shared.topology import TOPOLOGY, Topology

log = get_logger(__name__)

MESSAGES = Counter("ppe_queue_messages_total", "Messages handled by outcome.", ["queue", "outcome"])
HANDLER_SECONDS = Histogram(
    "ppe_queue_handler_seconds",
    "Handler duration per message.",
    ["queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_LAG = Histogram(
    "ppe_queue_lag_seconds",
    "Time from send to the start of handling.",
    ["queue"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
PUBLISHED = Counter("ppe_queue_published_total", "Messages published.", ["queue"])


class RetryLater(Exception):  # noqa: N818 - reads as an instruction to the consumer
    """Transient failure: put the message back and try again after `delay_s`."""

    def __init__(self, reason: str, *, delay_s: int = 5) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


class Reject(Exception):  # noqa: N818
    """Permanent failure for this message: send it to the dead-letter queue with the reason."""


class PublishError(Exception):
    """SQS did not accept a message after all retries."""


@dataclass(frozen=True)
class MessageContext:
    queue: str
    message_id: str
    receive_count: int
    group_id: str | None
    sent_at: float | None


# async (envelope: Envelope[P], context) -> None
Handler = Callable[[Any, MessageContext], Awaitable[None]]


class QueueResolver:
    """Logical queue name -> URL, through get_queue_url, cached."""

    def __init__(self, sqs: Any, *, prefix: str, topology: Topology = TOPOLOGY) -> None:
        self._sqs = sqs
        self._prefix = prefix
        self._topology = topology
        self._urls: dict[str, str] = {}

    def physical_name(self, logical: str) -> str:
        if logical.endswith("-dlq"):
            return self._topology.queue(logical[: -len("-dlq")]).dlq_physical_name(self._prefix)
        return self._topology.queue(logical).physical_name(self._prefix)

    def is_fifo(self, logical: str) -> bool:
        return self._topology.queue(logical.removesuffix("-dlq")).fifo

    async def url(self, logical: str) -> str:
        if logical not in self._urls:
            response = await self._sqs.get_queue_url(QueueName=self.physical_name(logical))
            self._urls[logical] = response["QueueUrl"]
        return self._urls[logical]


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
            delay = min(0.1 * 2**attempt, 5.0) * (0.5 + random.random())
            log.warning("publish retry", queue=queue, failed=len(pending), attempt=attempt + 1, error=error)
            await asyncio.sleep(delay)
        if raise_on_failure:
            raise PublishError(
                f"could not publish {len(pending)} message(s) to {queue} after {self._attempts} attempts"
            )
        return refused | {entry["Id"]: f"not accepted after {self._attempts} attempts" for entry in pending}


class Consumer(Generic[P]):
    """Long-polls a queue and runs a handler on each message with a concurrency cap.

    - Batch receive (up to 10), never more messages in flight than `concurrency`.
    - Each handler call has a timeout below the visibility timeout; while it runs, the message's visibility
      is extended, so slow work is not redelivered to another worker.
    - Only successes are deleted. FIFO queues: messages of one group run in order, one at a time, and a
      failure holds back the rest of its group.
    - `request_stop()` (SIGTERM) stops receiving and drains in-flight work; `run(until_idle=True)` returns
      once the queue is empty and nothing is in flight (tests).
    - Fewer requests per message, for throughput-bound workers (each SQS call costs CPU on both sides):
      `receive_when_free=N` waits until N slots are free before polling again (one receive per N
      messages instead of one per freed slot); `delete_linger_s > 0` collects handled messages for up to
      that long and deletes them with DeleteMessageBatch (up to 10 per call). Both default to the
      latency-first behaviour (poll on every free slot, delete at once). A message whose delete is still
      lingering when the process dies comes back after its visibility timeout: handlers are idempotent.
    """

    def __init__(
        self,
        sqs: Any,
        resolver: QueueResolver,
        queue: str,
        payload_type: type[P],
        handler: Handler,
        *,
        concurrency: int = 8,
        batch_size: int = 10,
        wait_time_s: int = 20,
        handler_timeout_s: float | None = None,
        receive_when_free: int = 1,
        delete_linger_s: float = 0.0,
        breaker: Breaker | None = None,
    ) -> None:
        self._sqs = sqs
        self._resolver = resolver
        self.queue = queue
        self._payload_type = payload_type
        self._handler = handler
        self._concurrency = concurrency
        self._batch_size = min(batch_size, 10)
        self._wait_time_s = wait_time_s
        self._handler_timeout_s = handler_timeout_s
        self._receive_when_free = max(1, min(receive_when_free, concurrency, self._batch_size))
        self._delete_linger_s = delete_linger_s
        self._deletes: list[tuple[str, asyncio.Future[None]]] = []  # receipt handles waiting for a batch delete
        self._delete_flush: asyncio.TimerHandle | None = None
        self._delete_tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self.breaker = breaker or Breaker(queue)
        self._receive_failures = 0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._url = ""
        self._dlq_url: str | None = None
        self._visibility_s = 30
        self._fifo = False
        self.processed = 0
        self.failed = 0
        self.rejected = 0
        self.last_poll_at: float | None = None

    async def _prepare(self) -> None:
        self._url = await self._resolver.url(self.queue)
        attributes = (await self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["All"]))["Attributes"]
        self._visibility_s = int(attributes.get("VisibilityTimeout", 30))
        self._fifo = attributes.get("FifoQueue") == "true"
        if "RedrivePolicy" in attributes:
            dlq_name = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].rsplit(":", 1)[-1]
            self._dlq_url = (await self._sqs.get_queue_url(QueueName=dlq_name))["QueueUrl"]
        else:
            log.warning("queue has no redrive policy: poison messages will cycle", queue=self.queue)
        if self._handler_timeout_s is None:
            self._handler_timeout_s = max(1.0, self._visibility_s * 0.8)
        elif self._handler_timeout_s >= self._visibility_s and self._visibility_s > 0:
            log.info("handler timeout above visibility timeout: visibility will be extended", queue=self.queue)

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self, *, until_idle: bool = False) -> None:
        await self._prepare()
        log.info("consumer started", queue=self.queue, concurrency=self._concurrency, fifo=self._fifo)
        wait_time = 1 if until_idle else self._wait_time_s
        while not self._stop.is_set():
            if not await self._wait_for_dependencies():
                break
            capacity = self._concurrency - len(self._in_flight)
            if capacity <= 0 or (self._in_flight and capacity < self._receive_when_free):
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            # A FIFO long poll started while groups are in flight: moto (the local emulator) freezes the busy
            # groups when the poll starts and spins until it ends, stalling them; poll briefly instead.
            fifo_busy = self._fifo and bool(self._in_flight)
            messages = await self._receive(min(capacity, self._batch_size), 0 if fifo_busy else wait_time)
            self.last_poll_at = time.time()
            if not messages:
                if until_idle and not self._in_flight:
                    break
                if fifo_busy and self._in_flight:
                    await asyncio.wait(set(self._in_flight), timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
                continue
            for group in self._groups(messages):
                task = asyncio.create_task(self._process_group(group))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
        if self._in_flight:
            log.info("draining in-flight messages", queue=self.queue, count=len(self._in_flight))
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._flush_deletes()
        log.info("consumer stopped", queue=self.queue, processed=self.processed, failed=self.failed)

    async def _receive(self, count: int, wait_time: int) -> list[dict[str, Any]]:
        receive = asyncio.ensure_future(
            self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=count,
                WaitTimeSeconds=wait_time,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp", "MessageGroupId"],
                MessageAttributeNames=["All"],
            )
        )
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            done, _ = await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if receive not in done:
            # Stopping during a long poll: SQS may still hand us messages; they stay invisible until their
            # visibility timeout, then come back for another worker. Nothing is lost.
            receive.cancel()
            return []
        try:
            messages: list[dict[str, Any]] = receive.result().get("Messages", [])
        except (ClientError, BotoCoreError) as exc:
            # The queue itself is unreachable: back off (1 s doubling to 15 s) instead of spinning on it.
            self._receive_failures += 1
            delay = min(2 ** (self._receive_failures - 1), 15) * random.uniform(0.8, 1.2)
            log.error("receive failed; retrying", queue=self.queue, error=str(exc), retry_in_s=round(delay, 1))
            await self._sleep_unless_stopped(delay)
            return []
        if self._receive_failures:
            log.info("queue reachable again", queue=self.queue, failures=self._receive_failures)
            self._receive_failures = 0
        return messages

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    def _groups(self, messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        if not self._fifo:
            return [[message] for message in messages]
        groups: dict[str, list[dict[str, Any]]] = {}
        for message in messages:
            groups.setdefault(message.get("Attributes", {}).get("MessageGroupId", ""), []).append(message)
        return list(groups.values())

    async def _process_group(self, messages: list[dict[str, Any]]) -> None:
        for index, message in enumerate(messages):
            if not await self._process(message):
                # FIFO order: later messages of the group must not overtake the failed one.
                for held in messages[index + 1 :]:
                    await self._change_visibility(held, 0)
                return

    async def _process(self, message: dict[str, Any]) -> bool:
        attributes = message.get("Attributes", {})
        context = MessageContext(
            queue=self.queue,
            message_id=message["MessageId"],
            receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
            group_id=attributes.get("MessageGroupId"),
            sent_at=int(attributes["SentTimestamp"]) / 1000 if "SentTimestamp" in attributes else None,
        )
        with bind_context(message_id=context.message_id, queue=self.queue):
            try:
                envelope = parse_envelope(message["Body"], self._payload_type)
            except (ValidationError, ValueError) as exc:
                await self._dead_letter(message, f"malformed message: {exc}".replace("\n", " ")[:1000])
                return True
            with bind_context(correlation_id=envelope.correlation_id):
                return await self._handle(message, envelope, context)

    async def _handle(self, message: dict[str, Any], envelope: Envelope[P], context: MessageContext) -> bool:
        if context.sent_at is not None:
            QUEUE_LAG.labels(self.queue).observe(max(0.0, time.time() - context.sent_at))
        heartbeat = asyncio.create_task(self._extend_visibility(message))
        started = time.perf_counter()
        try:
            await self._run_handler(envelope, context)
        except RetryLater as exc:
            log.info("retry later", reason=str(exc), delay_s=exc.delay_s, receive_count=context.receive_count)
            MESSAGES.labels(self.queue, "retry").inc()
            await self._change_visibility(message, exc.delay_s)
            return False
        except Reject as exc:
            await self._dead_letter(message, str(exc))
            return True
        except Exception as exc:  # noqa: BLE001 - any handler bug must not kill the worker
            self.failed += 1
            MESSAGES.labels(self.queue, "error").inc()
            backoff = min(2**context.receive_count, 300)
            log.exception(
                "handler failed; message will be redelivered",
                error=repr(exc),
                receive_count=context.receive_count,
                retry_in_s=backoff,
            )
            await self._change_visibility(message, backoff)
            return False
        finally:
            heartbeat.cancel()
            HANDLER_SECONDS.labels(self.queue).observe(time.perf_counter() - started)
        await self._delete(message)
        self.processed += 1
        MESSAGES.labels(self.queue, "ok").inc()
        return True

    async def _run_handler(self, envelope: Envelope[P], context: MessageContext) -> None:
        """The handler, held and retried in place while a dependency is down (the message stays in hand)."""
        while True:
            try:
                await asyncio.wait_for(self._handler(envelope, context), timeout=self._handler_timeout_s)
            except Exception as exc:
                # A `RetryLater` raised from a connection error (S3 unreachable, say) is an outage too.
                cause = exc.__cause__ if isinstance(exc, RetryLater | Reject) else exc
                dependency = dependency_of(cause) if cause is not None and not isinstance(exc, Reject) else None
                if dependency is None:
                    if isinstance(exc, RetryLater | Reject):
                        self.breaker.succeeded()  # the handler reached its dependencies and decided
                    raise
                MESSAGES.labels(self.queue, "held").inc()
                self.breaker.trip(dependency, exc)
                if not await self.breaker.turn(self._stop):
                    raise RetryLater(f"stopping while {dependency} is down", delay_s=0) from exc
                continue
            self.breaker.succeeded()
            return

    async def _wait_for_dependencies(self) -> bool:
        """Receive nothing new while the breaker is open; False when stopping."""
        if not self.breaker.is_open:
            return True
        log.info("intake held: waiting for the dependency", queue=self.queue, dependency=self.breaker.dependency)
        return await self.breaker.wait_closed(self._stop)

    async def _extend_visibility(self, message: dict[str, Any]) -> None:
        interval = max(1.0, self._visibility_s / 2)
        while True:
            await asyncio.sleep(interval)
            await self._change_visibility(message, self._visibility_s)

    async def _change_visibility(self, message: dict[str, Any], seconds: int) -> None:
        try:
            await self._sqs.change_message_visibility(
                QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=min(seconds, 43_200)
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not change visibility", error=str(exc))

    async def _delete(self, message: dict[str, Any]) -> None:
        if self._delete_linger_s > 0:
            self._batch_delete(message, self._delete_linger_s)  # not awaited: the slot frees at once
            return
        try:
            await self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        except (ClientError, BotoCoreError) as exc:
            # The work is done; a redelivery will be absorbed by the handler's idempotency.
            log.warning("could not delete processed message", error=str(exc))

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
            response = await self._sqs.delete_message_batch(QueueUrl=self._url, Entries=entries)
            for failed in response.get("Failed", []):
                log.warning("could not delete processed message", code=failed.get("Code"), error=failed.get("Message"))
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not delete processed messages", count=len(entries), error=str(exc))
        finally:
            for _, deleted in batch:
                if not deleted.done():
                    deleted.set_result(None)

    async def _flush_deletes(self) -> None:
        """Delete every handled message now (stop, idle): nothing waits on a timer after `run` returns."""
        while self._deletes:
            self._start_flush(0.0)
        if self._delete_flush is not None:
            self._delete_flush.cancel()
            self._delete_flush = None
        if self._delete_tasks:
            await asyncio.gather(*self._delete_tasks, return_exceptions=True)

    async def _dead_letter(self, message: dict[str, Any], reason: str) -> None:
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
        if self._fifo:
            entry["MessageGroupId"] = message.get("Attributes", {}).get("MessageGroupId") or "rejected"
            entry["MessageDeduplicationId"] = message["MessageId"]
        await self._sqs.send_message(**entry)
        await self._delete(message)


def install_stop_signals(*stoppables: Callable[[], None]) -> None:
    """SIGTERM / SIGINT: stop intake and let in-flight work drain."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: [stop() for stop in stoppables])
