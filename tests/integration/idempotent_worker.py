"""A worker process for the kill test: records each frame idempotently (keyed on frame id)."""

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa  # noqa: E402

from shared.aws import aws_client  # noqa: E402
from shared.config import PlatformSettings  # noqa: E402
from shared.contracts import Envelope, FrameReceived  # noqa: E402
from shared.sqs import Consumer, MessageContext, QueueResolver  # noqa: E402


async def main() -> None:
    settings = PlatformSettings()
    engine = sa.create_engine(os.environ["DATABASE_URL"])
    hang = os.environ.get("HANG") == "1"

    async def handler(envelope: Envelope[FrameReceived], context: MessageContext) -> None:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO handled (frame_id, deliveries) VALUES (:f, 1) "
                    "ON CONFLICT (frame_id) DO UPDATE SET deliveries = handled.deliveries + 1"
                ),
                {"f": envelope.payload.context.frame_id},
            )
        if hang:
            Path(os.environ["MARKER"]).touch()
            await asyncio.sleep(3600)

    async with aws_client("sqs", settings) as sqs:
        resolver = QueueResolver(sqs, prefix=settings.queue_prefix)
        consumer: Consumer[Any] = Consumer(sqs, resolver, "frames-received", FrameReceived, handler, handler_timeout_s=60)
        await consumer.run(until_idle=not hang)


asyncio.run(main())
