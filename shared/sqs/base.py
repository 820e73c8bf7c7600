"""What every part of the SQS runtime shares: the handler contract, its typed outcomes, metrics, queue URLs."""

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram

from shared.topology import TOPOLOGY, Topology

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

    @classmethod
    def of(cls, queue: str, message: dict[str, Any]) -> "MessageContext":
        attributes = message.get("Attributes", {})
        return cls(
            queue=queue,
            message_id=message["MessageId"],
            receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
            group_id=attributes.get("MessageGroupId"),
            sent_at=int(attributes["SentTimestamp"]) / 1000 if "SentTimestamp" in attributes else None,
        )


# async (envelope: Envelope[P], context) -> None: one message; returning means success.
Handler = Callable[[Any, MessageContext], Awaitable[None]]
# async (envelopes: list[Envelope[P]]) -> None: a batch in receive order, all or nothing; raising means "try
# each message alone" (the consumer's partial-failure path), so a batch handler must be idempotent.
BatchHandler = Callable[[list[Any]], Awaitable[None]]


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


def install_stop_signals(*stoppables: Callable[[], None]) -> None:
    """SIGTERM / SIGINT: stop intake and let in-flight work drain."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: [stop() for stop in stoppables])
