"""Body-part boxes from keypoints: which parts appear for which views, and where."""

from __future__ import annotations

import numpy as np
import pytest

from services.detector.local_engine import bodyparts as bp
from shared.rekognition import BodyPartName

PERSON = np.array([100.0, 100.0, 200.0, 400.0])  # a standing person, 100 x 300 px


def pose(**visible: tuple[float, float]) -> np.ndarray:
    """17 keypoints, all hidden (score 0.05) except the named ones (score 0.6)."""
    kps = np.zeros((17, 3), np.float32)
    kps[:, 2] = 0.05
    names = {
        "nose": bp.NOSE,
        "leye": bp.LEFT_EYE,
        "reye": bp.RIGHT_EYE,
        "lear": bp.LEFT_EAR,
        "rear": bp.RIGHT_EAR,
        "lsh": bp.LEFT_SHOULDER,
        "rsh": bp.RIGHT_SHOULDER,
        "lel": bp.LEFT_ELBOW,
        "rel": bp.RIGHT_ELBOW,
        "lwr": bp.LEFT_WRIST,
        "rwr": bp.RIGHT_WRIST,
    }
    for name, (x, y) in visible.items():
        kps[names[name]] = (x, y, 0.6)
    return kps


FRONT = pose(
    nose=(150, 130),
    leye=(156, 124),
    reye=(144, 124),
    lear=(162, 127),
    rear=(138, 127),
    lsh=(170, 160),
    rsh=(130, 160),
    lel=(175, 200),
    rel=(125, 200),
    lwr=(178, 240),
    rwr=(122, 240),
)
BACK = pose(lear=(140, 127), rear=(160, 127), lsh=(130, 160), rsh=(170, 160))
SHOULDERS_ONLY = pose(lsh=(130, 160), rsh=(170, 160))
NOTHING = pose()


@pytest.mark.parametrize(
    ("view", "kps", "expected"),
    [
        ("front", FRONT, {BodyPartName.FACE, BodyPartName.HEAD, BodyPartName.LEFT_HAND, BodyPartName.RIGHT_HAND}),
        ("back: no face", BACK, {BodyPartName.HEAD}),
        ("shoulders only", SHOULDERS_ONLY, {BodyPartName.HEAD}),
        ("nothing visible: head by proportions", NOTHING, {BodyPartName.HEAD}),
    ],
)
def test_parts_per_view(view: str, kps: np.ndarray, expected: set[BodyPartName]) -> None:
    assert {p.name for p in bp.body_parts(kps, PERSON)} == expected


def _box(parts: list[bp.PartBox], name: BodyPartName) -> bp.PartBox:
    return next(p for p in parts if p.name == name)


def test_head_box_covers_eyes_and_room_for_a_helmet_above() -> None:
    head = _box(bp.body_parts(FRONT, PERSON), BodyPartName.HEAD)
    x1, y1, x2, y2 = head.box
    assert x1 < 138 and x2 > 162  # ear to ear
    assert y1 < 124 - 15 and y2 > 124  # well above the eyes, below them too
    assert y2 < 160  # not down to the shoulders
    assert head.score > 0.9


def test_head_from_shoulders_sits_above_them() -> None:
    head = _box(bp.body_parts(SHOULDERS_ONLY, PERSON), BodyPartName.HEAD)
    assert head.box[3] < 160 + 5 and (head.box[0] + head.box[2]) / 2 == pytest.approx(150)


def test_head_fallback_is_at_the_top_and_less_sure_than_a_seen_head() -> None:
    head = _box(bp.body_parts(NOTHING, PERSON), BodyPartName.HEAD)
    assert 100 <= head.box[1] <= 100 + 0.1 * 300  # at the top of the 300 px tall person box
    seen = _box(bp.body_parts(FRONT, PERSON), BodyPartName.HEAD)
    assert head.score == bp.FALLBACK_HEAD_CONFIDENCE < seen.score


def test_fallback_head_is_centred_and_narrower_than_the_person_box() -> None:
    x1, y1, x2, y2 = _box(bp.body_parts(NOTHING, PERSON), BodyPartName.HEAD).box
    assert (x1 + x2) / 2 == pytest.approx(150) and y1 == pytest.approx(100)
    assert x2 - x1 <= 0.7 * 100 and y2 - y1 < x2 - x1  # labelled heads are wider than tall


# The pose of this person (box 100..200 x 100..400) put its head on a neighbour standing to the right (x ~ 215),
# which MoveNet sees because it runs on a square crop around the tall box; the shoulders are this person's.
HEAD_ON_NEIGHBOUR = pose(
    nose=(215, 112), leye=(219, 108), reye=(211, 108), lear=(224, 110), rear=(206, 110), lsh=(170, 160), rsh=(130, 160)
)


def test_head_keypoints_on_a_neighbour_are_not_trusted() -> None:
    head = _box(bp.body_parts(HEAD_ON_NEIGHBOUR, PERSON), BodyPartName.HEAD)
    shoulders_head = _box(bp.body_parts(SHOULDERS_ONLY, PERSON), BodyPartName.HEAD)
    assert head.box == pytest.approx(shoulders_head.box)  # placed above this person's shoulders
    assert (head.box[0] + head.box[2]) / 2 < 200 - 0.1 * 100  # not on the neighbour


def test_pose_head_for_the_dedupe_stays_where_the_pose_put_it() -> None:
    # the one-person-per-head de-duplication compares where the poses themselves found heads
    x1, _, x2, _ = bp.pose_head_box(HEAD_ON_NEIGHBOUR, PERSON)
    assert x1 < 215 < x2
    front = bp.pose_head_box(FRONT, PERSON)
    assert front == pytest.approx(np.asarray(_box(bp.body_parts(FRONT, PERSON), BodyPartName.HEAD).box))


def test_head_keypoints_low_in_the_box_are_not_trusted() -> None:
    # a head found at mid height of a standing person's box is someone else's (e.g. a worker in front)
    low = pose(nose=(150, 300), leye=(156, 294), reye=(144, 294))
    head = _box(bp.body_parts(low, PERSON), BodyPartName.HEAD)
    assert head.box[1] == pytest.approx(100) and head.score == bp.FALLBACK_HEAD_CONFIDENCE


def test_shoulders_outside_the_box_give_the_fallback_head() -> None:
    wide = pose(lsh=(260, 160), rsh=(220, 160))
    head = _box(bp.body_parts(wide, PERSON), BodyPartName.HEAD)
    assert head.score == bp.FALLBACK_HEAD_CONFIDENCE and (head.box[0] + head.box[2]) / 2 == pytest.approx(150)


def test_hands_extend_past_the_wrist_away_from_the_elbow_and_keep_sides() -> None:
    parts = bp.body_parts(FRONT, PERSON)
    left, right = _box(parts, BodyPartName.LEFT_HAND), _box(parts, BodyPartName.RIGHT_HAND)
    assert (left.box[1] + left.box[3]) / 2 > 240  # below the wrist (forearm points down)
    assert (
        (left.box[0] + left.box[2]) / 2 > 150 > (right.box[0] + right.box[2]) / 2
    )  # person's left is image right here


@pytest.mark.parametrize(
    ("score", "low", "high"),
    [(0.0, 0.0, 0.0), (0.1, 0.2, 0.3), (0.25, 0.59, 0.61), (0.4, 0.75, 0.85), (0.9, 0.99, 0.99)],
)
def test_keypoint_confidence_mapping(score: float, low: float, high: float) -> None:
    assert low <= bp.keypoint_confidence(score) <= high


def test_person_confidence_is_monotonic_and_keeps_the_detection_threshold_returnable() -> None:
    from services.detector.local_engine.pipeline import EngineSettings, person_confidence

    scores = np.linspace(0.0, 1.0, 101)
    confidences = [person_confidence(float(s)) for s in scores]
    assert all(b >= a for a, b in zip(confidences, confidences[1:], strict=False))
    assert person_confidence(EngineSettings().person_min_score) >= 50.0
    assert person_confidence(0.1) < 50.0 and person_confidence(1.0) <= 100.0
