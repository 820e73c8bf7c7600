"""What happens to one received batch: parse, hand to the handler, delete successes, settle failures.

The shape of AWS Powertools' batch processor. A batch is what one receive returned for one FIFO message
group (in order), or for a standard queue one message (per-message handler) or the whole receive (batch
handler). Malformed bodies go straight to the dead-letter queue and never reach a handler. A batch handler
gets the rest at once and succeeds or fails as a whole; when it fails (partial batch failure), each message
is tried alone, so a poison message is isolated, retried and dead-lettered on its own while the others are
kept. Alone, a message's outcome follows the handler's exception:

- none: deleted; `RetryLater`: back on the queue after its delay; `Reject`: to the dead-letter queue;
- a dependency outage (`shared.breaker.dependency_of`): held in hand and retried under the breaker, so an
  outage spends no receive count;
- anything else: back on the queue with a growing delay until the redrive policy dead-letters it.

FIFO: a message that fails holds back the rest of its group (they go back at once, in order). Every message
of the batch stays invisible to other workers (visibility heartbeat) until it is settled.
"""

import asyncio
import time
from typing import Any, Generic

from pydantic import ValidationError

from shared.breaker import Breaker, dependency_of
from shared.contracts import Envelope, P, parse_envelope
from shared.logging import bind_context, get_logger
from shared.sqs.base import (
    HANDLER_SECONDS,
    MESSAGES,
    QUEUE_LAG,
    BatchHandler,
    Handler,
    MessageContext,
    Reject,
    RetryLater,
)
from shared.sqs.transport import QueueTransport

log = get_logger(__name__)

Record = tuple[dict[str, Any], Envelope[Any], MessageContext]  # the SQS message, parsed, and its context


class BatchProcessor(Generic[P]):
    def __init__(
        self,
        transport: QueueTransport,
        payload_type: type[P],
        *,
        handler: Handler | None,
        batch_handler: BatchHandler | None,
        breaker: Breaker,
        stop: asyncio.Event,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise TypeError("give a consumer either a handler or a batch_handler")
        self._transport = transport
        self._payload_type = payload_type
        self._handler = handler
        self._batch_handler = batch_handler
        self._breaker = breaker
        self._stop = stop
        self.handler_timeout_s = 30.0
        self.processed = 0
        self.failed = 0
        self.batches = 0  # successful batch-handler calls (a batch handler only)

    @property
    def queue(self) -> str:
        return self._transport.queue

    async def process(self, messages: list[dict[str, Any]]) -> None:
        in_hand = list(messages)
        heartbeat = asyncio.create_task(self._transport.keep_visible(in_hand))
        try:
            records = await self._parse(messages, in_hand)
            if len(records) > 1 and self._batch_handler is not None and await self._handle_batch(records):
                return
            await self._one_by_one(records, in_hand)
        finally:
            heartbeat.cancel()

    async def _parse(self, messages: list[dict[str, Any]], in_hand: list[dict[str, Any]]) -> list[Record]:
        records: list[Record] = []
        now = time.time()
        for message in messages:
            context = MessageContext.of(self.queue, message)
            try:
                envelope = parse_envelope(message["Body"], self._payload_type)
            except (ValidationError, ValueError) as exc:
                with bind_context(message_id=context.message_id, queue=self.queue):
                    await self._transport.dead_letter(message, f"malformed message: {exc}".replace("\n", " ")[:1000])
                in_hand.remove(message)
                continue
            if context.sent_at is not None:
                QUEUE_LAG.labels(self.queue).observe(max(0.0, now - context.sent_at))
            records.append((message, envelope, context))
        return records

    async def _handle_batch(self, records: list[Record]) -> bool:
        """The whole batch in one handler call; False when it failed (its messages are then tried alone)."""
        assert self._batch_handler is not None
        started = time.perf_counter()
        with bind_context(queue=self.queue, messages=len(records)):
            try:
                await asyncio.wait_for(
                    self._batch_handler([envelope for _, envelope, _ in records]), timeout=self.handler_timeout_s
                )
            except Exception as exc:  # noqa: BLE001 - tried alone below, where failures are accounted
                log.warning("batch failed; trying its messages one by one", error=repr(exc), messages=len(records))
                return False
        elapsed = time.perf_counter() - started
        for _ in records:
            HANDLER_SECONDS.labels(self.queue).observe(elapsed / len(records))
        self._breaker.succeeded()
        await self._transport.delete_all([message for message, _, _ in records])
        self.processed += len(records)
        self.batches += 1
        MESSAGES.labels(self.queue, "ok").inc(len(records))
        return True

    async def _one_by_one(self, records: list[Record], in_hand: list[dict[str, Any]]) -> None:
        for index, (message, envelope, context) in enumerate(records):
            with bind_context(message_id=context.message_id, queue=self.queue, correlation_id=envelope.correlation_id):
                settled = await self._handle(message, envelope, context)
            in_hand.remove(message)
            if not settled and self._transport.fifo:
                # FIFO order: later messages of the group must not overtake the failed one.
                for held, _, _ in records[index + 1 :]:
                    await self._transport.change_visibility(held, 0)
                return

    async def _handle(self, message: dict[str, Any], envelope: Envelope[Any], context: MessageContext) -> bool:
        """One message; True when it is settled (deleted or dead-lettered), False when it goes back."""
        started = time.perf_counter()
        try:
            await self._run_handler(envelope, context)
        except RetryLater as exc:
            log.info("retry later", reason=str(exc), delay_s=exc.delay_s, receive_count=context.receive_count)
            MESSAGES.labels(self.queue, "retry").inc()
            await self._transport.change_visibility(message, exc.delay_s)
            return False
        except Reject as exc:
            await self._transport.dead_letter(message, str(exc))
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
            await self._transport.change_visibility(message, backoff)
            return False
        finally:
            HANDLER_SECONDS.labels(self.queue).observe(time.perf_counter() - started)
        await self._transport.delete(message)
        self.processed += 1
        if self._batch_handler is not None:
            self.batches += 1
        MESSAGES.labels(self.queue, "ok").inc()
        return True

    async def _call(self, envelope: Envelope[Any], context: MessageContext) -> None:
        if self._handler is not None:
            await self._handler(envelope, context)
        else:
            assert self._batch_handler is not None
            await self._batch_handler([envelope])

    async def _run_handler(self, envelope: Envelope[Any], context: MessageContext) -> None:
        """The handler, held and retried in place while a dependency is down (the message stays in hand)."""
        while True:
            try:
                await asyncio.wait_for(self._call(envelope, context), timeout=self.handler_timeout_s)
            except Exception as exc:
                # A `RetryLater` raised from a connection error (S3 unreachable, say) is an outage too.
                cause = exc.__cause__ if isinstance(exc, RetryLater | Reject) else exc
                dependency = dependency_of(cause) if cause is not None and not isinstance(exc, Reject) else None
                if dependency is None:
                    if isinstance(exc, RetryLater | Reject):
                        self._breaker.succeeded()  # the handler reached its dependencies and decided
                    raise
                MESSAGES.labels(self.queue, "held").inc()
                self._breaker.trip(dependency, exc)
                if not await self._breaker.turn(self._stop):
                    raise RetryLater(f"stopping while {dependency} is down", delay_s=0) from exc
                continue
            self._breaker.succeeded()
            return
