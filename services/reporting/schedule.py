"""The background jobs' schedule (retention, data-lake export, digests): run, wait an interval or until stopped."""

import asyncio
from collections.abc import Awaitable, Callable

from shared.logging import get_logger

log = get_logger(__name__)


async def every(interval_s: float, stop: asyncio.Event, run_once: Callable[[], Awaitable[object]], *,
                failure: str) -> None:
    """Call `run_once` now and then every `interval_s` until `stop` is set; a failed run is logged (`failure`)
    and the schedule goes on."""
    while not stop.is_set():
        try:
            await run_once()
        except Exception as exc:  # noqa: BLE001 - a failed run must not stop the schedule
            log.exception(failure, error=repr(exc))
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            pass
