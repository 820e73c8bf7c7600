"""Exposure-weighted compliance: person-minutes observed and in violation, from the person events.

Each frame's observations stand for the time until the camera's next frame, capped at REPORTING_EXPOSURE_CAP_S
(and at the range end). A gap longer than the cap is camera time *not observed*: it counts neither as compliant
nor as a violation. Reads the event table of the range (index (site_id, captured_at)), not the rollup.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

GROUPS: dict[str, list[str]] = {
    "site": ["site_id"],
    "zone": ["site_id", "zone_id"],
    "camera": ["site_id", "zone_id", "camera_id"],
    "equipment_type": ["equipment_type"],
}


@dataclass(frozen=True)
class ExposureRow:
    keys: dict[str, str]
    person_minutes_observed: float
    person_minutes_with: float
    person_minutes_without: float
    person_minutes_indeterminate: float
    persons_with: int
    persons_without: int


@dataclass(frozen=True)
class CameraCoverage:
    site_id: str
    camera_id: str
    frames: int
    minutes_observed: float
    minutes_not_observed: float


_FRAMES = (
    "WITH f AS (SELECT frame_id, site_id, camera_id, captured_at, "
    "LEAST(EXTRACT(EPOCH FROM (coalesce(lead(captured_at) OVER (PARTITION BY camera_id ORDER BY captured_at), "
    "CAST(:end AS timestamptz)) - captured_at)), :cap) AS weight_s "
    "FROM reporting_frames WHERE captured_at >= :start AND captured_at < :end{frame_where}) "
)
_TYPES = (
    "CROSS JOIN LATERAL (SELECT 'ALL' AS equipment_type, e.outcome AS outcome "
    "UNION ALL SELECT 'HEAD_COVER', e.head_cover WHERE e.head_cover IS NOT NULL "
    "UNION ALL SELECT 'FACE_COVER', e.face_cover WHERE e.face_cover IS NOT NULL "
    "UNION ALL SELECT 'HAND_COVER', e.hand_cover WHERE e.hand_cover IS NOT NULL "
    "UNION ALL SELECT key, value->>'outcome' FROM jsonb_each(coalesce(e.equipment, '{}'::jsonb))) t "
)


async def exposure(
    engine: AsyncEngine,
    *,
    by: str,
    start: datetime,
    end: datetime,
    cap_s: float,
    site_id: str | None = None,
    zone_id: str | None = None,
    camera_id: str | None = None,
    equipment_type: str = "ALL",
) -> tuple[list[ExposureRow], list[CameraCoverage]]:
    params: dict[str, Any] = {"start": start, "end": end, "cap": cap_s, "equipment_type": equipment_type}
    frame_where = ""
    for name, value in (("site_id", site_id), ("camera_id", camera_id)):
        if value is not None:
            frame_where += f" AND {name} = :{name}"
            params[name] = value
    event_where = " AND e.zone_id = :zone_id" if zone_id is not None else ""
    if zone_id is not None:
        params["zone_id"] = zone_id
    keys = GROUPS[by]
    columns = ", ".join(f"t.{k}" if k == "equipment_type" else f"e.{k}" for k in keys)
    type_filter = "t.equipment_type <> 'ALL'" if by == "equipment_type" else "t.equipment_type = :equipment_type"
    sql = (
        _FRAMES.format(frame_where=frame_where)
        + f"SELECT {columns}, sum(f.weight_s) AS observed_s, "
        "coalesce(sum(f.weight_s) FILTER (WHERE t.outcome = 'with'), 0) AS with_s, "
        "coalesce(sum(f.weight_s) FILTER (WHERE t.outcome = 'without'), 0) AS without_s, "
        "coalesce(sum(f.weight_s) FILTER (WHERE t.outcome = 'indeterminate'), 0) AS indeterminate_s, "
        "count(*) FILTER (WHERE t.outcome = 'with') AS n_with, "
        "count(*) FILTER (WHERE t.outcome = 'without') AS n_without "
        "FROM f JOIN reporting_person_events e ON e.frame_id = f.frame_id "
        + _TYPES
        + f"WHERE {type_filter}{event_where} GROUP BY {columns} ORDER BY {columns}"
    )
    coverage_sql = (
        _FRAMES.format(frame_where=frame_where)
        + "SELECT site_id, camera_id, count(*) AS frames, sum(weight_s) AS observed_s FROM f "
        "GROUP BY site_id, camera_id ORDER BY site_id, camera_id"
    )
    range_s = (end - start).total_seconds()
    async with engine.connect() as conn:
        rows = [
            ExposureRow(
                keys={k: getattr(r, k) for k in keys},
                person_minutes_observed=float(r.observed_s) / 60,
                person_minutes_with=float(r.with_s) / 60,
                person_minutes_without=float(r.without_s) / 60,
                person_minutes_indeterminate=float(r.indeterminate_s) / 60,
                persons_with=int(r.n_with),
                persons_without=int(r.n_without),
            )
            for r in await conn.execute(sa.text(sql), params)
        ]
        coverage = [
            CameraCoverage(
                site_id=r.site_id,
                camera_id=r.camera_id,
                frames=int(r.frames),
                minutes_observed=float(r.observed_s) / 60,
                minutes_not_observed=max(0.0, range_s - float(r.observed_s)) / 60,
            )
            for r in await conn.execute(sa.text(coverage_sql), params)
        ]
    return rows, coverage
