"""The dashboard's aggregates: trend, breakdown, top locations and top hours, part of ReportingRepository.

Every aggregate reads the 15-minute rollup (`reporting_rollup_15m`), never the person-event table, and
converts rollup buckets to the site's local time with `AT TIME ZONE` (sites without a row are UTC).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reporting.adapters.exposure import CameraCoverage, ExposureRow, exposure
from services.reporting.domain import ALL_TYPES, Bucket, Dimension


@dataclass(frozen=True)
class Filters:
    """Optional narrowing of every aggregate; None means all."""

    site_id: str | None = None
    zone_id: str | None = None
    camera_id: str | None = None

    def narrow(self, query: "sa.Select[Any]", table: sa.Table) -> "sa.Select[Any]":
        """The query, narrowed to the filters set (the table has site_id, zone_id and camera_id columns)."""
        for column in ("site_id", "zone_id", "camera_id"):
            value = getattr(self, column)
            if value is not None:
                query = query.where(table.c[column] == value)
        return query


@dataclass(frozen=True)
class Counts:
    persons_with: int
    persons_without: int
    persons_indeterminate: int


_SUMS = (
    "sum(r.persons_with)::bigint AS persons_with, sum(r.persons_without)::bigint AS persons_without, "
    "sum(r.persons_indeterminate)::bigint AS persons_indeterminate"
)
_LOCAL = "(r.bucket_start AT TIME ZONE coalesce(s.timezone, 'UTC'))"


def _where(filters: Filters, params: dict[str, Any], *, prefix: str = "r") -> str:
    clauses = []
    for column in ("site_id", "zone_id", "camera_id"):
        value = getattr(filters, column)
        if value is not None:
            clauses.append(f"{prefix}.{column} = :{column}")
            params[column] = value
    return "".join(f" AND {clause}" for clause in clauses)


def trend_statement(
    *, start: datetime, end: datetime, bucket: Bucket, filters: Filters, equipment_type: str
) -> tuple[str, dict[str, Any]]:
    """The trend query, exposed so tests can EXPLAIN exactly what the API runs."""
    params: dict[str, Any] = {"unit": str(bucket), "start": start, "end": end, "equipment_type": equipment_type}
    sql = (
        f"SELECT date_trunc(:unit, {_LOCAL}) AS bucket_local, {_SUMS} "
        "FROM reporting_rollup_15m r LEFT JOIN reporting_sites s ON s.site_id = r.site_id "
        "WHERE r.equipment_type = :equipment_type AND r.bucket_start >= :start AND r.bucket_start < :end"
        f"{_where(filters, params)} GROUP BY 1 ORDER BY 1"
    )
    return sql, params


class AggregateQueries:
    """ReportingRepository's aggregate reads (it holds the engine)."""

    _engine: AsyncEngine

    async def trend(
        self, *, start: datetime, end: datetime, bucket: Bucket, filters: Filters, equipment_type: str = ALL_TYPES
    ) -> list[tuple[datetime, Counts]]:
        sql, params = trend_statement(
            start=start, end=end, bucket=bucket, filters=filters, equipment_type=equipment_type
        )
        async with self._engine.connect() as conn:
            result = await conn.execute(sa.text(sql), params)
            return [(row.bucket_local, _counts(row)) for row in result]

    async def breakdown(
        self, *, by: Dimension, start: datetime, end: datetime, filters: Filters, equipment_type: str = ALL_TYPES
    ) -> list[tuple[dict[str, str], Counts]]:
        params: dict[str, Any] = {"start": start, "end": end}
        keys = {
            Dimension.SITE: ["site_id"],
            Dimension.ZONE: ["site_id", "zone_id"],
            Dimension.CAMERA: ["site_id", "zone_id", "camera_id"],
            Dimension.EQUIPMENT_TYPE: ["equipment_type"],
        }[by]
        if by is Dimension.EQUIPMENT_TYPE:
            type_clause = "r.equipment_type <> :all"
            params["all"] = ALL_TYPES
        else:
            type_clause = "r.equipment_type = :equipment_type"
            params["equipment_type"] = equipment_type
        columns = ", ".join(f"r.{key}" for key in keys)
        sql = (
            f"SELECT {columns}, {_SUMS} FROM reporting_rollup_15m r "
            f"WHERE {type_clause} AND r.bucket_start >= :start AND r.bucket_start < :end{_where(filters, params)} "
            f"GROUP BY {columns} ORDER BY {columns}"
        )
        async with self._engine.connect() as conn:
            result = await conn.execute(sa.text(sql), params)
            return [({key: getattr(row, key) for key in keys}, _counts(row)) for row in result]

    async def top_locations(
        self, *, start: datetime, end: datetime, filters: Filters, limit: int, equipment_type: str = ALL_TYPES
    ) -> list[tuple[dict[str, str], Counts]]:
        params: dict[str, Any] = {"start": start, "end": end, "equipment_type": equipment_type, "limit": limit}
        sql = (
            f"SELECT r.site_id, r.zone_id, r.camera_id, {_SUMS} FROM reporting_rollup_15m r "
            "WHERE r.equipment_type = :equipment_type AND r.bucket_start >= :start AND r.bucket_start < :end"
            f"{_where(filters, params)} GROUP BY r.site_id, r.zone_id, r.camera_id "
            "HAVING sum(r.persons_without) > 0 "
            "ORDER BY sum(r.persons_without) DESC, r.site_id, r.zone_id, r.camera_id LIMIT :limit"
        )
        async with self._engine.connect() as conn:
            result = await conn.execute(sa.text(sql), params)
            return [
                ({"site_id": row.site_id, "zone_id": row.zone_id, "camera_id": row.camera_id}, _counts(row))
                for row in result
            ]

    async def top_hours(
        self, *, start: datetime, end: datetime, filters: Filters, limit: int, equipment_type: str = ALL_TYPES
    ) -> list[tuple[int, Counts]]:
        """Violations by local hour of day (0..23) in each site's own time zone."""
        params: dict[str, Any] = {"start": start, "end": end, "equipment_type": equipment_type, "limit": limit}
        sql = (
            f"SELECT extract(hour FROM {_LOCAL})::int AS hour, {_SUMS} "
            "FROM reporting_rollup_15m r LEFT JOIN reporting_sites s ON s.site_id = r.site_id "
            "WHERE r.equipment_type = :equipment_type AND r.bucket_start >= :start AND r.bucket_start < :end"
            f"{_where(filters, params)} GROUP BY 1 HAVING sum(r.persons_without) > 0 "
            "ORDER BY sum(r.persons_without) DESC, 1 LIMIT :limit"
        )
        async with self._engine.connect() as conn:
            result = await conn.execute(sa.text(sql), params)
            return [(row.hour, _counts(row)) for row in result]

    async def exposure(self, **query: Any) -> tuple[list[ExposureRow], list[CameraCoverage]]:
        """Person-minutes observed / in violation (adapters.exposure); keyword arguments as there."""
        return await exposure(self._engine, **query)


def _counts(row: Any) -> Counts:
    return Counts(int(row.persons_with or 0), int(row.persons_without or 0), int(row.persons_indeterminate or 0))
