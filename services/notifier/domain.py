"""Notifier rules and data, no I/O: rules, person tracking across frames, incident lifecycle, cooldowns.

Everything here works in *frame time* (the camera's `captured_at`), so a replay of a recorded sequence gives
the same incidents as the live stream did, whichever worker handles which frame.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.contracts import FrameAnalyzed, known_timezone
from shared.equipment import Catalogue, EquipmentName
from shared.privacy import privacy_regions
from shared.rekognition import (
    BoundingBox,
    EquipmentType,
    ProtectiveEquipmentPerson,
    Verdict,
)
from shared.verdicts import Requirement, judge_frame
from shared.zones import within_hours

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
IncidentStatus = Literal["open", "updated", "resolved"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EscalationStep(_Model):
    """One step of escalation: who is told when nobody has acknowledged the incident."""

    after_min: float = Field(gt=0, le=10080, description="Minutes after the opening (or the previous step).")
    channel_ids: list[int] = Field(min_length=1, max_length=20, description="Channels this step notifies.")


class RulePolicy(_Model):
    """What a rule decides: which PPE is required and when a violation becomes an alert."""

    required_equipment: list[EquipmentName] = Field(
        default_factory=lambda: [EquipmentType.HEAD_COVER.value],
        min_length=1,
        description="PPE every person must wear: FACE_COVER, HEAD_COVER, HAND_COVER or custom equipment "
        "(PPE_CUSTOM_EQUIPMENT, e.g. hi_vis_vest); unknown names are refused.",
    )
    min_confidence: float = Field(default=80.0, ge=0, le=100, description="MinConfidence for the Summary buckets.")
    min_violation_s: float = Field(
        default=2.0, ge=0, le=3600, description="Seconds (frame time) a person must be in violation before an incident."
    )
    min_frames: int = Field(default=2, ge=1, le=100, description="N: violating frames needed among the last M.")
    window_frames: int = Field(default=3, ge=1, le=100, description="M: how many recent frames N is counted in.")
    resolve_after_s: float = Field(
        default=2.0, ge=0, le=3600, description="Seconds of compliant frames before an incident resolves."
    )
    cooldown_camera_s: float = Field(
        default=60.0, ge=0, le=86400, description="Minimum seconds between alerts of one camera."
    )
    cooldown_person_s: float = Field(
        default=300.0, ge=0, le=86400, description="Minimum seconds between alerts for one tracked person."
    )
    max_alerts_per_hour: int = Field(
        default=30, ge=0, le=10000, description="Per channel; further alerts are suppressed."
    )
    severity: Severity = Field(default="warning", description="Severity of incidents raised by this rule.")
    active_from: time | None = Field(default=None, description="Start of active hours (local time); None = always.")
    active_to: time | None = Field(default=None, description="End of active hours (local time, exclusive).")
    timezone: str = Field(default="UTC", description="IANA time zone of active hours, e.g. Europe/Berlin.")
    channel_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None = Field(
        default=None, description="Channels that receive alerts; None = every enabled channel of the site."
    )
    notify_resolved: bool = Field(default=True, description="Also notify channels when an incident resolves.")
    escalation: list[EscalationStep] = Field(
        default_factory=list,
        max_length=2,
        description="If nobody acknowledges an alerted incident: notify these channels after_min minutes after it "
        "opened (step 1), then the next step's after_min minutes after that (step 2). Stops when acknowledged "
        "or resolved.",
    )
    blur_faces: bool = Field(
        default=True,
        description="Kept so stored rules still load. Alerts always show the face-blurred copy of the frame; "
        "the API refuses False (see raw_frames_in_console).",
    )
    raw_frames_in_console: bool = Field(
        default=False,
        description="The site allows its raw (unblurred) frames in an authenticated console view; never in an "
        "alert on any channel.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return known_timezone(value)

    @model_validator(mode="after")
    def _consistent(self) -> "RulePolicy":
        if self.min_frames > self.window_frames:
            raise ValueError("min_frames (N) must not exceed window_frames (M)")
        if (self.active_from is None) != (self.active_to is None):
            raise ValueError("set both active_from and active_to, or neither")
        return self

    def is_active(self, at: datetime) -> bool:
        return within_hours(at, self.active_from, self.active_to, self.timezone)  # may span midnight


class RawFrameRefused(Exception):
    """A raw (unblurred) frame was asked for where the rules do not allow it."""


RAW_FRAME_VIEW = "console"  # the only place a raw frame may be shown


def check_raw_frame_view(policy: RulePolicy, *, view: str, authenticated: bool) -> None:
    """Allow a raw frame only in the authenticated console of a site that opted in; raise RawFrameRefused else.

    Alert channels (webhook, sns, email, apprise, ...) are always refused: they show the blurred copy.
    """
    if view != RAW_FRAME_VIEW:
        raise RawFrameRefused(f"raw frames never leave through {view!r}; alerts link to the face-blurred copy")
    if not authenticated:
        raise RawFrameRefused("raw frames are shown only to an authenticated console user")
    if not policy.raw_frames_in_console:
        raise RawFrameRefused("this site has not opted in to raw frames in the console (raw_frames_in_console)")


class Box(_Model):
    left: float
    top: float
    width: float
    height: float

    @classmethod
    def of(cls, box: BoundingBox) -> "Box":
        return cls(left=box.Left, top=box.Top, width=box.Width, height=box.Height)

    def iou(self, other: "Box") -> float:
        x1, y1 = max(self.left, other.left), max(self.top, other.top)
        x2 = min(self.left + self.width, other.left + other.width)
        y2 = min(self.top + self.height, other.top + other.height)
        inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
        union = self.width * self.height + other.width * other.height - inter
        return inter / union if union > 0 else 0.0

    def centre_distance(self, other: "Box") -> float:
        dx = (self.left + self.width / 2) - (other.left + other.width / 2)
        dy = (self.top + self.height / 2) - (other.top + other.height / 2)
        return float((dx * dx + dy * dy) ** 0.5)


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


def channel_accepts(min_severity: str, severity: str) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[min_severity]
