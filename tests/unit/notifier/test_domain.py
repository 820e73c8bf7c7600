"""Tracking, incident lifecycle and cooldown rules of the notifier (pure domain, frame time)."""

import itertools
from datetime import time, timedelta

import pytest
from pydantic import ValidationError

from services.notifier.domain import (
    Box,
    CameraState,
    IncidentEvent,
    RulePolicy,
    TrackerSettings,
    associate,
    evaluate,
    observe,
)
from shared.contracts import FrameAnalyzed
from shared.equipment import Catalogue, default_custom_equipment
from shared.rekognition import EquipmentType
from tests.unit.notifier.builders import T0, frame_analyzed, hat_scenario, person

CATALOGUE = Catalogue(default_custom_equipment())

TRACKER = TrackerSettings()


def replay(
    frames: list[FrameAnalyzed], policy: RulePolicy, state: CameraState | None = None
) -> tuple[CameraState, list[IncidentEvent]]:
    counter = itertools.count(1)
    state = state or CameraState()
    events: list[IncidentEvent] = []
    for frame in frames:
        result = evaluate(
            state,
            observe(frame, policy, CATALOGUE),
            at=frame.context.captured_at,
            policy=policy,
            tracker=TRACKER,
            new_incident_id=lambda: f"inc-{next(counter)}",
        )
        state = result.state
        events += result.events
    return state, events


def test_losing_the_hard_hat_for_20s_opens_one_incident_and_resolves_it() -> None:
    # GIVEN a worker without hard hat from t=10 s to t=30 s, at 2 frames per second
    policy = RulePolicy(min_violation_s=2, min_frames=2, window_frames=3, resolve_after_s=2)
    # WHEN the frames are evaluated in order
    _, events = replay(hat_scenario(), policy)
    # THEN one incident opens ~2 s after the hat came off and resolves ~2 s after it is back on
    assert [e.status for e in events] == ["open", "resolved"]
    opened, resolved = events
    assert opened.incident_id == resolved.incident_id
    assert opened.alert and resolved.alert
    assert opened.missing == (EquipmentType.HEAD_COVER,)
    assert opened.started_at == T0 + timedelta(seconds=10)
    assert resolved.resolved_at == T0 + timedelta(seconds=32)
    assert resolved.last_seen_at == T0 + timedelta(seconds=29.5)


@pytest.mark.parametrize(
    ("without_s", "min_violation_s", "opens"),
    [
        (0.5, 2.0, False),  # a single bad frame is noise
        (1.5, 2.0, False),  # shorter than the minimum time in violation
        (3.0, 2.0, True),
        (0.5, 0.0, False),  # one frame is still below N=2 of M=3
    ],
)
def test_minimum_time_and_frames_in_violation(without_s: float, min_violation_s: float, opens: bool) -> None:
    policy = RulePolicy(min_violation_s=min_violation_s, min_frames=2, window_frames=3)
    _, events = replay(hat_scenario(before_s=2, without_s=without_s, after_s=5), policy)
    assert any(e.status == "open" for e in events) is opens


def test_indeterminate_frames_never_raise_a_violation() -> None:
    policy = RulePolicy(min_violation_s=0, min_frames=1, window_frames=1)
    frames = [frame_analyzed(f"f{i}", at=T0 + timedelta(seconds=i), persons=[person(hard_hat=None)]) for i in range(20)]
    _, events = replay(frames, policy)
    assert events == []


def test_indeterminate_frames_neither_resolve_an_open_incident() -> None:
    policy = RulePolicy(min_violation_s=1, min_frames=2, window_frames=3, resolve_after_s=1)
    bare = [frame_analyzed(f"a{i}", at=T0 + timedelta(seconds=i), persons=[person(hard_hat=False)]) for i in range(4)]
    unsure = [
        frame_analyzed(f"b{i}", at=T0 + timedelta(seconds=4 + i), persons=[person(hard_hat=None)]) for i in range(4)
    ]
    _, events = replay(bare + unsure, policy)
    assert [e.status for e in events] == ["open"]


def test_rule_min_confidence_not_the_frames_decides() -> None:
    # The frame was summarised at MinConfidence 80, the rule asks for 99.5: the head (99) is now too unsure.
    frame = frame_analyzed("f", persons=[person(hard_hat=False, head_confidence=99.0)], min_confidence=80)
    assert frame.ppe.Summary is not None and frame.ppe.Summary.PersonsWithoutRequiredEquipment == [0]
    assert observe(frame, RulePolicy(min_confidence=99.5), CATALOGUE)[0].verdict == "indeterminate"
    assert observe(frame, RulePolicy(min_confidence=80), CATALOGUE)[0].verdict == "without"


def test_rule_required_types_not_the_frames_decide() -> None:
    # Hands are not in view: a rule that needs gloves cannot judge this person; one that needs a hat can.
    frame = frame_analyzed("f", persons=[person(hard_hat=True)])
    gloves = RulePolicy(required_equipment=[EquipmentType.HAND_COVER])
    assert observe(frame, gloves, CATALOGUE)[0].verdict == "indeterminate"
    assert observe(frame, RulePolicy(), CATALOGUE)[0].verdict == "with"


def test_camera_cooldown_suppresses_the_alert_of_a_second_incident_then_expires() -> None:
    policy = RulePolicy(
        min_violation_s=1, min_frames=2, window_frames=3, resolve_after_s=1, cooldown_camera_s=60, cooldown_person_s=0
    )
    first = hat_scenario(before_s=2, without_s=5, after_s=5, prefix="a")  # alert at ~t=3 s
    second = hat_scenario(start=T0 + timedelta(seconds=12), before_s=2, without_s=5, after_s=5, prefix="b")
    third = hat_scenario(start=T0 + timedelta(seconds=80), before_s=2, without_s=5, after_s=5, prefix="c")
    _, events = replay(first + second + third, policy)
    opens = [e for e in events if e.status == "open"]
    assert len(opens) == 3
    assert [o.alert for o in opens] == [True, False, True]
    assert opens[1].suppressed_reason is not None and "camera cooldown" in opens[1].suppressed_reason
    resolved = [e for e in events if e.status == "resolved"]
    # A resolution is announced only where the opening was.
    assert [r.alert for r in resolved] == [True, False, True]


def test_person_cooldown_applies_to_the_same_tracked_person() -> None:
    policy = RulePolicy(
        min_violation_s=1, min_frames=2, window_frames=3, resolve_after_s=1, cooldown_camera_s=0, cooldown_person_s=120
    )
    first = hat_scenario(before_s=2, without_s=5, after_s=3, prefix="a")
    again = hat_scenario(start=T0 + timedelta(seconds=10), before_s=1, without_s=5, after_s=3, prefix="b")
    _, events = replay(first + again, policy)
    opens = [e for e in events if e.status == "open"]
    assert [o.alert for o in opens] == [True, False]
    assert opens[0].track_id == opens[1].track_id
    assert opens[1].suppressed_reason is not None and "person cooldown" in opens[1].suppressed_reason


def test_a_person_who_leaves_resolves_when_the_track_expires() -> None:
    policy = RulePolicy(min_violation_s=1, min_frames=2, window_frames=3)
    bare = [frame_analyzed(f"a{i}", at=T0 + timedelta(seconds=i), persons=[person(hard_hat=False)]) for i in range(4)]
    empty = [frame_analyzed(f"e{i}", at=T0 + timedelta(seconds=4 + i), persons=[]) for i in range(8)]
    state, events = replay(bare + empty, policy)
    assert [e.status for e in events] == ["open", "resolved"]
    assert events[1].resolved_at == T0 + timedelta(seconds=3)
    assert state.tracks == []


def test_two_people_are_tracked_apart_although_ids_change_every_frame() -> None:
    policy = RulePolicy(min_violation_s=1, min_frames=2, window_frames=3)
    frames = [
        frame_analyzed(
            f"f{i}",
            at=T0 + timedelta(seconds=i),
            # ids swap every frame, as Rekognition's random per-call ids would
            persons=[person(i % 2, left=0.05, hard_hat=True), person(1 - i % 2, left=0.6, hard_hat=False)],
        )
        for i in range(6)
    ]
    state, events = replay(frames, policy)
    assert [e.status for e in events] == ["open"]
    assert len(state.tracks) == 2
    bare_track = next(t for t in state.tracks if t.incident_id is not None)
    assert bare_track.box.left == pytest.approx(0.6)


def test_outside_active_hours_no_incident_opens() -> None:
    policy = RulePolicy(min_violation_s=1, active_from=time(9, 0), active_to=time(17, 0), timezone="UTC")
    _, events = replay(hat_scenario(), policy)  # T0 is 08:30 UTC
    assert events == []
    overnight = RulePolicy(min_violation_s=1, active_from=time(22, 0), active_to=time(9, 0), timezone="UTC")
    _, events = replay(hat_scenario(), overnight)
    assert [e.status for e in events] == ["open", "resolved"]


def test_missing_equipment_change_is_an_update_without_alert() -> None:
    policy = RulePolicy(
        required_equipment=[EquipmentType.HEAD_COVER, EquipmentType.FACE_COVER],
        min_violation_s=1,
        min_frames=1,
        window_frames=1,
    )
    # Face visible and bare in every frame; the hat comes off from frame 3.
    from shared.rekognition import BodyPart, BodyPartName

    def worker(i: int, hat: bool) -> FrameAnalyzed:
        p = person(hard_hat=hat)
        p = p.model_copy(update={"BodyParts": [*p.BodyParts, BodyPart(Name=BodyPartName.FACE, Confidence=99.0)]})
        return frame_analyzed(f"f{i}", at=T0 + timedelta(seconds=i), persons=[p])

    _, events = replay([worker(i, hat=i < 3) for i in range(6)], policy)
    assert [e.status for e in events] == ["open", "updated"]
    assert events[0].missing == (EquipmentType.FACE_COVER,)
    assert set(events[1].missing) == {EquipmentType.FACE_COVER, EquipmentType.HEAD_COVER}
    assert events[1].alert is False


@pytest.mark.parametrize(
    "bad",
    [
        {"min_frames": 4, "window_frames": 3},
        {"active_from": "08:00"},
        {"timezone": "Mars/Olympus"},
        {"required_equipment": []},
        {"min_confidence": 120},
        {"unknown": 1},
    ],
)
def test_invalid_rules_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RulePolicy.model_validate(bad)


def test_association_prefers_overlap_then_centre_distance() -> None:
    from services.notifier.domain import Observation, Track

    def track(track_id: int, left: float) -> Track:
        return Track(
            track_id=track_id, box=Box(left=left, top=0.2, width=0.2, height=0.6), first_seen_at=T0, last_seen_at=T0
        )

    def obs(left: float, top: float = 0.2) -> Observation:
        return Observation(
            person_id=0, box=Box(left=left, top=top, width=0.2, height=0.6), verdict="with", missing=[], confidence=99
        )

    tracks = [track(1, 0.1), track(2, 0.5)]
    assert associate(tracks, [obs(0.52), obs(0.12)], TRACKER) == {0: 1, 1: 0}
    # A person far from every track starts a new one.
    assert associate(tracks, [obs(0.95, top=0.9)], TRACKER) == {}


def test_a_vest_zone_opens_one_incident_naming_the_vest_and_a_free_zone_none() -> None:
    # GIVEN a camera whose hazard zone (left half) requires a hi-vis vest and whose walkway (right half) requires
    # nothing; one worker in each, both with hard hats and without vests, for 10 s at 2 frames per second
    from shared.contracts import Zone, ZoneLayout, ZonePoint

    def half(x0: float, x1: float) -> list[ZonePoint]:
        return [ZonePoint(x=x0, y=0), ZonePoint(x=x1, y=0), ZonePoint(x=x1, y=1), ZonePoint(x=x0, y=1)]

    layout = ZoneLayout(
        zones=[
            Zone(zone_id="hazard", polygon=half(0, 0.5), required_equipment=["hi_vis_vest"]),
            Zone(zone_id="walkway", polygon=half(0.5, 1), required_equipment=[]),
        ]
    )
    frames = [
        frame_analyzed(
            f"v-{i}",
            at=T0 + timedelta(seconds=i / 2),
            persons=[person(i % 5, left=0.1), person(i % 5 + 5, left=0.6)],
            vests={i % 5: False, i % 5 + 5: False},
            zones=layout,
        )
        for i in range(20)
    ]
    # WHEN evaluated under the camera rule requiring only a hard hat
    _, events = replay(frames, RulePolicy(min_violation_s=2, min_frames=2, window_frames=3))
    # THEN exactly one incident opens: the hazard-zone worker's, naming the vest and the zone
    assert [(e.status, e.missing, e.zone_id) for e in events] == [("open", ("hi_vis_vest",), "hazard")]
