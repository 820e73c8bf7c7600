"""Database plumbing shared by the services that own tables (ingest, notifier, reporting).

One driver (psycopg 3) for sync and async; Alembic reads the same DATABASE_URL. Each service keeps its own
tables and its own Alembic branch (migrations/versions/<service>/), so services evolve independently;
`python -m shared.migrate` applies all heads.
"""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from shared.config import normalise_database_url


class DatabaseNotConfigured(RuntimeError):
    pass


def make_engine(url: str | None, *, pool_size: int = 5) -> AsyncEngine:
    if not url:
        raise DatabaseNotConfigured(
            "DATABASE_URL is not set: point it at PostgreSQL (postgresql+psycopg://user:pw@host:5432/db), "
            "or start the embedded stack with `make run`"
        )
    return create_async_engine(normalise_database_url(url), pool_size=pool_size, pool_pre_ping=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """One round trip to the database (readiness probes); raises what the driver raises when it is unreachable."""
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
