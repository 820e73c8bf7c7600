"""Detector process: model workers, AWS clients, the frames-received consumer and the HTTP app, in that order.

    python -m services.detector.main

SIGTERM / SIGINT stop intake, drain the frames in flight, stop the HTTP server and exit 0.
"""

import asyncio
import time
from typing import Any

import uvloop

from services.detector.adapters.results import ResultStore
from services.detector.api import build_app
from services.detector.config import DetectorSettings
from services.detector.engines.base import EngineUnavailable
from services.detector.engines.registry import EngineSet, build_engines
from services.detector.handlers import FrameHandler
from shared.aws import aws_clients
from shared.contracts import FrameReceived
from shared.http import EmbeddedServer
from shared.logging import configure_logging, get_logger
from shared.s3 import FrameStore
from shared.sqs import Consumer, Handler, Publisher, QueueResolver, install_stop_signals

log = get_logger(__name__)
QUEUE = "frames-received"


def readiness(consumer: Consumer[Any] | None, *, started_at: float, wait_time_s: int = 20) -> tuple[bool, str]:
    if consumer is None:
        return True, "api only"
    if consumer.breaker.is_open:
        return False, f"holding intake: {consumer.breaker.dependency} unavailable"
    last = consumer.last_poll_at or started_at  # the first long poll may take wait_time_s to return
    age = time.time() - last
    # a poll may legitimately wait the whole long-poll time, or the cap may hold it while frames run
    if age > 3 * wait_time_s + 60:
        return False, f"consumer last polled {age:.0f}s ago"
    return True, f"consumer polled {age:.1f}s ago, {consumer.in_flight} in flight"


def build_handler(
    settings: DetectorSettings, engines: EngineSet, *, sqs: Any, s3: Any, resolver: QueueResolver
) -> FrameHandler:
    return FrameHandler(
        settings=settings,
        engines=engines,
        frames=FrameStore(s3, settings.frames_bucket),
        results=ResultStore(s3, settings.frames_bucket, prefix=settings.results_prefix),
        publisher=Publisher(sqs, resolver, producer="detector"),
    )


def build_consumer(
    settings: DetectorSettings, handler: Handler, *, sqs: Any, resolver: QueueResolver
) -> Consumer[FrameReceived]:
    return Consumer(
        sqs,
        resolver,
        QUEUE,
        FrameReceived,
        handler,
        concurrency=settings.concurrency,
        batch_size=min(10, settings.concurrency),
        handler_timeout_s=settings.handler_timeout_s,
        receive_when_free=settings.receive_when_free,
        delete_linger_s=settings.delete_linger_s,
    )


async def run(
    settings: DetectorSettings,
    *,
    until_idle: bool = False,
    serve_http: bool = True,
    engines: EngineSet | None = None,
    started: asyncio.Event | None = None,
) -> None:
    """Run the detector until stopped (or, with until_idle, until the queue is empty: tests).

    `engines`: already started engines the caller keeps (tests reuse one model pool across runs).
    """
    owned = engines is None
    engines = engines or build_engines(settings)
    if owned:
        await engines.start()  # fails fast (EngineUnavailable) when models are missing
    try:
        async with aws_clients(settings, "sqs", "s3") as (sqs, s3):
            started_at = time.time()
            resolver = QueueResolver(sqs, prefix=settings.queue_prefix)
            handler = build_handler(settings, engines, sqs=sqs, s3=s3, resolver=resolver)
            consumer = (
                build_consumer(settings, handler.handle, sqs=sqs, resolver=resolver) if settings.consume else None
            )
            server: EmbeddedServer | None = None
            if serve_http:
                app = build_app(
                    settings, engines=engines, s3=s3, ready=lambda: readiness(consumer, started_at=started_at)
                )
                server = EmbeddedServer(app, host=settings.host, port=settings.port)

            def stop() -> None:
                if consumer is not None:
                    consumer.request_stop()
                elif server is not None:
                    server.request_stop()

            if not until_idle:
                install_stop_signals(stop)
            if started is not None:
                started.set()
            log.info("detector started", engine=engines.ppe.name, port=settings.port, consume=settings.consume)
            work = consumer.run(until_idle=until_idle) if consumer is not None else None
            if server is not None:
                await server.serve_while(work)  # the consumer drains first, then HTTP stops
            elif work is not None:
                await work
    finally:
        if owned:
            await engines.close()
    log.info("detector stopped")


def main() -> None:
    settings = DetectorSettings()
    configure_logging("detector", fmt=settings.log_format, level=settings.log_level)
    try:
        uvloop.run(run(settings))  # libuv event loop: less CPU per AWS call than asyncio's
    except EngineUnavailable as exc:
        log.error("detector cannot start", error=str(exc))
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
