"""Start reporting: settings, logging, database, AWS clients, consumers, retention schedule, HTTP server.

`python -m services.reporting.main`. Migrations run before the app starts (`shared.migrate`). SIGTERM stops
intake, drains in-flight messages and exits 0.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn

from services.reporting.adapters.datalake import Target
from services.reporting.adapters.digest_repository import DigestRepository
from services.reporting.adapters.export_source import ExportSource
from services.reporting.adapters.ingest_admin import IngestAdmin
from services.reporting.adapters.notifier_incidents import NotifierIncidents
from services.reporting.adapters.repository import ReportingRepository
from services.reporting.adapters.snapshots import Snapshots
from services.reporting.api.app import build_app
from services.reporting.api.deps import Tokens
from services.reporting.config import ReportingSettings
from services.reporting.digest.mail import SmtpSettings
from services.reporting.digest.sender import DigestJob
from services.reporting.export import Exporter
from services.reporting.handlers import frame_handler, incident_handler
from services.reporting.retention import RetentionJob
from shared.access.config import AccessSettings
from shared.access.http import Access
from shared.aws import aws_clients
from shared.contracts import FrameAnalyzed, IncidentChanged
from shared.db import make_engine
from shared.logging import configure_logging, get_logger
from shared.migrate import upgrade
from shared.s3 import FrameStore
from shared.sqs import Consumer, QueueResolver, install_stop_signals

log = get_logger(__name__)


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: the process's own stop signals drive shutdown, not uvicorn's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def consumers_ready(
    consumers: list[Consumer[Any]], tasks: list["asyncio.Task[None]"], *, stale_after_s: float
) -> Callable[[], Awaitable[None]]:
    """Ready while every consumer task runs and none is stuck (a long poll returns within 20 s)."""

    async def check() -> None:
        now = time.time()
        for consumer, task in zip(consumers, tasks, strict=True):
            if task.done():
                raise RuntimeError(f"consumer of {consumer.queue} has stopped")
            if consumer.breaker.is_open:
                raise RuntimeError(f"consumer of {consumer.queue} holds intake: {consumer.breaker.dependency} down")
            if consumer.last_poll_at is not None and now - consumer.last_poll_at > stale_after_s:
                raise RuntimeError(f"consumer of {consumer.queue} has not polled for {stale_after_s:.0f}s")

    return check



def reporting_access(settings: ReportingSettings, repository: ReportingRepository) -> Access:
    """The analyst / admin tokens stay (machine use); users sign in here (PPE_SESSION_KEY) or use their tokens."""
    tokens = Tokens(analyst=settings.analyst_token, admin=settings.admin_token)
    return Access(engine=repository.engine, service_tokens=tokens.principals(), settings=AccessSettings())


def digest_job(settings: ReportingSettings, repository: ReportingRepository) -> DigestJob:
    """The scheduled digest e-mails (REPORTING_SMTP_HOST set)."""
    smtp = SmtpSettings(
        host=settings.smtp_host or "", port=settings.smtp_port, sender=settings.smtp_from,
        username=settings.smtp_username, password=settings.smtp_password, starttls=settings.smtp_starttls,
    )
    return DigestJob(DigestRepository(repository), smtp, ready_hour=settings.digest_ready_hour)


async def run(
    settings: ReportingSettings, *, until_idle: bool = False, serve_http: bool = True, install_signals: bool = True
) -> None:
    """Run consumers, the retention schedule and the HTTP server until stopped (or the queues are empty)."""
    engine = make_engine(settings.database_url)
    repository = ReportingRepository(engine)
    stop = asyncio.Event()
    ingest = (
        IngestAdmin(settings.ingest_url, settings.ingest_admin_token)
        if settings.ingest_url and settings.ingest_admin_token
        else None
    )
    notifier = (
        NotifierIncidents(settings.notifier_url, settings.notifier_admin_token)
        if settings.notifier_url and settings.notifier_admin_token
        else None
    )
    try:
        async with aws_clients(settings, "sqs", "s3") as (sqs, s3):
            resolver = QueueResolver(sqs, prefix=settings.queue_prefix)
            snapshots = Snapshots(
                FrameStore(s3, settings.frames_bucket),
                interval_s=settings.snapshot_interval_s,
                prefix=settings.snapshots_prefix,
            )
            consumers: list[Consumer[Any]] = [
                Consumer(
                    sqs,
                    resolver,
                    settings.frames_queue,
                    FrameAnalyzed,
                    # the frames of one receive in one transaction
                    batch_handler=frame_handler(repository, settings.catalogue(), snapshots),
                    concurrency=settings.consumer_concurrency,
                ),
                Consumer(
                    sqs,
                    resolver,
                    settings.incidents_queue,
                    IncidentChanged,
                    incident_handler(repository),
                    concurrency=settings.consumer_concurrency,
                ),
            ]
            tasks = [asyncio.create_task(c.run(until_idle=until_idle)) for c in consumers]
            retention = RetentionJob(
                repository,
                s3,
                bucket=settings.frames_bucket,
                retention_days=settings.retention_days,
                frames_retention_days=settings.frames_retention_days,
            )
            app = build_app(
                repository=repository,
                tokens=Tokens(analyst=settings.analyst_token, admin=settings.admin_token),
                access=reporting_access(settings, repository),
                retention=retention,
                readiness=consumers_ready(consumers, tasks, stale_after_s=60),
                catalogue=settings.catalogue(),
                exposure_cap_s=settings.exposure_cap_s,
                ingest=ingest,
                notifier=notifier,
                snapshots=snapshots,
            )
            server = EmbeddedServer(
                uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, lifespan="off")
            )

            def request_stop() -> None:
                stop.set()
                server.should_exit = True
                for consumer in consumers:
                    consumer.request_stop()

            if install_signals:
                install_stop_signals(request_stop)
            schedule = retention.run_forever(interval_s=settings.retention_interval_s, stop=stop)
            background = [asyncio.create_task(schedule)]
            if settings.export_target:
                target = Target.parse(settings.export_target)
                exporter = Exporter(
                    ExportSource(engine),
                    target,
                    s3=s3,
                    lag_s=settings.export_lag_s,
                    batch_rows=settings.export_batch_rows,
                )
                background.append(
                    asyncio.create_task(exporter.run_forever(interval_s=settings.export_interval_s, stop=stop))
                )
            if settings.smtp_host:
                digests = digest_job(settings, repository)
                background.append(
                    asyncio.create_task(digests.run_forever(interval_s=settings.digest_interval_s, stop=stop))
                )
            if serve_http:
                background.append(asyncio.create_task(server.serve()))
            log.info("reporting started", port=settings.port if serve_http else None)
            try:
                await asyncio.gather(*tasks)
            finally:
                request_stop()
                await asyncio.gather(*background, return_exceptions=True)
    finally:
        if ingest is not None:
            await ingest.close()
        if notifier is not None:
            await notifier.close()
        await engine.dispose()
    log.info("reporting stopped")


def main() -> int:
    settings = ReportingSettings()  # tokens come from the environment
    configure_logging("reporting", fmt=settings.log_format, level=settings.log_level)
    if not settings.database_url:
        raise SystemExit("DATABASE_URL is not set: point it at PostgreSQL (postgresql+psycopg://user:pw@host/db)")
    upgrade(settings.database_url, "reporting@head")  # only our own branch; a no-op when provisioned
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
