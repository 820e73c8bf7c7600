"""Notifier process: `python -m services.notifier.main`.

Builds clients in a fixed order (database, SQS / S3 / SNS, HTTP client, senders), then runs the rules API,
the FrameAnalyzed consumer, the delivery consumer and the outbox sweep in one event loop. SIGTERM stops
intake, drains in-flight work and exits 0.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import uvloop
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.notifier.adapters.channels import (
    AppriseSender,
    EmailSender,
    Sender,
    SmtpSettings,
    SnsSender,
    WebhookSender,
)
from services.notifier.adapters.db import PURGE_RULES
from services.notifier.adapters.secret_box import SecretBox, reencrypt_all
from services.notifier.api import build_app, notifier_tokens
from services.notifier.config import NotifierSettings
from services.notifier.escalation import escalate_due
from services.notifier.handlers import DeliveryHandler, FrameHandler, publish_outbox
from shared.access.config import AccessSettings
from shared.access.http import Access
from shared.aws import aws_clients
from shared.config import normalise_database_url
from shared.contracts import FrameAnalyzed, NotificationRequested
from shared.db import make_engine
from shared.http import EmbeddedServer
from shared.logging import configure_logging, get_logger
from shared.purge import PurgeSchedule
from shared.s3 import FrameStore
from shared.sqs import Consumer, Publisher, QueueResolver, install_stop_signals

log = get_logger(__name__)
FRAMES_QUEUE = "frames-analyzed-notifier"
DELIVERIES_QUEUE = "notifier-deliveries"


@dataclass
class Worker:
    frames: Consumer[FrameAnalyzed]
    deliveries: Consumer[NotificationRequested]
    frame_handler: FrameHandler
    sweep: Callable[[], Awaitable[int]]
    escalate: Callable[[], Awaitable[int]]
    publisher: Publisher
    backlog: Callable[[], Awaitable[int]]

    def request_stop(self) -> None:
        self.frames.request_stop()
        self.deliveries.request_stop()

    def polling(self, *, within_s: float = 60.0) -> bool:
        """Ready while both consumers run, none holds intake for an outage and none has gone quiet."""
        now = time.time()
        return all(
            not c.breaker.is_open and (c.last_poll_at is None or now - c.last_poll_at < within_s)
            for c in (self.frames, self.deliveries)
        )


def build_senders(settings: NotifierSettings, http: httpx.AsyncClient, sns: Any) -> dict[str, Sender]:
    return {
        "webhook": WebhookSender(
            http,
            attempts=settings.webhook_attempts,
            backoff_s=settings.webhook_backoff_s,
            max_retry_after_s=settings.max_retry_after_s,
            default_secret=settings.webhook_secret,
            allowed_networks=settings.webhook_networks(),
        ),
        "email": EmailSender(
            SmtpSettings(
                host=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
                sender=settings.smtp_from,
            )
        ),
        "apprise": AppriseSender(allowed_networks=settings.webhook_networks()),
        "sns": SnsSender(sns),
    }


@contextlib.asynccontextmanager
async def worker(settings: NotifierSettings, engine: AsyncEngine, *, wait_time_s: int = 20):  # type: ignore[no-untyped-def]
    """Everything one notifier worker needs, built in order and closed in reverse."""
    async with (
        aws_clients(settings, "sqs", "s3", "sns") as (sqs, s3, sns),
        httpx.AsyncClient(timeout=settings.webhook_timeout_s) as http,
    ):
        resolver = QueueResolver(sqs, prefix=settings.queue_prefix)
        publisher = Publisher(sqs, resolver, producer="notifier")
        frames = FrameStore(s3, settings.frames_bucket)
        frame_handler = FrameHandler(settings, engine, publisher)
        delivery_handler = DeliveryHandler(settings, engine, frames, build_senders(settings, http, sns), publisher)
        yield Worker(
            frames=Consumer(
                sqs,
                resolver,
                FRAMES_QUEUE,
                FrameAnalyzed,
                # one camera's received frames (a FIFO group) in one transaction; a failed batch frame by frame
                batch_handler=frame_handler.handle_envelopes,
                concurrency=settings.frame_concurrency,
                wait_time_s=wait_time_s,
                delete_linger_s=0.01,  # groups finishing about together share a DeleteMessageBatch
            ),
            deliveries=Consumer(
                sqs,
                resolver,
                DELIVERIES_QUEUE,
                NotificationRequested,
                delivery_handler.handle,
                concurrency=settings.delivery_concurrency,
                wait_time_s=wait_time_s,
                delete_linger_s=0.05,  # sent deliveries share DeleteMessageBatch calls (a redelivery is deduped)
            ),
            frame_handler=frame_handler,
            sweep=lambda: publish_outbox(engine, publisher, older_than_s=30),
            escalate=lambda: escalate_due(engine, publisher),
            publisher=publisher,
            backlog=lambda: _backlog(sqs, resolver),
        )


async def _backlog(sqs: Any, resolver: QueueResolver) -> int:
    """Messages waiting or in flight on the notifier's two queues (exact on the emulator, approximate on AWS)."""
    total = 0
    for queue in (FRAMES_QUEUE, DELIVERIES_QUEUE):
        attributes = (
            await sqs.get_queue_attributes(
                QueueUrl=await resolver.url(queue),
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )
        )["Attributes"]
        total += int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
    return total


async def drain_until_idle(w: Worker, *, patience_s: float = 30.0) -> None:
    """Frames, then the deliveries they caused, until both queues are empty (tests, batch replays).

    A FIFO group held by in-flight work looks empty to a poll, so one idle pass is not proof; the backlog is.
    Deliveries waiting out a long retry delay (an unreachable receiver) are left to a later run once nothing
    has moved for `patience_s`.
    """
    moved, last_move = -1, time.monotonic()
    while True:
        await w.frames.run(until_idle=True)
        await w.deliveries.run(until_idle=True)
        backlog = await w.backlog()
        if backlog == 0:
            return
        done = sum(c.processed + c.failed + c.rejected for c in (w.frames, w.deliveries))
        if done != moved:
            moved, last_move = done, time.monotonic()
        elif time.monotonic() - last_move > patience_s:
            log.warning("returning while messages wait for a retry", backlog=backlog, patience_s=patience_s)
            return
        await asyncio.sleep(0.2)


def notifier_engine(settings: NotifierSettings) -> AsyncEngine:
    """The shared engine settings without the pre-ping: a round trip less per transaction (three on an alert's
    path). A connection that died with a database restart fails its transaction once; SQS redelivers the frame or
    delivery (at-least-once) and SQLAlchemy replaces the pool's connections."""
    if not settings.database_url:
        return make_engine(None)  # raises DatabaseNotConfigured, which says what to set
    return create_async_engine(
        normalise_database_url(settings.database_url), pool_size=settings.db_pool_size, pool_pre_ping=False
    )


async def run(
    settings: NotifierSettings,
    *,
    until_idle: bool = False,
    engine: AsyncEngine | None = None,
    patience_s: float = 30.0,
) -> None:
    """Run one worker. until_idle: handle frames until their queue is empty, then deliveries, then return."""
    own_engine = engine is None
    engine = engine or notifier_engine(settings)
    try:
        # Encrypt secrets stored in plain text (before issue 19) or under a rotated-out key, before any send.
        await reencrypt_all(engine, SecretBox(settings.secrets_key))
        async with worker(settings, engine) as w:
            if until_idle:
                await drain_until_idle(w, patience_s=patience_s)
                return
            app = build_app(
                engine=engine,
                admin_token=settings.admin_token,
                default_policy=settings.default_policy(),
                ready=w.polling,
                default_webhook_secret=settings.webhook_secret is not None,
                catalogue=settings.catalogue(),
                secret_box=SecretBox(settings.secrets_key),
                webhook_networks=settings.webhook_networks(),
                access=Access(
                    engine=engine, service_tokens=notifier_tokens(settings.admin_token), settings=AccessSettings()
                ),
                publisher=w.publisher,
            )
            await serve(settings, app, w, purge_schedule(settings, engine))
    finally:
        if own_engine:
            await engine.dispose()


def purge_schedule(settings: NotifierSettings, engine: AsyncEngine) -> PurgeSchedule:
    return PurgeSchedule(
        "notifier",
        engine,
        PURGE_RULES,
        retention_days=settings.retention_days,
        interval_s=settings.retention_interval_s,
    )


async def serve(settings: NotifierSettings, app: FastAPI, w: Worker, retention: PurgeSchedule) -> None:
    server = EmbeddedServer(app, host=settings.host, port=settings.port, access_log=True)
    stopping = asyncio.Event()

    def stop() -> None:
        stopping.set()
        w.request_stop()

    install_stop_signals(stop)

    async def sweep_forever() -> None:
        while not stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=settings.sweep_interval_s)
            try:
                published = await w.sweep()
                if published:
                    log.warning("outbox sweep published messages a worker left behind", count=published)
            except Exception as exc:  # noqa: BLE001 - the sweep retries next round
                log.error("outbox sweep failed; retrying next round", error=repr(exc))
            try:
                await w.escalate()
            except Exception as exc:  # noqa: BLE001 - a step not fired stays due for the next round
                log.error("escalation sweep failed; retrying next round", error=repr(exc))

    sweeper = asyncio.create_task(sweep_forever())
    purger = asyncio.create_task(retention.run_forever(stopping))
    # the consumers drain first (SIGTERM), then HTTP stops
    await server.serve_while(asyncio.gather(w.frames.run(), w.deliveries.run()))
    stopping.set()
    await asyncio.gather(sweeper, purger)
    log.info("notifier stopped")


def main() -> None:
    try:
        settings = NotifierSettings()
    except ValidationError as exc:
        raise SystemExit(f"notifier configuration is invalid (variables are NOTIFIER_<FIELD>): {exc}") from exc
    configure_logging("notifier", fmt=settings.log_format, level=settings.log_level)
    log.info("notifier starting", port=settings.port, queue_prefix=settings.queue_prefix)
    uvloop.run(run(settings))


if __name__ == "__main__":
    main()
