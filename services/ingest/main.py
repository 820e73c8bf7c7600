"""Start ingest: `python -m services.ingest.main`. Builds clients in a fixed order, then serves HTTP.

Order: settings -> logging -> PostgreSQL engine -> S3 client -> SQS client -> app -> uvicorn. SIGTERM stops
accepting connections, lets in-flight requests finish, closes the clients and exits 0.

INGEST_WORKERS=N (N > 1): this process binds the port once and supervises N worker processes that accept
on the shared socket (the kernel spreads connections over them). A worker that dies is restarted; SIGTERM
is passed on to every worker, each drains its requests, and the supervisor exits 0 when all have.
"""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
import uvloop
from aiobotocore.config import AioConfig
from fastapi import FastAPI
from prometheus_client import multiprocess
from sqlalchemy.ext.asyncio import create_async_engine

from services.ingest.adapters.cameras import CameraDirectory
from services.ingest.adapters.db import CameraRepository, FrameLedger, SharedRateLimiter
from services.ingest.api import IngestDeps, build_app
from services.ingest.config import IngestSettings
from services.ingest.domain import RateLimiter
from services.ingest.handlers import FrameIntake
from shared.access.config import AccessSettings
from shared.access.http import Access, service_tokens
from shared.access.roles import Role
from shared.aws import aws_client
from shared.db import make_engine
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
                intake=FrameIntake(
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


class Server(uvicorn.Server):
    """uvicorn re-raises a captured SIGTERM after shutdown (exit by signal); we own the signals instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: IngestSettings, *, app_ready: asyncio.Event | None = None) -> None:
    async with open_deps(settings) as deps:
        app: FastAPI = build_app(deps)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None, access_log=False, lifespan="off"
        )
        server = Server(config)
        sockets = [socket.socket(fileno=settings.listen_fd)] if settings.listen_fd is not None else None

        stopping = asyncio.Event()

        def stop() -> None:
            log.info("stop requested: draining in-flight requests")
            server.should_exit = True
            stopping.set()

        install_stop_signals(stop)
        log.info("ingest listening", host=settings.host, port=settings.port, bucket=settings.frames_bucket)
        if app_ready is not None:
            app_ready.set()
        # Every worker runs the ledger purge; concurrent runs skip each other's rows, so no leader is needed.
        schedule = deps.ledger.purge_schedule(
            retention_days=settings.ledger_retention_days, interval_s=settings.retention_interval_s
        )
        purging = asyncio.create_task(schedule.run_forever(stopping))
        try:
            await server.serve(sockets=sockets)
        finally:
            stopping.set()
            await purging
    log.info("ingest stopped")


def supervise(settings: IngestSettings) -> int:
    """Bind once, run `settings.workers` worker processes on the socket, restart any that dies."""
    # uvicorn's own bind (IPv4/IPv6, SO_REUSEADDR, inheritable); each worker's server listens on it
    sock = uvicorn.Config(__name__, host=settings.host, port=settings.port, log_config=None).bind_socket()
    metrics_dir = tempfile.TemporaryDirectory(prefix="ingest-metrics-")  # prometheus multiprocess mode
    env = {
        **os.environ,
        "INGEST_WORKERS": "1",
        "INGEST_LISTEN_FD": str(sock.fileno()),
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir.name,
    }
    command = [sys.executable, "-m", "services.ingest.main"]

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, env=env, pass_fds=(sock.fileno(),))

    workers = [spawn() for _ in range(settings.workers)]
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("ingest workers started", workers=[w.pid for w in workers], host=settings.host, port=settings.port)
    while not stopping:
        time.sleep(0.2)
        for index, worker in enumerate(workers):
            if worker.poll() is not None and not stopping:
                log.error("ingest worker exited; starting another", pid=worker.pid, exit_code=worker.returncode)
                multiprocess.mark_process_dead(worker.pid, metrics_dir.name)  # type: ignore[no-untyped-call]  # untyped upstream
                time.sleep(1)  # a worker that cannot start must not spin the machine
                workers[index] = spawn()
    codes = [worker.wait() for worker in workers]
    sock.close()
    metrics_dir.cleanup()
    log.info("ingest stopped", exit_codes=codes)
    return 0 if all(code == 0 for code in codes) else 1


def main() -> int:
    settings = IngestSettings()
    configure_logging("ingest", fmt=settings.log_format, level=settings.log_level)
    if settings.workers > 1:
        return supervise(settings)
    uvloop.run(serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
