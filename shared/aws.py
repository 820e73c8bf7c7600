"""aiobotocore clients built one way for every service.

The endpoint comes from AWS_ENDPOINT_URL (botocore reads it itself), so the same code talks to AWS,
LocalStack or the moto emulator. Retries use botocore's standard mode (exponential backoff with jitter,
throttling errors included).
"""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from shared.config import PlatformSettings

DEFAULT_CONFIG = AioConfig(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=50,
)


@asynccontextmanager
async def aws_client(
    service: str, settings: PlatformSettings, *, config: AioConfig | None = None
) -> AsyncIterator[Any]:
    session = get_session()
    async with session.create_client(
        service,
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=config or DEFAULT_CONFIG,
    ) as client:
        yield client


@asynccontextmanager
async def aws_clients(settings: PlatformSettings, *services: str) -> AsyncIterator[list[Any]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(aws_client(name, settings)) for name in services]
