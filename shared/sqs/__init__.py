"""SQS runtime shared by every service: one publisher and one consumer (with a batch processor).

The consumer owns transport; handlers own business. A handler is `async (envelope, context) -> None`, or a
batch handler `async (envelopes) -> None` that handles what one receive returned (per FIFO group) at once:
returning means success (the messages are deleted); raising `RetryLater` puts the message back after a delay;
raising `Reject` sends it to the dead-letter queue with the reason; any other exception is a failure that
SQS redelivers with backoff until the queue's redrive policy moves it to the DLQ (poison messages) - unless
it is a dependency outage (`shared.breaker.dependency_of`): then the consumer holds intake and keeps the
message in hand until the dependency answers, so an outage spends no receive count and dead-letters nothing.
A failed batch is tried message by message (partial batch failure). Malformed bodies never reach a handler:
they go straight to the DLQ with the validation error.

Modules: `base` (contract, outcomes, metrics, queue URLs), `publisher`, `consumer` (the receive loop),
`batch` (what happens to one received batch), `transport` (deletes, visibility, dead letters).
"""

from shared.sqs.base import (
    HANDLER_SECONDS,
    MESSAGES,
    PUBLISHED,
    QUEUE_LAG,
    BatchHandler,
    Handler,
    MessageContext,
    PublishError,
    QueueResolver,
    Reject,
    RetryLater,
    install_stop_signals,
)
from shared.sqs.consumer import Consumer
from shared.sqs.publisher import Publisher

__all__ = [
    "HANDLER_SECONDS",
    "MESSAGES",
    "PUBLISHED",
    "QUEUE_LAG",
    "BatchHandler",
    "Consumer",
    "Handler",
    "MessageContext",
    "PublishError",
    "Publisher",
    "QueueResolver",
    "Reject",
    "RetryLater",
    "install_stop_signals",
]
