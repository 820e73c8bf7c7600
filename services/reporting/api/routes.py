"""Thin routes of the analyst API: parse, ask the repository, shape the answer."""

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse

from services.reporting.adapters.repository import EXPORT_COLUMNS
from services.reporting.api.deps import (
    PRINTABLE,
    Exporter,
    FiltersDep,
    GlobalAdmin,
    RangeDep,
    Reader,
    Repo,
    SiteWriter,
    TimeRange,
)
from services.reporting.api.headers import attachment
from services.reporting.api.schemas import (
    BreakdownOut,
    BreakdownRow,
    CountsOut,
    CoverageOut,
    ErrorOut,
    ExposureOut,
    ExposureRowOut,
    HourRow,
    IncidentOut,
    IncidentPage,
    InvalidOut,
    LocationRow,
    PrecisionOut,
    PrecisionRow,
    RangeOut,
    RetentionOut,
    SiteIn,
    SiteOut,
    TopHoursOut,
    TopLocationsOut,
    TrendOut,
    TrendPoint,
)
from services.reporting.domain import Bucket, Dimension, InvalidQuery, check_range
from services.reporting.retention import RetentionJob
from shared.access.http import audit_change
from shared.access.roles import Role
from shared.equipment import UnknownEquipment
from shared.logging import get_logger

log = get_logger(__name__)

ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "Not signed in, and no or an unknown bearer token."},
    403: {"model": ErrorOut, "description": "The caller lacks the role this needs on the site it names."},
    422: {"model": InvalidOut, "description": "Invalid query parameters."},
}

router = APIRouter(prefix="/api/v1", responses=ERRORS)

def _equipment(
    request: Request,
    equipment_type: Annotated[
        str,
        Query(
            max_length=64,
            description="'ALL' = the person verdict over every required item, or one equipment type: "
            "HEAD_COVER, FACE_COVER, HAND_COVER or a custom equipment of PPE_CUSTOM_EQUIPMENT (e.g. hi_vis_vest).",
        ),
    ] = "ALL",
) -> str:
    if equipment_type == "ALL":
        return equipment_type
    try:
        request.app.state.catalogue.check([equipment_type], where="equipment_type")
    except UnknownEquipment as exc:
        raise HTTPException(422, str(exc)) from exc
    return equipment_type


EquipmentParam = Annotated[str, Depends(_equipment)]


def _range(window: TimeRange) -> RangeOut:
    return RangeOut(start=window.start, end=window.end)


def _invalid(exc: InvalidQuery) -> HTTPException:
    return HTTPException(422, str(exc))


@router.get("/compliance/trend", response_model=TrendOut, summary="Compliance rate over hour / day / week buckets")
async def trend(
    _: Reader,
    repo: Repo,
    window: RangeDep,
    where: FiltersDep,
    equipment_type: EquipmentParam,
    bucket: Annotated[Bucket, Query(description="Bucket width, in the site's time zone.")] = Bucket.DAY,
) -> TrendOut:
    if window.end > window.start:
        try:
            check_range(window.start, window.end, bucket=bucket)
        except InvalidQuery as exc:
            raise _invalid(exc) from exc
    points = await repo.trend(
        start=window.start, end=window.end, bucket=bucket, filters=where, equipment_type=equipment_type
    )
    timezone = await repo.site_timezone(where.site_id) if where.site_id else "site-local"
    return TrendOut(
        range=_range(window),
        bucket=bucket.value,
        timezone=timezone,
        equipment_type=equipment_type,
        points=[TrendPoint(bucket_local=moment, **CountsOut.of(counts).model_dump()) for moment, counts in points],
    )


@router.get("/compliance/breakdown", response_model=BreakdownOut, summary="Compliance by site, zone, camera or type")
async def breakdown(
    _: Reader,
    repo: Repo,
    window: RangeDep,
    where: FiltersDep,
    equipment_type: EquipmentParam,
    by: Annotated[Dimension, Query(description="Grouping dimension.")] = Dimension.SITE,
) -> BreakdownOut:
    rows = await repo.breakdown(by=by, start=window.start, end=window.end, filters=where, equipment_type=equipment_type)
    return BreakdownOut(
        range=_range(window),
        by=by.value,
        rows=[BreakdownRow(**keys, **CountsOut.of(counts).model_dump()) for keys, counts in rows],
    )


@router.get(
    "/compliance/exposure",
    response_model=ExposureOut,
    summary="Person-minutes observed and in violation (each frame weighted by the time to the camera's next)",
)
async def exposure_route(
    _: Reader,
    repo: Repo,
    window: RangeDep,
    where: FiltersDep,
    request: Request,
    equipment_type: EquipmentParam,
    by: Annotated[Dimension, Query(description="Grouping dimension.")] = Dimension.SITE,
) -> ExposureOut:
    cap_s = float(request.app.state.exposure_cap_s)
    rows, coverage = await repo.exposure(
        by=by.value,
        start=window.start,
        end=window.end,
        cap_s=cap_s,
        site_id=where.site_id,
        zone_id=where.zone_id,
        camera_id=where.camera_id,
        equipment_type=equipment_type,
    )
    return ExposureOut(
        range=_range(window),
        by=by.value,
        cap_s=cap_s,
        rows=[
            ExposureRowOut(
                **row.keys,
                person_minutes_observed=round(row.person_minutes_observed, 4),
                person_minutes_with=round(row.person_minutes_with, 4),
                person_minutes_without=round(row.person_minutes_without, 4),
                person_minutes_indeterminate=round(row.person_minutes_indeterminate, 4),
                exposure_compliance_rate=_rate(row.person_minutes_with, row.person_minutes_without),
                per_frame_compliance_rate=_rate(row.persons_with, row.persons_without),
            )
            for row in rows
        ],
        coverage=[
            CoverageOut(
                site_id=c.site_id,
                camera_id=c.camera_id,
                frames=c.frames,
                minutes_observed=round(c.minutes_observed, 4),
                minutes_not_observed=round(c.minutes_not_observed, 4),
            )
            for c in coverage
        ],
    )


def _rate(with_: float, without: float) -> float | None:
    return None if with_ + without == 0 else with_ / (with_ + without)


@router.get("/violations/top-locations", response_model=TopLocationsOut, summary="Cameras with the most violations")
async def top_locations(
    _: Reader,
    repo: Repo,
    window: RangeDep,
    where: FiltersDep,
    equipment_type: EquipmentParam,
    limit: Annotated[int, Query(ge=1, le=500, description="Most rows returned.")] = 10,
) -> TopLocationsOut:
    rows = await repo.top_locations(
        start=window.start, end=window.end, filters=where, limit=limit, equipment_type=equipment_type
    )
    return TopLocationsOut(
        range=_range(window), rows=[LocationRow(**keys, **CountsOut.of(c).model_dump()) for keys, c in rows]
    )


@router.get("/violations/top-hours", response_model=TopHoursOut, summary="Local hours of day with most violations")
async def top_hours(
    _: Reader,
    repo: Repo,
    window: RangeDep,
    where: FiltersDep,
    equipment_type: EquipmentParam,
    limit: Annotated[int, Query(ge=1, le=24, description="Most rows returned.")] = 24,
) -> TopHoursOut:
    rows = await repo.top_hours(
        start=window.start, end=window.end, filters=where, limit=limit, equipment_type=equipment_type
    )
    return TopHoursOut(range=_range(window), rows=[HourRow(hour=h, **CountsOut.of(c).model_dump()) for h, c in rows])


@router.get("/incidents", response_model=IncidentPage, summary="Incidents with filters and cursor pagination")
async def list_incidents(
    _: Reader,
    repo: Repo,
    where: FiltersDep,
    status_: Annotated[
        Literal["open", "updated", "resolved"] | None, Query(alias="status", description="Only this status.")
    ] = None,
    severity: Annotated[Literal["info", "warning", "critical"] | None, Query(description="Only this severity.")] = None,
    start: Annotated[datetime | None, Query(description="Started at or after (with UTC offset).")] = None,
    end: Annotated[datetime | None, Query(description="Started before (with UTC offset).")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=512, pattern=PRINTABLE, description="next_cursor of the previous page.")
    ] = None,
) -> IncidentPage:
    for moment in (start, end):
        if moment is not None and moment.tzinfo is None:
            raise HTTPException(422, "start and end need a UTC offset")
    try:
        rows, next_cursor = await repo.list_incidents(
            filters=where, start=start, end=end, status=status_, severity=severity, limit=limit, cursor=cursor
        )
    except InvalidQuery as exc:
        raise _invalid(exc) from exc
    return IncidentPage(items=[IncidentOut(**row) for row in rows], next_cursor=next_cursor)


@router.get("/precision", response_model=PrecisionOut, summary="Measured alert precision per camera and site")
async def precision(_: Reader, repo: Repo, window: RangeDep, where: FiltersDep) -> PrecisionOut:
    """Of the incidents that started in the range, what reviewers said: precision = confirmed / reviewed."""
    cameras = [_precision_row(row["site_id"], row["camera_id"], row) for row in
               await repo.precision(start=window.start, end=window.end, filters=where)]
    totals: dict[str, dict[str, int]] = {}
    for row in cameras:
        total = totals.setdefault(row.site_id, {"incidents": 0, "reviewed": 0, "confirmed": 0})
        for key in total:
            total[key] += getattr(row, key)
    sites = [_precision_row(site, None, counts) for site, counts in sorted(totals.items())]
    return PrecisionOut(range=_range(window), sites=sites, cameras=cameras)


def _precision_row(site_id: str, camera_id: str | None, counts: dict[str, int]) -> PrecisionRow:
    reviewed, confirmed = int(counts["reviewed"]), int(counts["confirmed"])
    return PrecisionRow(site_id=site_id, camera_id=camera_id, incidents=int(counts["incidents"]), reviewed=reviewed,
                        confirmed=confirmed, false_positives=reviewed - confirmed,
                        precision=round(confirmed / reviewed, 4) if reviewed else None)


@router.get(
    "/export/events.csv",
    summary="Person events as CSV (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "Columns: "
            + ", ".join(EXPORT_COLUMNS[:-1])
            + ", then <name>, <name>_confidence per custom equipment of PPE_CUSTOM_EQUIPMENT"}},
)
async def export_events(
    _: Exporter, repo: Repo, window: RangeDep, where: FiltersDep, request: Request
) -> StreamingResponse:
    custom = sorted(request.app.state.catalogue.custom)

    async def body() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(csv_header(custom))
        yield _take(buffer)
        async for chunk in repo.stream_events(start=window.start, end=window.end, filters=where):
            writer.writerows(_csv_row(row, custom) for row in chunk)
            yield _take(buffer)

    name = f"person-events-{window.start:%Y%m%dT%H%M}-{window.end:%Y%m%dT%H%M}.csv"
    return StreamingResponse(
        body(), media_type="text/csv", headers=attachment(name)
    )


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def csv_header(custom: list[str]) -> list[str]:
    """The stored columns, with the custom-equipment object spread into <name>, <name>_confidence per name."""
    return [*EXPORT_COLUMNS[:-1], *(column for name in custom for column in (name, f"{name}_confidence"))]


def _csv_row(row: tuple[object, ...], custom: list[str]) -> list[object]:
    *plain, equipment = row
    outcomes: dict[str, dict[str, object]] = equipment if isinstance(equipment, dict) else {}
    spread = [
        value
        for name in custom
        for value in (outcomes.get(name, {}).get("outcome"), outcomes.get(name, {}).get("confidence"))
    ]
    return [
        value.astimezone(UTC).isoformat() if isinstance(value, datetime) else ("" if value is None else value)
        for value in [*plain, *spread]
    ]


@router.get("/sites", response_model=list[SiteOut], summary="Sites with a configured time zone")
async def list_sites(who: Reader, repo: Repo) -> list[SiteOut]:
    sites = who.sites(Role.VIEWER)
    return [SiteOut(**row) for row in await repo.list_sites() if sites is None or row["site_id"] in sites]


@router.put("/sites/{site_id}", response_model=SiteOut, summary="Set a site's time zone (admin)")
async def put_site(
    site_id: Annotated[
        str, Path(min_length=1, max_length=128, pattern=PRINTABLE, description="Site id as cameras report it.")
    ],
    body: SiteIn,
    who: SiteWriter,
    repo: Repo,
    request: Request,
) -> SiteOut:
    try:
        await repo.set_site_timezone(site_id=site_id, timezone=body.timezone)
    except InvalidQuery as exc:
        raise _invalid(exc) from exc
    log.info("site time zone set", site_id=site_id, timezone=body.timezone)
    await audit_change(request.app.state.access, who, "site.timezone", site_id=site_id, target=f"site:{site_id}",
                       details={"timezone": body.timezone})
    return next(SiteOut(**row) for row in await repo.list_sites() if row["site_id"] == site_id)


@router.post("/retention/run", response_model=RetentionOut, summary="Run the retention purge now (admin)")
async def run_retention(request: Request, who: GlobalAdmin) -> RetentionOut:
    job: RetentionJob = request.app.state.retention
    now = datetime.now(UTC)
    result = await job.run_once(now=now)
    await audit_change(request.app.state.access, who, "retention.run", site_id=None, target="retention",
                       details={"person_events": result.person_events, "incidents": result.incidents})
    return RetentionOut(
        cutoff=job.cutoff(now),
        retention_days=job.retention_days,
        person_events=result.person_events,
        frames=result.frames,
        rollup_rows=result.rollup_rows,
        incidents=result.incidents,
    )
