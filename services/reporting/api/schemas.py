"""Request and response schemas of the analyst API (every field described, for the OpenAPI document)."""

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.reporting.adapters.repository import Counts
from services.reporting.domain import compliance_rate
from shared.contracts import ZoneLayout


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CountsOut(Schema):
    persons_with: int = Field(description="Person observations with every required PPE item.")
    persons_without: int = Field(description="Person observations missing at least one required PPE item.")
    persons_indeterminate: int = Field(description="Person observations the model could not decide.")
    compliance_rate: float | None = Field(
        description="persons_with / (persons_with + persons_without), 0..1; null when nothing was decided."
    )

    @classmethod
    def of(cls, counts: Counts) -> "CountsOut":
        return cls(
            persons_with=counts.persons_with,
            persons_without=counts.persons_without,
            persons_indeterminate=counts.persons_indeterminate,
            compliance_rate=compliance_rate(counts.persons_with, counts.persons_without),
        )


class RangeOut(Schema):
    start: AwareDatetime = Field(description="Effective start (inclusive), rounded down to a 15-minute boundary, UTC.")
    end: AwareDatetime = Field(description="Effective end (exclusive), rounded up to a 15-minute boundary, UTC.")


class TrendPoint(CountsOut):
    bucket_local: datetime = Field(
        description="Start of the hour / day / week bucket as local wall-clock time of the site (no offset)."
    )


class TrendOut(Schema):
    range: RangeOut = Field(description="Time range the figures cover.")
    bucket: Literal["hour", "day", "week"] = Field(description="Bucket width; weeks start on Monday.")
    timezone: str = Field(description="IANA zone of the buckets, or 'site-local' when several sites are mixed.")
    equipment_type: str = Field(description="'ALL' (the person verdict) or one equipment type.")
    points: list[TrendPoint] = Field(description="One point per bucket that has observations, in time order.")


class BreakdownRow(CountsOut):
    site_id: str | None = Field(default=None, description="Site, when grouped by site, zone or camera.")
    zone_id: str | None = Field(default=None, description="Zone, when grouped by zone or camera.")
    camera_id: str | None = Field(default=None, description="Camera, when grouped by camera.")
    equipment_type: str | None = Field(default=None, description="Equipment type, when grouped by it.")


class BreakdownOut(Schema):
    range: RangeOut = Field(description="Time range the figures cover.")
    by: Literal["site", "zone", "camera", "equipment_type"] = Field(description="Grouping dimension.")
    rows: list[BreakdownRow] = Field(description="One row per group, ordered by the group's keys.")


class ExposureRowOut(Schema):
    site_id: str | None = Field(default=None, description="Site, when grouped by site, zone or camera.")
    zone_id: str | None = Field(default=None, description="Zone (polygon zone or camera zone), when grouped by it.")
    camera_id: str | None = Field(default=None, description="Camera, when grouped by camera.")
    equipment_type: str | None = Field(default=None, description="Equipment type, when grouped by it.")
    person_minutes_observed: float = Field(description="Sum over person observations of the time each stands for.")
    person_minutes_with: float = Field(description="Person-minutes with every required item.")
    person_minutes_without: float = Field(description="Person-minutes in violation.")
    person_minutes_indeterminate: float = Field(description="Person-minutes the model could not decide.")
    exposure_compliance_rate: float | None = Field(
        description="with / (with + without) in person-minutes; null when nothing was decided."
    )
    per_frame_compliance_rate: float | None = Field(
        description="The same rate counting each person observation once (as /compliance/*)."
    )


class CoverageOut(Schema):
    site_id: str = Field(description="Site of the camera.")
    camera_id: str = Field(description="Camera with at least one frame in the range.")
    frames: int = Field(description="Frames stored in the range.")
    minutes_observed: float = Field(description="Camera time covered by frames (each up to the cap).")
    minutes_not_observed: float = Field(description="Camera time with no frame: neither compliant nor violating.")


class ExposureOut(Schema):
    range: RangeOut = Field(description="Time range the figures cover.")
    by: Literal["site", "zone", "camera", "equipment_type"] = Field(description="Grouping dimension.")
    cap_s: float = Field(description="Longest time one frame stands for (REPORTING_EXPOSURE_CAP_S).")
    rows: list[ExposureRowOut] = Field(description="One row per group.")
    coverage: list[CoverageOut] = Field(description="Per camera: time observed and not observed.")


class LocationRow(CountsOut):
    site_id: str = Field(description="Site of the camera.")
    zone_id: str = Field(description="Zone of the camera.")
    camera_id: str = Field(description="Camera.")


class TopLocationsOut(Schema):
    range: RangeOut = Field(description="Time range the figures cover.")
    rows: list[LocationRow] = Field(description="Cameras with violations, most violations first.")


class HourRow(CountsOut):
    hour: int = Field(ge=0, le=23, description="Local hour of day (0..23) in each site's own time zone.")


class TopHoursOut(Schema):
    range: RangeOut = Field(description="Time range the figures cover.")
    rows: list[HourRow] = Field(description="Hours of day with violations, most violations first.")


class IncidentOut(Schema):
    incident_id: str = Field(description="Stable id of the incident (from the notifier).")
    status: Literal["open", "updated", "resolved"] = Field(description="Latest known status.")
    site_id: str = Field(description="Site of the camera.")
    zone_id: str = Field(description="Zone of the person: their polygon zone, else the camera's zone.")
    camera_id: str = Field(description="Camera the incident was seen on.")
    missing_equipment: list[str] = Field(
        description="Required PPE the person was missing: Rekognition types or custom equipment (e.g. hi_vis_vest)."
    )
    severity: Literal["info", "warning", "critical"] = Field(description="Severity given by the notifier's rule.")
    started_at: AwareDatetime = Field(description="First frame in violation (UTC).")
    last_seen_at: AwareDatetime = Field(description="Latest frame in violation (UTC).")
    resolved_at: AwareDatetime | None = Field(description="When the violation ended, if it did.")
    frame_id: str = Field(description="Frame of the latest change (an id, not a link to the image).")
    max_confidence: float = Field(description="Highest confidence of the violation so far, 0..100.")
    changed_at: AwareDatetime = Field(description="When the notifier emitted the latest change.")
    version: int = Field(description="The notifier's change number of the latest change (0 = not versioned).")
    recorded_at: AwareDatetime = Field(description="When reporting stored the latest change (export watermark).")
    acknowledged_at: AwareDatetime | None = Field(default=None, description="When an operator acknowledged it.")
    acknowledged_by: str | None = Field(default=None, description="Who acknowledged it (user:<name>).")
    resolved_by: str | None = Field(default=None, description="Who resolved it by hand (null: the camera saw it end).")
    review: Literal["confirmed", "false_positive"] | None = Field(default=None, description="The reviewer's verdict.")
    review_reason: str | None = Field(default=None, description="Why it was marked a false positive.")


class PrecisionRow(Schema):
    site_id: str = Field(description="Site of the camera (or of the total).")
    camera_id: str | None = Field(description="null on the site's total row.")
    incidents: int = Field(description="Incidents that started in the range.")
    reviewed: int = Field(description="Of those, how many a reviewer confirmed or marked a false positive.")
    confirmed: int = Field(description="Confirmed real violations.")
    false_positives: int = Field(description="Marked false positives.")
    precision: float | None = Field(description="confirmed / reviewed; null when nothing was reviewed.")


class PrecisionOut(Schema):
    range: RangeOut = Field(description="Incidents that started in [start, end).")
    sites: list[PrecisionRow] = Field(description="One total row per site.")
    cameras: list[PrecisionRow] = Field(description="One row per camera with incidents in the range.")


class IncidentPage(Schema):
    items: list[IncidentOut] = Field(description="Incidents, newest start first.")
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class SiteIn(Schema):
    timezone: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$", description="IANA time zone, e.g. Europe/Berlin."
    )


class SiteOut(Schema):
    site_id: str = Field(description="Site id as cameras report it.")
    timezone: str = Field(description="IANA time zone used for the site's buckets.")
    updated_at: AwareDatetime = Field(description="When the time zone was last set.")


class RetentionOut(Schema):
    cutoff: AwareDatetime = Field(description="Everything captured before this was purged (UTC).")
    retention_days: int = Field(description="Configured retention in days.")
    person_events: int = Field(description="Person events deleted.")
    frames: int = Field(description="Frame rows deleted.")
    rollup_rows: int = Field(description="Rollup rows deleted.")
    incidents: int = Field(description="Incidents deleted (last seen before the cutoff).")


class ErrorOut(Schema):
    detail: str = Field(description="What was wrong and what to do.")


class EquipmentOut(Schema):
    names: list[str] = Field(description="Every equipment name a zone may require: Rekognition's types, then custom.")
    custom: list[str] = Field(description="The custom-label equipment among them (PPE_CUSTOM_EQUIPMENT).")


class EditorCameraOut(Schema):
    camera_id: str = Field(description="Camera id, as registered at ingest.")
    site_id: str = Field(description="Site of the camera.")
    zone_id: str = Field(description="The camera's own zone (persons outside its polygon zones report here).")
    required_ppe: list[str] = Field(description="The camera's required PPE (persons outside every polygon zone).")
    min_confidence: float = Field(description="The camera's MinConfidence.")
    zones: ZoneLayout | None = Field(description="The camera's polygon zones, as ingest stores them; null = none.")


class FieldError(BaseModel):
    """One malformed parameter, as FastAPI reports it."""

    loc: list[str | int] = Field(description="Where: e.g. ['query', 'zone_id'].")
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="Error type, e.g. string_pattern_mismatch.")


class InvalidOut(Schema):
    detail: str | list[FieldError] = Field(
        description="A sentence saying what was wrong (a query the API refuses), or one entry per malformed "
        "parameter (FastAPI's validation: loc, msg, type, and input / ctx where given)."
    )


def error_responses(*, forbidden: str, not_found: str | None = None, unavailable: str | None = None) -> dict[
    int | str, dict[str, object]
]:
    """A router's documented error answers: what 403 / 404 / 503 mean there; 401 and 422 mean the same everywhere."""
    found: dict[int | str, dict[str, object]] = {
        401: {"model": ErrorOut, "description": "Not signed in, and no or an unknown bearer token."},
        403: {"model": ErrorOut, "description": forbidden},
        422: {"model": InvalidOut, "description": "Invalid input: a sentence, or FastAPI's list of field errors."},
    }
    if not_found is not None:
        found[404] = {"model": ErrorOut, "description": not_found}
    if unavailable is not None:
        found[503] = {"model": ErrorOut, "description": unavailable}
    return found
