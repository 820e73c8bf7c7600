"""The one handler shape of every service: what its `handlers.py` offers to the loop in its `main.py`.

A service's `handlers.py` holds one class per kind of message it handles, named `<Message>Handler`, built by
`main.py` with its adapters (keyword arguments) and implementing one of these Protocols:
- `MessageHandler[P]`: `handle(envelope, context)`, one SQS message (the detector's frames, the notifier's
  deliveries, reporting's incident changes); the consumer is `Consumer(..., handler=h.handle)`.
- `BatchMessageHandler[P]`: `handle_envelopes(envelopes)`, what one receive returned, all or nothing (the
  notifier's frames: one camera's frames in one transaction; reporting's frames); the consumer is
  `Consumer(..., batch_handler=h.handle_envelopes)`.
- `RequestHandler[R, T]`: `handle(request) -> T`, one HTTP request's business, behind a thin route (ingest's
  posted frames: validate, store, announce).
Returning means success. For the SQS shapes, `shared.sqs.RetryLater` / `Reject` say "put back" / "dead-letter";
any other exception is a failure the queue redelivers (shared/sqs/__init__.py says the rest).
"""

from typing import Protocol, TypeVar

from shared.contracts import Envelope, Payload
from shared.sqs.base import MessageContext

P = TypeVar("P", bound=Payload)
R = TypeVar("R", contravariant=True)
T = TypeVar("T", covariant=True)


class MessageHandler(Protocol[P]):
    async def handle(self, envelope: Envelope[P], context: MessageContext) -> None:
        """Handle one message; return when done (the consumer deletes it)."""
        ...


class BatchMessageHandler(Protocol[P]):
    async def handle_envelopes(self, envelopes: list[Envelope[P]]) -> None:
        """Handle a batch in receive order, all or nothing (on failure the consumer retries each alone)."""
        ...


class RequestHandler(Protocol[R, T]):
    async def handle(self, request: R) -> T:
        """Handle one request's business; raise the service's typed error to refuse it."""
        ...
