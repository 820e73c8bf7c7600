"""Notifier data and rules, no I/O: person tracking across frames, incident lifecycle, cooldowns (the rule
itself, RulePolicy, is in services/notifier/policy.py).

Everything here works in *frame time* (the camera's `captured_at`), so a replay of a recorded sequence gives
the same incidents as the live stream did, whichever worker handles which frame.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.notifier.policy import RulePolicy as RulePolicy  # the rule every function here applies
from services.notifier.policy import Severity
from shared import boxes
from shared.contracts import FrameAnalyzed
from shared.equipment import Catalogue
from shared.privacy import privacy_regions
from shared.rekognition import BoundingBox, ProtectiveEquipmentPerson, Verdict
from shared.verdicts import Requirement, judge_frame

IncidentStatus = Literal["open", "updated", "resolved"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Box(_Model):
    left: float
    top: float
    width: float
    height: float

    @classmethod
    def of(cls, box: BoundingBox) -> "Box":
        return cls(left=box.Left, top=box.Top, width=box.Width, height=box.Height)

    @property
    def corners(self) -> boxes.Box:
        """The shared box type (IoU and distances are computed there, once for every service)."""
        return boxes.Box.of_xywh(self.left, self.top, self.width, self.height)

    def iou(self, other: "Box") -> float:
        return self.corners.iou(other.corners)

    def centre_distance(self, other: "Box") -> float:
        return self.corners.centre_distance(other.corners)


class Observation(_Model):
    """One person in one frame, judged against the rule."""

    person_id: int
    box: Box
    verdict: Verdict
    missing: list[str]
    confidence: float
    zone_id: str | None = None  # the person's zone (polygon zone, else the camera's)
    active: bool = True  # whether the requirement judging them is in its active hours


class Track(_Model):
    """One person followed across frames of one camera."""

    track_id: int
    box: Box
    first_seen_at: datetime
    last_seen_at: datetime
    verdicts: list[Verdict] = Field(default_factory=list)
    violation_since: datetime | None = None
    compliant_since: datetime | None = None
    missing: list[str] = Field(default_factory=list)
    incident_id: str | None = None
    zone_id: str | None = None  # zone where the open incident started
    incident_started_at: datetime | None = None
    incident_last_seen_at: datetime | None = None
    max_confidence: float = 0.0
    incident_alerted: bool = False
    last_alert_at: datetime | None = None


class CameraState(_Model):
    """Everything the notifier remembers about one camera; stored as one locked row."""

    tracks: list[Track] = Field(default_factory=list)
    next_track_id: int = 1
    last_alert_at: datetime | None = None
    last_frame_at: datetime | None = None


@dataclass(frozen=True)
class TrackerSettings:
    iou_threshold: float = 0.2
    max_centre_distance: float = 0.15  # as a ratio of the image diagonal-ish unit square
    track_ttl_s: float = 5.0  # a track not seen for this long is gone (its incident resolves)


@dataclass(frozen=True)
class IncidentEvent:
    status: IncidentStatus
    incident_id: str
    track_id: int
    missing: tuple[str, ...]
    severity: Severity
    started_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    max_confidence: float
    alert: bool  # whether channels should be notified
    suppressed_reason: str | None = None
    zone_id: str | None = None  # the person's zone when the incident opened; None = the camera's


@dataclass
class Evaluation:
    state: CameraState
    events: list[IncidentEvent] = field(default_factory=list)


def observe(
    frame: FrameAnalyzed, policy: RulePolicy, catalogue: Catalogue, *, at: datetime | None = None
) -> list[Observation]:
    """Judge every person with their zone's requirement, else the rule's required items and MinConfidence.

    One verdict function for notifier and reporting: shared.verdicts.judge_frame (custom equipment included).
    Persons outside every zone of a layout with `outside: ignore` are not observed at all.
    """
    at = at or frame.context.captured_at
    default = Requirement(tuple(policy.required_equipment), policy.min_confidence, policy.is_active(at))
    return [
        Observation(
            person_id=j.person.Id,
            box=Box.of(j.person.BoundingBox),
            verdict=j.outcome.verdict,
            missing=list(j.outcome.missing),
            confidence=round(j.outcome.confidence, 3),
            zone_id=j.zone_id,
            active=j.requirement.active,
        )
        for j in judge_frame(frame, default=default, catalogue=catalogue, at=at)
    ]


def face_boxes(persons: Sequence[ProtectiveEquipmentPerson]) -> list[Box]:
    """Regions to blur (`shared.privacy.privacy_regions`) as the notifier's boxes."""
    return [Box(left=r.left, top=r.top, width=r.width, height=r.height) for r in privacy_regions(persons)]


def associate(
    tracks: Sequence[Track], observations: Sequence[Observation], settings: TrackerSettings
) -> dict[int, int]:
    """Greedy IoU association (then centre distance) between live tracks and this frame's persons.

    Returns observation index -> track index.
    """
    pairs = sorted(
        ((obs.box.iou(track.box), oi, ti) for oi, obs in enumerate(observations) for ti, track in enumerate(tracks)),
        reverse=True,
    )
    matched: dict[int, int] = {}
    used_tracks: set[int] = set()
    for iou, oi, ti in pairs:
        if iou < settings.iou_threshold:
            break
        if oi in matched or ti in used_tracks:
            continue
        matched[oi] = ti
        used_tracks.add(ti)
    distances = sorted(
        (obs.box.centre_distance(track.box), oi, ti)
        for oi, obs in enumerate(observations)
        for ti, track in enumerate(tracks)
        if oi not in matched and ti not in used_tracks
    )
    for distance, oi, ti in distances:
        if distance > settings.max_centre_distance:
            break
        if oi in matched or ti in used_tracks:
            continue
        matched[oi] = ti
        used_tracks.add(ti)
    return matched


def evaluate(
    state: CameraState,
    observations: Sequence[Observation],
    *,
    at: datetime,
    policy: RulePolicy,
    tracker: TrackerSettings,
    new_incident_id: Callable[[], str],
) -> Evaluation:
    """Advance one camera by one frame: update tracks, open / update / resolve incidents, apply cooldowns."""
    result = Evaluation(state=state.model_copy(deep=True))
    new = result.state
    ttl = timedelta(seconds=tracker.track_ttl_s)

    # Tracks that were not seen for too long have left: their incidents end when they were last seen.
    alive: list[Track] = []
    for track in new.tracks:
        if at - track.last_seen_at > ttl:
            if track.incident_id is not None:
                result.events.append(_resolved(track, policy, resolved_at=track.last_seen_at))
        else:
            alive.append(track)
    new.tracks = alive

    matched = associate(new.tracks, observations, tracker)
    for oi, obs in enumerate(observations):
        if oi in matched:
            track = new.tracks[matched[oi]]
            track.box = obs.box
            track.last_seen_at = at
        else:
            track = Track(track_id=new.next_track_id, box=obs.box, first_seen_at=at, last_seen_at=at)
            new.next_track_id += 1
            new.tracks.append(track)
        track.verdicts = [*track.verdicts, obs.verdict][-policy.window_frames :]
        _advance(track, obs, at=at, active=obs.active, policy=policy, state=new, result=result, new_id=new_incident_id)
    new.last_frame_at = at
    return result


def _advance(
    track: Track,
    obs: Observation,
    *,
    at: datetime,
    active: bool,
    policy: RulePolicy,
    state: CameraState,
    result: Evaluation,
    new_id: Callable[[], str],
) -> None:
    if obs.verdict == "indeterminate":
        return  # neither raises nor clears a violation
    if obs.verdict == "with":
        track.violation_since = None
        track.compliant_since = track.compliant_since or at
        if track.incident_id is not None and (at - track.compliant_since).total_seconds() >= policy.resolve_after_s:
            result.events.append(_resolved(track, policy, resolved_at=at))
        return
    # "without"
    track.compliant_since = None
    track.violation_since = track.violation_since or at
    if track.incident_id is not None:
        track.incident_last_seen_at = at
        track.max_confidence = max(track.max_confidence, obs.confidence)
        if set(obs.missing) != set(track.missing):
            track.missing = list(obs.missing)
            result.events.append(_event("updated", track, policy, alert=False))
        return
    long_enough = (at - track.violation_since).total_seconds() >= policy.min_violation_s
    enough_frames = sum(v == "without" for v in track.verdicts) >= policy.min_frames
    if not (active and long_enough and enough_frames):
        return
    track.incident_id = new_id()
    track.zone_id = obs.zone_id
    track.incident_started_at = track.violation_since
    track.incident_last_seen_at = at
    track.missing = list(obs.missing)
    track.max_confidence = obs.confidence
    reason = _cooldown_reason(track, state, at=at, policy=policy)
    if reason is None:
        track.last_alert_at = at
        state.last_alert_at = at
    track.incident_alerted = reason is None
    result.events.append(_event("open", track, policy, alert=reason is None, suppressed_reason=reason))


def _cooldown_reason(track: Track, state: CameraState, *, at: datetime, policy: RulePolicy) -> str | None:
    if state.last_alert_at is not None and (at - state.last_alert_at).total_seconds() < policy.cooldown_camera_s:
        return f"camera cooldown ({policy.cooldown_camera_s:g} s) since {state.last_alert_at.isoformat()}"
    if track.last_alert_at is not None and (at - track.last_alert_at).total_seconds() < policy.cooldown_person_s:
        return f"person cooldown ({policy.cooldown_person_s:g} s) since {track.last_alert_at.isoformat()}"
    return None


def _event(
    status: IncidentStatus,
    track: Track,
    policy: RulePolicy,
    *,
    alert: bool,
    suppressed_reason: str | None = None,
    resolved_at: datetime | None = None,
) -> IncidentEvent:
    assert track.incident_id is not None and track.incident_started_at is not None
    return IncidentEvent(
        status=status,
        incident_id=track.incident_id,
        track_id=track.track_id,
        missing=tuple(track.missing),
        severity=policy.severity,
        started_at=track.incident_started_at,
        last_seen_at=track.incident_last_seen_at or track.incident_started_at,
        resolved_at=resolved_at,
        max_confidence=track.max_confidence,
        alert=alert,
        suppressed_reason=suppressed_reason,
        zone_id=track.zone_id,
    )


def _resolved(track: Track, policy: RulePolicy, *, resolved_at: datetime) -> IncidentEvent:
    alert = policy.notify_resolved and track.incident_alerted
    event = _event("resolved", track, policy, alert=alert, resolved_at=resolved_at)
    track.incident_id = None
    track.incident_started_at = None
    track.incident_last_seen_at = None
    track.violation_since = None
    track.missing = []
    track.max_confidence = 0.0
    track.incident_alerted = False
    track.zone_id = None
    return event
