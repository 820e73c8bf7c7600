"""Dependency outages apart from bad messages: classify the failure, hold intake, resume alone.

A handler that fails because PostgreSQL, S3 or the network is down says nothing about its message. Letting
SQS redeliver it burns the message's receive count (5 receives, then the dead-letter queue) and spins every
worker on the outage. Instead the consumer (`shared.sqs.Consumer`):

- asks `dependency_of(exc)` whether a failure is a dependency outage (walking the exception's causes);
- opens its `Breaker`: no new receives while it is open, and the messages in hand stay in hand (their
  visibility keeps being extended), so no receive count is spent on the outage;
- lets one held message at a time retry after a backoff (1 s doubling to 15 s, jittered): that retry is the
  probe; its success closes the breaker and the others retry at once, in order.

A process that dies while holding messages loses nothing: they come back after their visibility timeout.
"""

import asyncio
import errno
import time

from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from prometheus_client import Gauge
from sqlalchemy import exc as sa_exc

from shared.backoff import backoff_delay
from shared.logging import get_logger

log = get_logger(__name__)

DEPENDENCY_UP = Gauge("ppe_dependency_up", "1 while the consumer's dependencies answer, 0 while held.", ["queue"])

_DOWN_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPIPE}


def dependency_of(exc: BaseException) -> str | None:
    """The dependency whose outage caused `exc` ("database", "aws", "network"), or None for any other failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return "database"
        if isinstance(current, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
            return "database"
        if type(current).__module__.startswith("psycopg") and type(current).__name__ == "OperationalError":
            return "database"
        if isinstance(current, EndpointConnectionError | BotoConnectionError | ReadTimeoutError):
            return "aws"
        if isinstance(current, ConnectionError) or (isinstance(current, OSError) and current.errno in _DOWN_ERRNOS):
            return "network"
        current = current.__cause__ or current.__context__
    return None


class Breaker:
    """Open while a dependency is down; one probe at a time after a growing delay; closed by a success."""

    def __init__(self, queue: str, *, first_delay_s: float = 1.0, max_delay_s: float = 15.0) -> None:
        self.queue = queue
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s
        self._probes = 0  # probes since the breaker opened: the next one waits longer
        self._closed = asyncio.Event()
        self._closed.set()
        self._probing = False
        self._opened_at: float | None = None
        self.dependency: str | None = None
        self.outages = 0
        DEPENDENCY_UP.labels(queue).set(1)

    @property
    def is_open(self) -> bool:
        return not self._closed.is_set()

    def trip(self, dependency: str, error: BaseException) -> None:
        """A held message failed on `dependency`: open (or keep open) and end any probe in progress."""
        self._probing = False
        if self.is_open:
            return
        self.outages += 1
        self.dependency = dependency
        self._opened_at = time.monotonic()
        self._probes = 0
        self._closed.clear()
        DEPENDENCY_UP.labels(self.queue).set(0)
        log.warning(
            "dependency down: holding intake until it answers",
            queue=self.queue,
            dependency=dependency,
            error=repr(error)[:300],
        )

    def succeeded(self) -> None:
        self._probing = False
        if not self.is_open:
            return
        down_s = time.monotonic() - (self._opened_at or time.monotonic())
        log.info(
            "dependency back: resuming intake", queue=self.queue, dependency=self.dependency, down_s=round(down_s, 1)
        )
        self._closed.set()
        DEPENDENCY_UP.labels(self.queue).set(1)

    async def wait_closed(self, stop: asyncio.Event) -> bool:
        """Return True once closed, False if `stop` is set first."""
        await _first_of(self._closed, stop)
        return self._closed.is_set()

    async def turn(self, stop: asyncio.Event) -> bool:
        """Wait until a held message may try again; False when stopping.

        Closed: at once. Open: one caller becomes the probe after the backoff delay (it must then call
        `succeeded()` or `trip()`); the others wait for the breaker to close."""
        while not stop.is_set():
            if not self.is_open:
                return True
            if self._probing:
                await _first_of(self._closed, stop)
                continue
            self._probing = True
            delay = backoff_delay(self._probes, first_s=self._first_delay_s, max_s=self._max_delay_s, spread=0.2)
            self._probes += 1
            await _first_of(self._closed, stop, within_s=delay)
            if stop.is_set():
                self._probing = False
                return False
            if not self.is_open:
                self._probing = False
            return True
        return False


async def _first_of(*events: asyncio.Event, within_s: float | None = None) -> None:
    """Until one of `events` is set, or `within_s` passes."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
