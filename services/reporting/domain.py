"""Rules of the reporting service, no I/O: anonymised person events from a FrameAnalyzed, time buckets,
compliance rates.

Anonymisation: a person event keeps the frame id, the person's index inside that one response (Rekognition's
`Id`, meaningless across frames), the camera / site / zone, the capture time and the PPE outcome per
required type with its confidence. No image bytes, no bounding boxes, no face data, no S3 keys.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.contracts import FrameAnalyzed
from shared.equipment import Catalogue, TypeOutcome, default_custom_equipment, judge_person
from shared.rekognition import EquipmentType, ProtectiveEquipmentPerson, Verdict
from shared.verdicts import camera_requirement, judge_frame

DEFAULT_CATALOGUE = Catalogue(default_custom_equipment())

# Rollup granularity. Every real time zone's UTC offset is a multiple of 15 minutes, so a 15-minute UTC
# bucket always lies inside one local hour / day / week of any site: local buckets are exact sums.
ROLLUP_MINUTES = 15
ROLLUP_STEP = timedelta(minutes=ROLLUP_MINUTES)

# Rollup rows keyed by this pseudo type hold the person-level verdict (all required types together).
ALL_TYPES = "ALL"

# Rekognition's types have their own columns; custom equipment (e.g. hi_vis_vest) goes to the `equipment` JSONB.
EQUIPMENT_COLUMNS: dict[str, str] = {
    EquipmentType.HEAD_COVER.value: "head_cover",
    EquipmentType.FACE_COVER.value: "face_cover",
    EquipmentType.HAND_COVER.value: "hand_cover",
}


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


class Dimension(StrEnum):
    SITE = "site"
    ZONE = "zone"
    CAMERA = "camera"
    EQUIPMENT_TYPE = "equipment_type"


class InvalidQuery(ValueError):
    """A query parameter combination the API refuses (answered as 422 with this message)."""


@dataclass(frozen=True)
class PersonEvent:
    frame_id: str
    person_index: int
    camera_id: str
    site_id: str
    zone_id: str
    captured_at: datetime
    outcome: Verdict
    person_confidence: float
    per_type: dict[str, TypeOutcome]  # only the required items (Rekognition types and custom equipment)


@dataclass(frozen=True)
class FrameRecord:
    frame_id: str
    camera_id: str
    site_id: str
    zone_id: str
    captured_at: datetime
    analyzed_at: datetime
    required_types: tuple[str, ...]
    min_confidence: float
    persons: tuple[PersonEvent, ...]


def type_outcome(person: ProtectiveEquipmentPerson, equipment: EquipmentType, min_confidence: float) -> TypeOutcome:
    """One person's outcome for one Rekognition type (shared.equipment.judge_person with only that type)."""
    outcome = judge_person(person, [], required=[equipment], min_confidence=min_confidence, catalogue=DEFAULT_CATALOGUE)
    return outcome.per_type[str(equipment)]


def frame_record(payload: FrameAnalyzed, catalogue: Catalogue = DEFAULT_CATALOGUE) -> FrameRecord:
    """Person events of a frame, judged by `shared.verdicts.judge_frame` exactly as the notifier judges them.

    Persons standing in a polygon zone are judged by that zone's requirement and reported under its id as
    their zone; the others by the frame's requirement under the camera's zone (or left out: `outside: ignore`).
    """
    context = payload.context
    default = camera_requirement(payload)
    persons = tuple(
        PersonEvent(
            frame_id=context.frame_id,
            person_index=judged.person.Id,
            camera_id=context.camera_id,
            site_id=context.site_id,
            zone_id=judged.zone_id,
            captured_at=context.captured_at,
            outcome=judged.outcome.verdict,
            person_confidence=judged.person.Confidence,
            per_type=judged.outcome.per_type,
        )
        for judged in judge_frame(payload, default=default, catalogue=catalogue)
    )
    return FrameRecord(
        frame_id=context.frame_id,
        camera_id=context.camera_id,
        site_id=context.site_id,
        zone_id=context.zone_id,
        captured_at=context.captured_at,
        analyzed_at=payload.analyzed_at,
        required_types=default.required,
        min_confidence=default.min_confidence,
        persons=persons,
    )


def rollup_bucket(moment: datetime) -> datetime:
    """Start of the 15-minute UTC bucket holding `moment` (aware in, aware out)."""
    return moment - timedelta(
        minutes=moment.minute % ROLLUP_MINUTES, seconds=moment.second, microseconds=moment.microsecond
    )


RollupKey = tuple[datetime, str, str, str, str]  # bucket_start, site, zone, camera, equipment type or ALL


def rollup_counts(*records: FrameRecord) -> dict[RollupKey, dict[Verdict, int]]:
    """What frames add to the rollup, sorted by key so concurrent upserts lock rows in one order."""
    counts: dict[RollupKey, dict[Verdict, int]] = {}
    for person in (person for record in records for person in record.persons):
        place = (rollup_bucket(person.captured_at), person.site_id, person.zone_id, person.camera_id)
        keys: list[tuple[RollupKey, Verdict]] = [((*place, ALL_TYPES), person.outcome)]
        keys += [((*place, str(equipment)), result.outcome) for equipment, result in person.per_type.items()]
        for key, outcome in keys:
            row = counts.setdefault(key, {"with": 0, "without": 0, "indeterminate": 0})
            row[outcome] += 1
    return dict(sorted(counts.items()))


def compliance_rate(compliant: int, violating: int) -> float | None:
    """Share of decided person observations that had the required PPE; indeterminate ones are left out."""
    decided = compliant + violating
    return None if decided == 0 else compliant / decided


def widen_to_rollup(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Ranges are answered at rollup resolution: start rounds down, end rounds up to 15-minute boundaries."""
    floor_end = rollup_bucket(end)
    return rollup_bucket(start), floor_end if floor_end == end else floor_end + ROLLUP_STEP


def check_range(start: datetime, end: datetime, *, bucket: Bucket | None = None, max_buckets: int = 5000) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidQuery("start and end need a UTC offset, e.g. 2026-11-01T00:00:00Z")
    if end <= start:
        raise InvalidQuery("end must be after start")
    if bucket is not None:
        width = {Bucket.HOUR: timedelta(hours=1), Bucket.DAY: timedelta(days=1), Bucket.WEEK: timedelta(weeks=1)}
        if (end - start) / width[bucket] > max_buckets:
            raise InvalidQuery(f"more than {max_buckets} {bucket} buckets: use a coarser bucket or a shorter range")
