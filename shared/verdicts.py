"""The per-person verdicts of one frame, as notifier and reporting both compute them (one function).

Each person is placed in a zone (shared.zones: foot point, first zone wins) and judged by that zone's required
PPE and MinConfidence; a person outside every zone is judged by the caller's default requirement (the
notifier's rule, reporting's camera requirement) or skipped when the layout says `outside: ignore`. Required
items may be Rekognition types or custom equipment (shared.equipment). No I/O.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from shared.contracts import FrameAnalyzed
from shared.equipment import Catalogue, PersonLabel, PersonOutcome, judge_person
from shared.rekognition import ProtectiveEquipmentPerson
from shared.zones import within_hours, zone_of


@dataclass(frozen=True)
class Requirement:
    required: tuple[str, ...]
    min_confidence: float
    active: bool = True


@dataclass(frozen=True)
class PersonJudgement:
    person: ProtectiveEquipmentPerson
    zone_id: str  # the polygon zone's id, else the frame's (camera's) zone
    in_zone: bool  # True when a polygon zone holds the person
    requirement: Requirement
    outcome: PersonOutcome


def labels_by_person(frame: FrameAnalyzed) -> dict[int, list[PersonLabel]]:
    found: dict[int, list[PersonLabel]] = defaultdict(list)
    for attributed in frame.custom_labels:
        if attributed.person_id is not None:
            found[attributed.person_id].append(PersonLabel(attributed.label.Name, attributed.label.Confidence))
    return found


def camera_requirement(frame: FrameAnalyzed) -> Requirement:
    """What the frame itself says is required (camera default or per-frame override at ingest)."""
    required = [str(t) for t in frame.summarization.RequiredEquipmentTypes] + list(frame.custom_equipment)
    return Requirement(tuple(dict.fromkeys(required)), frame.summarization.MinConfidence)


def judge_frame(
    frame: FrameAnalyzed, *, default: Requirement, catalogue: Catalogue, at: datetime | None = None
) -> list[PersonJudgement]:
    """Every person of the frame that some requirement applies to, in the order of `ppe.Persons`."""
    at = at or frame.context.captured_at
    labels = labels_by_person(frame)
    layout = frame.zones
    judged = []
    for person in frame.ppe.Persons:
        zone = zone_of(person.BoundingBox, layout) if layout is not None and layout.zones else None
        if zone is not None:
            requirement = Requirement(
                tuple(dict.fromkeys(zone.required_equipment)),
                zone.min_confidence,
                within_hours(at, zone.active_from, zone.active_to, zone.timezone),
            )
        elif layout is not None and layout.zones and layout.outside == "ignore":
            continue
        else:
            requirement = default
        outcome = judge_person(
            person,
            labels.get(person.Id, []),
            required=requirement.required,
            min_confidence=requirement.min_confidence,
            catalogue=catalogue,
        )
        judged.append(
            PersonJudgement(
                person=person,
                zone_id=zone.zone_id if zone is not None else frame.context.zone_id,
                in_zone=zone is not None,
                requirement=requirement,
                outcome=outcome,
            )
        )
    return judged
