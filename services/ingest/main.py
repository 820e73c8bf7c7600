"""Start ingest: `python -m services.ingest.main`. Builds clients in a fixed order, then serves HTTP.

Order: settings -> logging -> PostgreSQL engine -> S3 client -> SQS client -> app -> uvicorn. SIGTERM stops
accepting connections, lets in-flight requests finish, closes the clients and exits 0.

INGEST_WORKERS=N (N > 1): uvicorn's own supervisor (shared.http.serve_workers) binds the port once and runs N
worker processes that accept on the shared socket (the kernel spreads connections over them); each worker opens
its own clients (`worker_app`). A worker that dies is replaced; SIGTERM is passed on to every worker, each
drains its requests, and the supervisor exits 0 when all have.
"""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvloop
from aiobotocore.config import AioConfig
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.types import ASGIApp

from services.ingest.adapters.cameras import CameraDirectory
from services.ingest.adapters.db import CameraRepository, FrameLedger, SharedRateLimiter
from services.ingest.api import IngestDeps, build_app
from services.ingest.config import IngestSettings
from services.ingest.domain import RateLimiter
from services.ingest.handlers import FrameHandler
from shared.access.config import AccessSettings
from shared.access.http import Access, service_tokens
from shared.access.roles import Role
from shared.aws import aws_client
from shared.db import make_engine
from shared.http import EmbeddedServer, LifespanApp, background, serve_workers
from shared.logging import configure_logging, get_logger
from shared.s3 import FrameStore
from shared.sqs import Publisher, QueueResolver, install_stop_signals

log = get_logger(__name__)


def aws_config(settings: IngestSettings) -> AioConfig:
    """Few, short retries: a camera is better told 503 + Retry-After than kept waiting."""
    return AioConfig(
        retries={"mode": "standard", "max_attempts": settings.aws_attempts},
        connect_timeout=settings.aws_timeout_s,
        read_timeout=settings.aws_timeout_s,
        max_pool_connections=64,
    )


@contextlib.asynccontextmanager
async def open_deps(settings: IngestSettings) -> AsyncIterator[IngestDeps]:
    if not settings.database_url:
        make_engine(None)  # raises DatabaseNotConfigured, which says how to set DATABASE_URL
    # No pre-ping: it would add a round trip to every statement on the hot path. A connection that died
    # fails one request with 503 and SQLAlchemy then invalidates the pool.
    engine = create_async_engine(
        settings.database_url or "", pool_size=settings.db_pool_size, max_overflow=4, pool_recycle=600
    )
    try:
        async with (
            aws_client("s3", settings, config=aws_config(settings)) as s3,
            aws_client("sqs", settings, config=aws_config(settings)) as sqs,
        ):
            store = FrameStore(s3, settings.frames_bucket)
            resolver = QueueResolver(sqs, prefix=settings.queue_prefix)
            ledger = FrameLedger(engine, pending_timeout_s=settings.pending_timeout_s)
            repository = CameraRepository(engine)
            yield IngestDeps(
                settings=settings,
                cameras=CameraDirectory(repository, ttl_s=settings.camera_cache_ttl_s),
                camera_repository=repository,
                ledger=ledger,
                store=store,
                resolver=resolver,
                sqs=sqs,
                intake=FrameHandler(
                    ledger=ledger,
                    store=store,
                    publisher=Publisher(
                        sqs,
                        resolver,
                        producer="ingest",
                        attempts=settings.aws_attempts,
                        linger_s=settings.publish_linger_s,
                    ),
                    decode_concurrency=settings.decode_concurrency,
                    retry_after_s=settings.retry_after_s,
                ),
                access=ingest_access(settings, engine),
                limiter=(
                    SharedRateLimiter(
                        engine, default_rate=settings.rate_limit_per_s, burst_s=settings.rate_limit_burst_s
                    )
                    if settings.rate_limit_store == "database"
                    else RateLimiter(default_rate=settings.rate_limit_per_s, burst_s=settings.rate_limit_burst_s)
                ),
            )
    finally:
        await engine.dispose()


def ingest_access(settings: IngestSettings, engine: Any) -> Access:
    """INGEST_ADMIN_TOKEN stays a global admin (machine use); users sign in with their own credentials."""
    tokens = service_tokens({settings.admin_token: ("ingest-admin", Role.ADMIN)})
    return Access(engine=engine, service_tokens=tokens, settings=AccessSettings())


@contextlib.asynccontextmanager
async def open_app(settings: IngestSettings) -> AsyncIterator[ASGIApp]:
    """One worker's app with its clients open; the ledger purge runs beside it until the app closes."""
    async with open_deps(settings) as deps:
        schedule = deps.ledger.purge_schedule(
            retention_days=settings.ledger_retention_days, interval_s=settings.retention_interval_s
        )
        # Every worker runs the ledger purge; concurrent runs skip each other's rows, so no leader is needed.
        async with background(schedule.run_forever):
            log.info("ingest listening", host=settings.host, port=settings.port, bucket=settings.frames_bucket)
            yield build_app(deps)


def worker_app() -> LifespanApp:
    """What each worker process of `serve_workers` serves (uvicorn imports and calls this in the worker)."""
    settings = IngestSettings()
    configure_logging("ingest", fmt=settings.log_format, level=settings.log_level)
    return LifespanApp(lambda: open_app(settings))


async def serve(settings: IngestSettings) -> None:
    """One process: the same app as a worker's, in this loop; SIGTERM drains in-flight requests, then exits."""
    server = EmbeddedServer(LifespanApp(lambda: open_app(settings)), host=settings.host, port=settings.port,
                            lifespan="on")

    def stop() -> None:
        log.info("stop requested: draining in-flight requests")
        server.request_stop()

    install_stop_signals(stop)
    await server.serve_while(None)
    log.info("ingest stopped")


def main() -> int:
    settings = IngestSettings()
    configure_logging("ingest", fmt=settings.log_format, level=settings.log_level)
    if settings.workers > 1:
        # uvicorn's own supervisor; why it is wrapped and what it adds: shared/http/server.py
        return serve_workers("services.ingest.main:worker_app", workers=settings.workers, host=settings.host,
                             port=settings.port)
    uvloop.run(serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
