"""Retention purges of a service's own tables, run on a schedule inside the service that owns them.

Each service names its rules (a table and the condition a row must meet to go, given `:cutoff`); rows are
deleted in batches so a large backlog never holds long locks on a table the hot path writes to. Running the
same purge from several processes at once is harmless: a row another process deleted is simply skipped.
"""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class PurgeRule:
    table: str
    where: str  # SQL condition on the table's rows, with the bind parameter :cutoff


async def purge(
    engine: AsyncEngine, rules: tuple[PurgeRule, ...], *, cutoff: datetime, batch: int = 5000
) -> dict[str, int]:
    """Delete every row the rules select, in order, in batches; returns rows deleted per table."""
    deleted: dict[str, int] = {}
    for rule in rules:
        statement = sa.text(
            f"DELETE FROM {rule.table} WHERE ctid IN "  # noqa: S608 - table and condition are code, not input
            f"(SELECT ctid FROM {rule.table} WHERE {rule.where} LIMIT :batch)"
        )
        total = 0
        while True:
            async with engine.begin() as connection:
                count = (await connection.execute(statement, {"cutoff": cutoff, "batch": batch})).rowcount
            total += count
            if count < batch:
                break
        deleted[rule.table] = total
    return deleted


class PurgeSchedule:
    """Purge rows older than `retention_days` now and then every `interval_s` seconds."""

    def __init__(
        self, service: str, engine: AsyncEngine, rules: tuple[PurgeRule, ...], *, retention_days: int, interval_s: float
    ) -> None:
        self._service = service
        self._engine = engine
        self._rules = rules
        self.retention_days = retention_days
        self._interval_s = interval_s

    async def run_once(self, *, now: datetime | None = None) -> dict[str, int]:
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.retention_days)
        deleted = await purge(self._engine, self._rules, cutoff=cutoff)
        log.info(
            "retention purge done",
            service=self._service,
            cutoff=cutoff.isoformat(),
            retention_days=self.retention_days,
            deleted=deleted,
        )
        return deleted

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - a failed run (database down) must not end the schedule
                log.error(
                    "retention purge failed; retrying at the next interval", service=self._service, error=repr(exc)
                )
            try:
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)
            except TimeoutError:
                pass
