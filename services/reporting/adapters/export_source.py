"""SQL of the data-lake export: the watermark row per stream, and the rows stored inside a run's range.

A run's range is (from, to] over when reporting *stored* rows (frames.ingested_at for person events,
incidents.recorded_at; for the audit trail occurred_at, when a record was appended), with `to` = now - lag: a
transaction still open at export time started less than `lag` ago (every reporting transaction is short, and so
is every transaction that appends an audit record), so no row can later appear inside an exported range.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.reporting.adapters.models import export_state

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # Hive, Athena and Spark read it as NULL
LOCK_KEY = 0x5050_4558  # pg advisory lock: one exporter at a time across reporting replicas

_QUERIES: dict[str, str] = {
    "person_events": (
        "SELECT e.frame_id, e.person_index, e.captured_at, e.site_id, e.zone_id, e.camera_id, e.outcome, "
        "e.person_confidence, e.head_cover, e.head_cover_confidence, e.face_cover, e.face_cover_confidence, "
        "e.hand_cover, e.hand_cover_confidence, e.equipment, f.ingested_at "
        "FROM reporting_frames f JOIN reporting_person_events e ON e.frame_id = f.frame_id "
        "WHERE f.ingested_at > :start AND f.ingested_at <= :end "
        "ORDER BY f.ingested_at, e.frame_id, e.person_index"
    ),
    "incidents": (
        "SELECT incident_id, status, site_id, zone_id, camera_id, missing_equipment, severity, started_at, "
        "last_seen_at, resolved_at, max_confidence, changed_at, recorded_at, version FROM reporting_incidents "
        "WHERE recorded_at > :start AND recorded_at <= :end ORDER BY recorded_at, incident_id"
    ),
    # the shared audit trail (every service appends; reporting may read it): records of no one site (sign-ins,
    # users) go to the Hive null partition; each record keeps its hashes, so the lake holds the chain's head
    "audit": (
        "SELECT seq, occurred_at, actor, action, site_id, target, details::text AS details, prev_hash, hash, "
        f"COALESCE(site_id, '{NULL_PARTITION}') AS partition_site FROM access_audit "
        "WHERE occurred_at > :start AND occurred_at <= :end ORDER BY seq"
    ),
}


@dataclass(frozen=True)
class RunRange:
    stream: str
    start: datetime
    end: datetime
    resumed: bool  # True: an interrupted run's range, redone with the same file names


class ExportSource:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def try_lock(self) -> AsyncConnection | None:
        """A connection holding the exporters' advisory lock, or None when another exporter runs."""
        conn = await self._engine.connect()
        locked = await conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
        await conn.commit()
        if not locked:
            await conn.close()
            return None
        return conn

    async def unlock(self, conn: AsyncConnection) -> None:
        try:
            await conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            await conn.commit()
        finally:
            await conn.close()

    async def plan(self, *, stream: str, lag_s: float) -> RunRange | None:
        """The range to export now: an interrupted run's, else (watermark, now - lag]; None when empty."""
        async with self._engine.begin() as conn:
            await conn.execute(pg_insert(export_state).values(stream=stream).on_conflict_do_nothing())
            row = (
                await conn.execute(sa.select(export_state).where(export_state.c.stream == stream).with_for_update())
            ).one()
            if row.pending_from is not None and row.pending_to is not None:
                return RunRange(stream, row.pending_from, row.pending_to, resumed=True)
            now: datetime | None = await conn.scalar(sa.select(sa.func.now()))
            assert now is not None  # now() is never NULL
            start: datetime = row.watermark or EPOCH
            end = now - timedelta(seconds=lag_s)
            if end <= start:
                return None
            await conn.execute(
                export_state.update()
                .where(export_state.c.stream == stream)
                .values(pending_from=start, pending_to=end, updated_at=sa.func.now())
            )
            return RunRange(stream, start, end, resumed=False)

    async def finish(self, run: RunRange, *, rows: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                export_state.update()
                .where(export_state.c.stream == run.stream)
                .values(
                    watermark=run.end,
                    pending_from=None,
                    pending_to=None,
                    rows_exported=export_state.c.rows_exported + rows,
                    updated_at=sa.func.now(),
                )
            )

    async def state(self) -> list[dict[str, Any]]:
        async with self._engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(sa.select(export_state).order_by("stream"))]

    async def rows(self, run: RunRange, *, batch_rows: int) -> AsyncIterator[list[dict[str, Any]]]:
        """The run's rows in a stable order, through a server-side cursor, `batch_rows` at a time."""
        async with self._engine.connect() as conn:
            result = await conn.stream(
                sa.text(_QUERIES[run.stream]).execution_options(yield_per=batch_rows),
                {"start": run.start, "end": run.end},
            )
            async for partition in result.mappings().partitions(batch_rows):
                yield [dict(row) for row in partition]
