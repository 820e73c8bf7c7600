"""Database access of reporting: idempotent ingestion, incidents, sites, export, retention, and the aggregates
(services/reporting/adapters/aggregates.py: they read the 15-minute rollup, never the person-event table).
"""

import base64
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.reporting.adapters.aggregates import AggregateQueries, Counts, Filters, trend_statement
from services.reporting.adapters.models import frames, incidents, person_events, rollup, sites
from services.reporting.domain import (
    EQUIPMENT_COLUMNS,
    FrameRecord,
    InvalidQuery,
    PersonEvent,
    RollupKey,
    rollup_counts,
)
from shared.contracts import IncidentChanged
from shared.db import ping as db_ping
from shared.rekognition import Verdict

__all__ = ["EXPORT_COLUMNS", "Counts", "Filters", "PurgeResult", "ReportingRepository", "decode_cursor",
           "encode_cursor", "trend_statement"]  # Counts, Filters and trend_statement: as before the split


@dataclass(frozen=True)
class PurgeResult:
    person_events: int
    frames: int
    rollup_rows: int
    incidents: int


EXPORT_COLUMNS = (
    "frame_id",
    "captured_at",
    "site_id",
    "zone_id",
    "camera_id",
    "person_index",
    "outcome",
    "person_confidence",
    "head_cover",
    "head_cover_confidence",
    "face_cover",
    "face_cover_confidence",
    "hand_cover",
    "hand_cover_confidence",
    "equipment",  # custom equipment outcomes; the CSV spreads them into <name>, <name>_confidence columns
)

def _newer(excluded: Any) -> sa.ColumnElement[bool]:
    """Whether the incoming row (`excluded`) is a newer change of the incident than the stored one."""
    stored = incidents.c
    legacy = sa.and_(excluded.version == 0, stored.version == 0, stored.changed_at <= excluded.changed_at)
    return sa.or_(stored.version < excluded.version, legacy)


class ReportingRepository(AggregateQueries):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # ---- ingestion -------------------------------------------------------------------------------------

    async def ingest_frame(self, record: FrameRecord) -> bool:
        """Store one frame; False (and nothing changed) when its frame id is already stored."""
        return record.frame_id in await self.ingest_frames([record])

    async def ingest_frames(self, records: Sequence[FrameRecord]) -> set[str]:
        """Store frames, their person events and their rollup counts in one transaction.

        Returns the ids stored now. A frame id already stored (a redelivery, a producer that sent twice)
        is skipped and changes nothing: its events and rollup counts are only written with a new frame row.
        Within `records`, frame ids must be unique.
        """
        if not records:
            return set()
        # Statements are executed "many" (one compiled, cached statement, rows sent in multi-row batches by
        # SQLAlchemy's insertmanyvalues): compiling a VALUES list per call cost more than the database.
        async with self._engine.begin() as conn:
            inserted = await conn.execute(_FRAME_INSERT, [_frame_row(record) for record in records])
            stored = set(inserted.scalars())
            new = [record for record in records if record.frame_id in stored]
            rows = [_event_row(person) for record in new for person in record.persons]
            if rows:
                await conn.execute(_EVENT_INSERT, rows)
                await conn.execute(_ROLLUP_UPSERT, _rollup_rows(rollup_counts(*new)))
        return stored

    async def record_incident(self, change: IncidentChanged, *, changed_at: datetime) -> None:
        """Upsert an incident; a change older than the stored one (out-of-order delivery, re-publish) is ignored.

        Newer means a higher per-incident version. Between two version-0 changes (from a notifier that sends
        none) the later `changed_at` wins; a versioned change beats a version-0 one and never the reverse.
        """
        values = {
            "incident_id": change.incident_id,
            "status": change.status,
            "camera_id": change.camera_id,
            "site_id": change.site_id,
            "zone_id": change.zone_id,
            "missing_equipment": [str(t) for t in change.missing_equipment],
            "severity": change.severity,
            "started_at": change.started_at,
            "last_seen_at": change.last_seen_at,
            "resolved_at": change.resolved_at,
            "frame_id": change.frame_id,
            "max_confidence": change.max_confidence,
            "changed_at": changed_at,
            "version": change.version,
            "recorded_at": sa.func.now(),  # the data-lake export's watermark column
            "acknowledged_at": change.acknowledged_at,
            "acknowledged_by": change.acknowledged_by,
            "resolved_by": change.resolved_by,
            "review": change.review,
            "review_reason": change.review_reason,
        }
        statement = pg_insert(incidents).values(**values)
        async with self._engine.begin() as conn:
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["incident_id"],
                    set_={k: statement.excluded[k] for k in values if k != "incident_id"},
                    where=_newer(statement.excluded),
                )
            )

    async def precision(
        self, *, start: datetime, end: datetime, filters: Filters
    ) -> list[dict[str, Any]]:
        """Per camera, of the incidents that started in [start, end): how many, how many reviewed, confirmed,
        false positives. Precision is confirmed / reviewed (what the reviewers saw), not of every alert."""
        reviewed = sa.func.count().filter(incidents.c.review.is_not(None))
        confirmed = sa.func.count().filter(incidents.c.review == "confirmed")
        query = (
            sa.select(incidents.c.site_id, incidents.c.camera_id, sa.func.count().label("incidents"),
                      reviewed.label("reviewed"), confirmed.label("confirmed"))
            .where(incidents.c.started_at >= start, incidents.c.started_at < end)
            .group_by(incidents.c.site_id, incidents.c.camera_id)
            .order_by(incidents.c.site_id, incidents.c.camera_id)
        )
        query = filters.narrow(query, incidents)
        async with self._engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    # ---- sites -----------------------------------------------------------------------------------------

    async def set_site_timezone(self, *, site_id: str, timezone: str) -> None:
        async with self._engine.begin() as conn:
            known = await conn.scalar(
                sa.text("SELECT count(*) FROM pg_timezone_names WHERE name = :tz"), {"tz": timezone}
            )
            if not known:
                raise InvalidQuery(f"unknown time zone {timezone!r}: use an IANA name such as Europe/Berlin")
            statement = pg_insert(sites).values(site_id=site_id, timezone=timezone)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["site_id"], set_={"timezone": timezone, "updated_at": sa.func.now()}
                )
            )

    async def list_sites(self) -> list[dict[str, Any]]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                sa.select(sites.c.site_id, sites.c.timezone, sites.c.updated_at).order_by(sites.c.site_id)
            )
            return [dict(row._mapping) for row in result]

    async def site_timezone(self, site_id: str) -> str:
        async with self._engine.connect() as conn:
            value = await conn.scalar(sa.select(sites.c.timezone).where(sites.c.site_id == site_id))
            return str(value) if value else "UTC"

    # ---- incidents -------------------------------------------------------------------------------------

    async def list_incidents(
        self,
        *,
        filters: Filters,
        start: datetime | None,
        end: datetime | None,
        status: str | None,
        severity: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first (by started_at, then incident_id); keyset pagination with an opaque cursor."""
        query = sa.select(incidents)
        query = filters.narrow(query, incidents)
        if status is not None:
            query = query.where(incidents.c.status == status)
        if severity is not None:
            query = query.where(incidents.c.severity == severity)
        if start is not None:
            query = query.where(incidents.c.started_at >= start)
        if end is not None:
            query = query.where(incidents.c.started_at < end)
        if cursor is not None:
            after_started, after_id = decode_cursor(cursor)
            query = query.where(sa.tuple_(incidents.c.started_at, incidents.c.incident_id) < (after_started, after_id))
        query = query.order_by(incidents.c.started_at.desc(), incidents.c.incident_id.desc()).limit(limit + 1)
        async with self._engine.connect() as conn:
            rows = [dict(row._mapping) for row in await conn.execute(query)]
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = encode_cursor(rows[-1]["started_at"], rows[-1]["incident_id"])
        return rows, next_cursor

    # ---- export ----------------------------------------------------------------------------------------

    async def stream_events(
        self, *, start: datetime, end: datetime, filters: Filters, chunk_rows: int = 2000
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Person events in capture order, fetched through a server-side cursor in chunks."""
        query = (
            sa.select(*(person_events.c[name] for name in EXPORT_COLUMNS))
            .where(person_events.c.captured_at >= start, person_events.c.captured_at < end)
            .order_by(person_events.c.captured_at, person_events.c.id)
        )
        query = filters.narrow(query, person_events)
        async with self._engine.connect() as conn:
            result = await conn.stream(query.execution_options(yield_per=chunk_rows))
            async for partition in result.partitions(chunk_rows):
                yield [tuple(row) for row in partition]

    # ---- retention -------------------------------------------------------------------------------------

    async def purge_before(self, cutoff: datetime) -> PurgeResult:
        """Delete events, frames, rollup buckets and incidents older than `cutoff` (a 15-minute boundary)."""
        async with self._engine.begin() as conn:
            events_deleted = await _delete(conn, "DELETE FROM reporting_person_events WHERE captured_at < :c", cutoff)
            frames_deleted = await _delete(conn, "DELETE FROM reporting_frames WHERE captured_at < :c", cutoff)
            rollup_deleted = await _delete(conn, "DELETE FROM reporting_rollup_15m WHERE bucket_start < :c", cutoff)
            incidents_deleted = await _delete(conn, "DELETE FROM reporting_incidents WHERE last_seen_at < :c", cutoff)
        return PurgeResult(events_deleted, frames_deleted, rollup_deleted, incidents_deleted)

    async def ping(self) -> None:
        await db_ping(self._engine)


async def _delete(conn: AsyncConnection, sql: str, cutoff: datetime) -> int:
    result = await conn.execute(sa.text(sql), {"c": cutoff})
    return int(result.rowcount or 0)


def _frame_row(record: FrameRecord) -> dict[str, Any]:
    return {
        "frame_id": record.frame_id,
        "camera_id": record.camera_id,
        "site_id": record.site_id,
        "zone_id": record.zone_id,
        "captured_at": record.captured_at,
        "analyzed_at": record.analyzed_at,
        "required_types": [str(t) for t in record.required_types],
        "min_confidence": record.min_confidence,
        "persons_total": len(record.persons),
    }


def _event_row(person: PersonEvent) -> dict[str, Any]:
    row: dict[str, Any] = {
        "frame_id": person.frame_id,
        "person_index": person.person_index,
        "camera_id": person.camera_id,
        "site_id": person.site_id,
        "zone_id": person.zone_id,
        "captured_at": person.captured_at,
        "outcome": person.outcome,
        "person_confidence": person.person_confidence,
    }
    for equipment, column in EQUIPMENT_COLUMNS.items():
        result = person.per_type.get(equipment)
        row[column] = result.outcome if result else None
        row[f"{column}_confidence"] = result.confidence if result else None
    custom = {
        name: {"outcome": result.outcome, "confidence": result.confidence}
        for name, result in person.per_type.items()
        if name not in EQUIPMENT_COLUMNS
    }
    row["equipment"] = custom or None
    return row


def _rollup_rows(counts: dict[RollupKey, dict[Verdict, int]]) -> list[dict[str, Any]]:
    """Keys arrive sorted, so concurrent transactions lock rollup rows in one order (no deadlocks)."""
    return [
        {
            "bucket_start": key[0],
            "site_id": key[1],
            "zone_id": key[2],
            "camera_id": key[3],
            "equipment_type": key[4],
            "persons_with": value["with"],
            "persons_without": value["without"],
            "persons_indeterminate": value["indeterminate"],
        }
        for key, value in counts.items()
    ]


_FRAME_INSERT = pg_insert(frames).on_conflict_do_nothing(index_elements=["frame_id"]).returning(frames.c.frame_id)
_EVENT_INSERT = pg_insert(person_events)
_rollup_insert = pg_insert(rollup)
_ROLLUP_UPSERT = _rollup_insert.on_conflict_do_update(
    index_elements=["site_id", "equipment_type", "bucket_start", "zone_id", "camera_id"],
    set_={
        "persons_with": rollup.c.persons_with + _rollup_insert.excluded.persons_with,
        "persons_without": rollup.c.persons_without + _rollup_insert.excluded.persons_without,
        "persons_indeterminate": rollup.c.persons_indeterminate + _rollup_insert.excluded.persons_indeterminate,
    },
)


def encode_cursor(started_at: datetime, incident_id: str) -> str:
    raw = json.dumps([started_at.isoformat(), incident_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started, incident_id = json.loads(raw)
        moment = datetime.fromisoformat(started)
        if moment.tzinfo is None or not isinstance(incident_id, str):
            raise ValueError("bad cursor content")
        return moment, incident_id
    except (ValueError, TypeError) as exc:
        raise InvalidQuery("cursor is not valid: pass the next_cursor of a previous page unchanged") from exc
