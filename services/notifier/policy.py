"""Rules: what a rule requires of every person, when a violation becomes an alert, whom it escalates to, and
where a raw (unblurred) frame may be shown. Data and checks, no I/O."""

from datetime import datetime, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.contracts import known_timezone
from shared.equipment import EquipmentName
from shared.rekognition import EquipmentType
from shared.zones import within_hours

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


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


def channel_accepts(min_severity: str, severity: str) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[min_severity]
