"""The FrameAnalyzed consumer: one camera's received frames are applied as one batch.

`shared.sqs.Consumer` runs a handler per message: per frame a receive share, a database transaction and a
DeleteMessage. At 50 frames/s that is 150+ queue requests a second, and on the local emulator (moto, whose
receive cost grows with the backlog) the queue itself became the bottleneck. This consumer keeps the shared
consumer's contract (FIFO order per group, malformed bodies to the DLQ, a failure holds back the rest of its
group, SIGTERM drains) and changes how the work is cut:

- the frames a receive returns for one camera (message group) go to `FrameHandler.handle_batch` in order,
  one transaction for all of them; then one DeleteMessageBatch;
- if a batch fails, its frames are retried one by one through the shared path (`Consumer._process`), so a
  poison frame is isolated, retried and dead-lettered on its own while the frames before it are kept;
- deletes of groups finishing at about the same time share a DeleteMessageBatch (`delete_linger_s`);
- while groups are in flight it short-polls (a FIFO long poll on moto freezes the busy groups) only when a
  group finished or `poll_interval_s` passed, instead of spinning.
"""

import asyncio
import time
from typing import Any

from pydantic import ValidationError

from services.notifier.handlers import FrameHandler
from shared.contracts import Envelope, FrameAnalyzed, parse_envelope
from shared.logging import bind_context, get_logger
from shared.sqs import HANDLER_SECONDS, MESSAGES, QUEUE_LAG, Consumer, QueueResolver

log = get_logger(__name__)


class FrameBatchConsumer(Consumer[FrameAnalyzed]):
    def __init__(
        self,
        sqs: Any,
        resolver: QueueResolver,
        queue: str,
        handler: FrameHandler,
        *,
        concurrency: int = 8,
        wait_time_s: int = 20,
        poll_interval_s: float = 0.05,
        delete_linger_s: float = 0.01,
    ) -> None:
        # the shared consumer's delete batching stays off for messages handled one by one (fallback, dead
        # letters); a batch's messages go through the same mechanism below (`_batch_delete`), and are awaited
        super().__init__(
            sqs, resolver, queue, FrameAnalyzed, handler, concurrency=concurrency, wait_time_s=wait_time_s
        )
        self._frames = handler
        self._poll_interval_s = poll_interval_s
        self._group_delete_linger_s = delete_linger_s
        self.batches = 0

    async def run(self, *, until_idle: bool = False) -> None:
        await self._prepare()
        log.info("consumer started", queue=self.queue, concurrency=self._concurrency, fifo=self._fifo, batched=True)
        wait_time = 1 if until_idle else self._wait_time_s
        while not self._stop.is_set():
            if not await self._wait_for_dependencies():
                break
            if len(self._in_flight) >= self._concurrency:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            busy = bool(self._in_flight)
            # Up to 10 messages whatever the free capacity: several frames of one camera are one task.
            messages = await self._receive(self._batch_size, 0 if busy else wait_time)
            self.last_poll_at = time.time()
            if not messages:
                if until_idle and not self._in_flight:
                    break
                if self._in_flight:
                    # Nothing free to take: wait until a group finishes (its next frames become receivable)
                    # or a short interval passes (a camera with nothing in flight may have new frames).
                    await asyncio.wait(
                        set(self._in_flight), timeout=self._poll_interval_s, return_when=asyncio.FIRST_COMPLETED
                    )
                continue
            for group in self._groups(messages):
                task = asyncio.create_task(self._process_batch(group))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if len(messages) < self._batch_size and self._in_flight:
                # A short answer took everything receivable: polling again before a group finishes (or new
                # frames arrive for an idle camera) would come back empty.
                await asyncio.wait(
                    set(self._in_flight), timeout=self._poll_interval_s, return_when=asyncio.FIRST_COMPLETED
                )
        if self._in_flight:
            log.info("draining in-flight messages", queue=self.queue, count=len(self._in_flight))
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._flush_deletes()  # dead letters / one-by-one deletes, if the shared batching is ever on
        log.info("consumer stopped", queue=self.queue, processed=self.processed, failed=self.failed)

    async def _process_batch(self, messages: list[dict[str, Any]]) -> None:
        """One camera's frames, in receive order: one transaction, one DeleteMessageBatch."""
        parsed: list[tuple[dict[str, Any], Envelope[FrameAnalyzed]]] = []
        for message in messages:
            try:
                parsed.append((message, parse_envelope(message["Body"], FrameAnalyzed)))
            except (ValidationError, ValueError) as exc:
                with bind_context(message_id=message["MessageId"], queue=self.queue):
                    await self._dead_letter(message, f"malformed message: {exc}".replace("\n", " ")[:1000])
        if not parsed:
            return
        if len({envelope.payload.context.camera_id for _, envelope in parsed}) > 1:
            await self._one_by_one([m for m, _ in parsed])  # a group id that is not the camera: no batching
            return
        now = time.time()
        for message, _ in parsed:
            sent = message.get("Attributes", {}).get("SentTimestamp")
            if sent is not None:
                QUEUE_LAG.labels(self.queue).observe(max(0.0, now - int(sent) / 1000))
        started = time.perf_counter()
        heartbeat = asyncio.create_task(self._extend_all([m for m, _ in parsed]))
        try:
            await asyncio.wait_for(
                self._frames.handle_batch([envelope.payload for _, envelope in parsed]),
                timeout=self._handler_timeout_s,
            )
        except Exception as exc:  # noqa: BLE001 - retried one by one below, where failures are accounted
            log.warning(
                "frame batch failed; retrying its frames one by one", error=repr(exc), frames=len(parsed)
            )
            heartbeat.cancel()
            await self._one_by_one([m for m, _ in parsed])
            return
        finally:
            heartbeat.cancel()
        elapsed = time.perf_counter() - started
        for _ in parsed:
            HANDLER_SECONDS.labels(self.queue).observe(elapsed / len(parsed))
        await self._delete_groups([m for m, _ in parsed])
        self.processed += len(parsed)
        self.batches += 1
        MESSAGES.labels(self.queue, "ok").inc(len(parsed))

    async def _one_by_one(self, messages: list[dict[str, Any]]) -> None:
        for index, message in enumerate(messages):
            if not await self._process(message):
                for held in messages[index + 1 :]:  # FIFO: later frames must not overtake the failed one
                    await self._change_visibility(held, 0)
                return

    async def _extend_all(self, messages: list[dict[str, Any]]) -> None:
        interval = max(1.0, self._visibility_s / 2)
        while True:
            await asyncio.sleep(interval)
            for message in messages:
                await self._change_visibility(message, self._visibility_s)

    async def _delete_groups(self, messages: list[dict[str, Any]]) -> None:
        """Delete after a short linger, together with other groups' messages (one request per 10 messages)."""
        await asyncio.gather(*(self._batch_delete(message, self._group_delete_linger_s) for message in messages))
