"""Create the queues and buckets of shared/topology.py and apply the migrations, idempotently.

    python -m shared.provision      # compose's one-shot `provision` job; `make run` calls provision() itself

Runs against whatever AWS_ENDPOINT_URL / DATABASE_URL point at (moto, LocalStack, AWS), so it ships in the
service images, unlike the local stack (devstack/).
"""

import asyncio
import os

from shared.aws import aws_clients
from shared.config import PlatformSettings
from shared.logging import configure_logging, get_logger
from shared.migrate import upgrade
from shared.topology import provision_buckets, provision_queues

log = get_logger("provision")


async def provision(settings: PlatformSettings) -> None:
    async with aws_clients(settings, "sqs", "s3") as (sqs, s3):
        await provision_queues(sqs, prefix=settings.queue_prefix)
        await provision_buckets(s3, {"frames_bucket": settings.frames_bucket}, region=settings.aws_region)
    if settings.database_url:
        upgrade(settings.database_url)
        log.info("migrations applied")


def main() -> int:
    settings = PlatformSettings()
    configure_logging("provision", fmt=os.environ.get("PPE_LOG_FORMAT", "console"), level=settings.log_level)
    asyncio.run(provision(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
