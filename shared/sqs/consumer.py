"""The consumer: long-polls one queue and hands what it receives to the batch processor, within a cap."""

import asyncio
import contextlib
import time
from typing import Any, Generic

from botocore.exceptions import BotoCoreError, ClientError

from shared.backoff import backoff_delay
from shared.breaker import Breaker
from shared.contracts import P
from shared.logging import get_logger
from shared.sqs.base import BatchHandler, Handler, QueueResolver
from shared.sqs.batch import BatchProcessor
from shared.sqs.transport import QueueTransport

log = get_logger(__name__)


class Consumer(Generic[P]):
    """Long-polls a queue and runs a handler on what it receives, with a concurrency cap.

    - `handler`: one message at a time. Batch receive (up to 10), never more messages (FIFO: groups) in
      flight than `concurrency`.
    - `batch_handler`: each receive asks for up to `batch_size` messages whatever the free capacity, and each
      FIFO group of it (a standard queue: the whole receive) is one call; `concurrency` caps the batches in
      flight, and deletes wait for their DeleteMessageBatch, so a group's next messages are receivable when
      its batch is done. See `shared.sqs.batch` for what happens to a batch.
    - Each handler call has a timeout below the visibility timeout; while messages are in hand their
      visibility is extended, so slow work is not redelivered to another worker.
    - Only successes are deleted. FIFO queues: messages of one group run in order, and a failure holds back
      the rest of its group. While groups are in flight a FIFO queue is short-polled (a long poll on moto, the
      local emulator, freezes the busy groups until it ends) when a group finished or `poll_interval_s` passed.
    - `request_stop()` (SIGTERM) stops receiving and drains in-flight work; `run(until_idle=True)` returns
      once the queue is empty and nothing is in flight (tests).
    - A dependency outage opens the `breaker`: nothing new is received until it closes (`shared.breaker`).
    - Fewer requests per message, for throughput-bound workers (each SQS call costs CPU on both sides):
      `receive_when_free=N` waits until N slots are free before polling again (one receive per N
      messages instead of one per freed slot); `delete_linger_s > 0` collects handled messages for up to
      that long and deletes them with DeleteMessageBatch (up to 10 per call). Both default to the
      latency-first behaviour (poll on every free slot, delete at once).
    """

    def __init__(
        self,
        sqs: Any,
        resolver: QueueResolver,
        queue: str,
        payload_type: type[P],
        handler: Handler | None = None,
        *,
        batch_handler: BatchHandler | None = None,
        concurrency: int = 8,
        batch_size: int = 10,
        wait_time_s: int = 20,
        handler_timeout_s: float | None = None,
        receive_when_free: int = 1,
        delete_linger_s: float = 0.0,
        poll_interval_s: float = 0.05,
        breaker: Breaker | None = None,
    ) -> None:
        self._sqs = sqs
        self.queue = queue
        self._batched = batch_handler is not None
        self._concurrency = concurrency
        self._batch_size = min(batch_size, 10)
        self._wait_time_s = wait_time_s
        self._handler_timeout_s = handler_timeout_s
        self._receive_when_free = max(1, min(receive_when_free, concurrency, self._batch_size))
        self._poll_interval_s = poll_interval_s
        self._stop = asyncio.Event()
        self.breaker = breaker or Breaker(queue)
        self._transport = QueueTransport(
            sqs, resolver, queue, delete_linger_s=delete_linger_s, await_deletes=self._batched
        )
        self._processor = BatchProcessor(
            self._transport,
            payload_type,
            handler=handler,
            batch_handler=batch_handler,
            breaker=self.breaker,
            stop=self._stop,
        )
        self._receive_failures = 0
        self._in_flight: set[asyncio.Task[None]] = set()
        self.last_poll_at: float | None = None

    @property
    def processed(self) -> int:
        return self._processor.processed

    @property
    def failed(self) -> int:
        return self._processor.failed

    @property
    def rejected(self) -> int:
        return self._transport.rejected

    @property
    def batches(self) -> int:
        """Successful batch-handler calls (a consumer with a batch handler)."""
        return self._processor.batches

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def request_stop(self) -> None:
        self._stop.set()

    async def _prepare(self) -> None:
        await self._transport.prepare()
        visibility_s = self._transport.visibility_s
        if self._handler_timeout_s is None:
            self._processor.handler_timeout_s = max(1.0, visibility_s * 0.8)
        else:
            self._processor.handler_timeout_s = self._handler_timeout_s
            if self._handler_timeout_s >= visibility_s > 0:
                log.info("handler timeout above visibility timeout: visibility will be extended", queue=self.queue)

    async def run(self, *, until_idle: bool = False) -> None:
        await self._prepare()
        fifo = self._transport.fifo
        log.info(
            "consumer started", queue=self.queue, concurrency=self._concurrency, fifo=fifo, batched=self._batched
        )
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
            fifo_busy = fifo and bool(self._in_flight)
            # A batch handler takes a full receive whatever the free capacity: several messages are one task.
            count = self._batch_size if self._batched else min(capacity, self._batch_size)
            messages = await self._receive(count, 0 if fifo_busy else wait_time)
            self.last_poll_at = time.time()
            if not messages:
                if until_idle and not self._in_flight:
                    break
                if fifo_busy:
                    await self._some_done()
                continue
            for batch in self._batches(messages, fifo):
                task = asyncio.create_task(self._processor.process(batch))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if fifo and len(messages) < count and self._in_flight:
                # A short answer took everything receivable: polling again before a group finishes (or new
                # messages arrive for an idle group) would come back empty.
                await self._some_done()
        if self._in_flight:
            log.info("draining in-flight messages", queue=self.queue, count=len(self._in_flight))
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._transport.flush_deletes()
        log.info("consumer stopped", queue=self.queue, processed=self.processed, failed=self.failed)

    async def _some_done(self) -> None:
        """Until a task in flight finishes or `poll_interval_s` passes."""
        if not self._in_flight:  # all finished during the poll
            return
        await asyncio.wait(set(self._in_flight), timeout=self._poll_interval_s, return_when=asyncio.FIRST_COMPLETED)

    def _batches(self, messages: list[dict[str, Any]], fifo: bool) -> list[list[dict[str, Any]]]:
        if not fifo:
            return [messages] if self._batched else [[message] for message in messages]
        groups: dict[str, list[dict[str, Any]]] = {}
        for message in messages:
            groups.setdefault(message.get("Attributes", {}).get("MessageGroupId", ""), []).append(message)
        return list(groups.values())

    async def _receive(self, count: int, wait_time: int) -> list[dict[str, Any]]:
        receive = asyncio.ensure_future(
            self._sqs.receive_message(
                QueueUrl=self._transport.url,
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
            delay = backoff_delay(self._receive_failures, first_s=1.0, max_s=15.0, spread=0.2)
            self._receive_failures += 1
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

    async def _wait_for_dependencies(self) -> bool:
        """Receive nothing new while the breaker is open; False when stopping."""
        if not self.breaker.is_open:
            return True
        log.info("intake held: waiting for the dependency", queue=self.queue, dependency=self.breaker.dependency)
        return await self.breaker.wait_closed(self._stop)
