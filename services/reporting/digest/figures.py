"""The digest's figures, no I/O: the period's window in the site's time zone, and what the incidents say.

A digest covers whole local days: daily = one local day, weekly = seven (the scheduled ones Monday to Sunday).
Every real UTC offset is a multiple of 15 minutes, so local midnights are rollup boundaries and the rollup's
sums are exact for the window.
"""

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from services.reporting.domain import compliance_rate


class Period(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"

    @property
    def days(self) -> int:
        return 1 if self is Period.DAILY else 7


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC: the local days first_day..last_day of the site's time zone."""

    period: Period
    site_id: str
    timezone: str
    first_day: date
    last_day: date
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        if self.period is Period.DAILY:
            return f"{self.first_day:%a %d %b %Y}"
        return f"{self.first_day:%a %d %b} to {self.last_day:%a %d %b %Y}"


def window(period: Period, *, site_id: str, timezone: str, end_day: date) -> Window:
    """The period that ends at the local midnight starting `end_day` (exclusive)."""
    zone = ZoneInfo(timezone)
    first_day = end_day - timedelta(days=period.days)
    start = datetime.combine(first_day, time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(end_day, time(), tzinfo=zone).astimezone(UTC)
    return Window(period, site_id, timezone, first_day, end_day - timedelta(days=1), start, end)


def latest_end_day(period: Period, *, now: datetime, timezone: str, ready_hour: int = 0) -> date:
    """`end_day` of the latest complete period at `now`, once `ready_hour` (local) of its next day has come.

    Weekly periods run Monday to Sunday. The ready hour leaves time for late frames and incident reviews."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    end_day = today if period is Period.DAILY else today - timedelta(days=today.weekday())
    if now < datetime.combine(end_day, time(ready_hour), tzinfo=zone):
        end_day -= timedelta(days=period.days)
    return end_day


@dataclass(frozen=True)
class Compliance:
    """Person counts of one group (a zone, an equipment type, a time bucket, the whole site)."""

    label: str
    persons_with: int
    persons_without: int
    persons_indeterminate: int

    @property
    def rate(self) -> float | None:
        return compliance_rate(self.persons_with, self.persons_without)

    @property
    def observed(self) -> int:
        return self.persons_with + self.persons_without + self.persons_indeterminate


@dataclass(frozen=True)
class IncidentRow:
    """What the digest reads of an incident that started in the window."""

    camera_id: str
    severity: str
    status: str
    started_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    review: str | None


@dataclass(frozen=True)
class Durations:
    """Seconds from an incident's start to an event: how many, median and 90th percentile (nearest rank)."""

    count: int
    median_s: float | None
    p90_s: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> "Durations":
        if not seconds:
            return cls(0, None, None)
        ordered = sorted(seconds)
        return cls(len(ordered), statistics.median(ordered), ordered[math.ceil(0.9 * len(ordered)) - 1])


@dataclass(frozen=True)
class Precision:
    """Reviewers' verdicts: precision = confirmed / reviewed (None when nothing was reviewed)."""

    label: str
    incidents: int
    reviewed: int
    confirmed: int

    @property
    def false_positives(self) -> int:
        return self.reviewed - self.confirmed

    @property
    def precision(self) -> float | None:
        return self.confirmed / self.reviewed if self.reviewed else None


@dataclass(frozen=True)
class Incidents:
    total: int
    by_severity: dict[str, int]
    still_open: int
    unacknowledged: int
    to_acknowledge: Durations
    to_correct: Durations
    precision: Precision
    precision_by_camera: list[Precision] = field(default_factory=list)


def incident_figures(rows: Sequence[IncidentRow], *, site_id: str) -> Incidents:
    """Time to acknowledge: start to the first acknowledgement. Time to correct: start to the end of the
    violation (resolved), false positives left out (nothing was corrected). Precision as `GET /precision`."""
    acknowledge = [_seconds(r.started_at, r.acknowledged_at) for r in rows if r.acknowledged_at is not None]
    correct = [
        _seconds(r.started_at, r.resolved_at)
        for r in rows
        if r.resolved_at is not None and r.status == "resolved" and r.review != "false_positive"
    ]
    severities = {name: sum(1 for r in rows if r.severity == name) for name in ("critical", "warning", "info")}
    cameras = sorted({r.camera_id for r in rows})
    return Incidents(
        total=len(rows),
        by_severity={name: count for name, count in severities.items() if count},
        still_open=sum(1 for r in rows if r.status != "resolved"),
        unacknowledged=sum(1 for r in rows if r.acknowledged_at is None),
        to_acknowledge=Durations.of(acknowledge),
        to_correct=Durations.of(correct),
        precision=_precision(site_id, rows),
        precision_by_camera=[_precision(camera, [r for r in rows if r.camera_id == camera]) for camera in cameras],
    )


def _seconds(start: datetime, end: datetime | None) -> float:
    assert end is not None
    return max(0.0, (end - start).total_seconds())


def _precision(label: str, rows: Sequence[IncidentRow]) -> Precision:
    reviewed = [r for r in rows if r.review is not None]
    return Precision(label, len(rows), len(reviewed), sum(1 for r in reviewed if r.review == "confirmed"))


@dataclass(frozen=True)
class Location:
    camera_id: str
    zone_id: str
    persons_without: int
    rate: float | None


@dataclass(frozen=True)
class Digest:
    """Everything one digest shows; `render` draws it, `adapters.digest_repository` fills it."""

    window: Window
    overall: Compliance
    zones: list[Compliance]
    equipment: list[Compliance]
    trend: list[tuple[datetime, Compliance]]  # local day (weekly) or local hour (daily) buckets
    violations_by_hour: dict[int, int]  # local hour of day -> persons without
    top_locations: list[Location]
    incidents: Incidents
    generated_at: datetime

    @property
    def top_hours(self) -> list[tuple[int, int]]:
        ranked = sorted(self.violations_by_hour.items(), key=lambda item: (-item[1], item[0]))
        return [(hour, count) for hour, count in ranked if count > 0][:5]


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f} %"


def duration(seconds: float | None) -> str:
    """A short human duration: 45 s, 4 min 05 s, 2 h 03 min, 1 d 02 h."""
    if seconds is None:
        return "n/a"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    if total < 86400:
        return f"{total // 3600} h {total % 3600 // 60:02d} min"
    return f"{total // 86400} d {total % 86400 // 3600:02d} h"
