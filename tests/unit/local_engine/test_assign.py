"""Parts to persons by geometry: one owner per part, one HEAD/FACE and two hands per person, orphans make persons."""

from __future__ import annotations

import numpy as np

from services.detector.local_engine.assign import Found, Holder, assign, head_from_face
from shared.rekognition import BodyPartName


def found(*rows: tuple[float, float, float, float, float]) -> Found:
    if not rows:
        return Found.empty()
    arr = np.array(rows, dtype=np.float32)
    return Found(arr[:, :4], arr[:, 4])


def holder(x1: float, y1: float, x2: float, y2: float) -> Holder:
    return Holder(box=np.array([x1, y1, x2, y2], dtype=np.float32), keypoints=None)


def test_two_workers_side_by_side_each_get_their_own_head() -> None:
    # GIVEN two overlapping person boxes and one head at the top of each
    persons = [holder(100, 100, 220, 500), holder(180, 110, 300, 510)]
    heads = found((130, 100, 190, 160, 0.9), (210, 112, 270, 172, 0.8))
    out = assign(persons, heads=heads, faces=found(), hands=found(), width=640, height=640, max_persons=15)
    assert len(out) == 2
    assert out[0].head is not None and out[0].head.box[0] == 130
    assert out[1].head is not None and out[1].head.box[0] == 210


def test_a_head_low_in_the_box_or_outside_is_not_this_persons_head_and_makes_its_own_person() -> None:
    persons = [holder(100, 100, 200, 400)]
    heads = found((120, 330, 160, 370, 0.9))  # at the knees: a crouching neighbour, not this person's head
    out = assign(persons, heads=heads, faces=found(), hands=found(), width=640, height=640, max_persons=15)
    assert out[0].head is None
    assert len(out) == 2 and out[1].from_parts and out[1].head is not None


def test_face_close_up_with_no_person_makes_a_person_with_a_face() -> None:
    out = assign([], heads=found(), faces=found((40, 30, 200, 220, 0.97)), hands=found(), width=240, height=260, max_persons=15)
    assert len(out) == 1 and out[0].face is not None and out[0].from_parts
    x1, y1, x2, y2 = out[0].box
    assert x1 <= 40 and y1 <= 30 and x2 >= 200 and y2 >= 220


def test_face_goes_to_the_person_whose_head_holds_it() -> None:
    persons = [holder(0, 0, 100, 300), holder(100, 0, 200, 300)]
    heads = found((20, 5, 80, 70, 0.9), (120, 5, 180, 70, 0.9))
    faces = found((130, 20, 170, 65, 0.9))
    out = assign(persons, heads=heads, faces=faces, hands=found(), width=300, height=300, max_persons=15)
    assert out[0].face is None and out[1].face is not None


def test_hands_at_most_two_per_person_by_wrist_and_lone_hands_make_a_person() -> None:
    kps = np.zeros((17, 3), np.float32)
    kps[9] = (60, 200, 0.9)  # left wrist
    kps[10] = (140, 200, 0.9)  # right wrist
    person = Holder(box=np.array([50, 0, 150, 300], np.float32), keypoints=kps)
    hands = found((50, 190, 70, 210, 0.9), (130, 190, 150, 210, 0.8), (95, 250, 115, 270, 0.7), (500, 500, 560, 560, 0.9))
    out = assign([person], heads=found(), faces=found(), hands=hands, width=640, height=640, max_persons=15)
    names = sorted(h.name.value for h in out[0].hands)
    assert names == ["LEFT_HAND", "RIGHT_HAND"]
    lone = [h for h in out if h.from_parts]
    assert len(lone) == 2  # the third hand near the body and the far one: persons of their own
    assert all(len(h.hands) == 1 for h in lone)
    assert {h.hands[0].name for h in lone} <= {BodyPartName.LEFT_HAND, BodyPartName.RIGHT_HAND}


def test_two_gloved_hands_in_a_close_up_make_one_person_with_both_sides() -> None:
    hands = found((100, 100, 200, 200, 0.9), (260, 110, 360, 210, 0.9))
    out = assign([], heads=found(), faces=found(), hands=hands, width=640, height=480, max_persons=15)
    assert len(out) == 1
    assert {h.name for h in out[0].hands} == {BodyPartName.LEFT_HAND, BodyPartName.RIGHT_HAND}


def test_no_more_persons_than_the_cap() -> None:
    heads = found(*[(i * 40.0, 0.0, i * 40.0 + 30, 30.0, 0.9) for i in range(20)])
    out = assign([], heads=heads, faces=found(), hands=found(), width=900, height=600, max_persons=15)
    assert len(out) == 15


def test_the_head_around_a_face_reaches_up_to_where_a_helmet_sits() -> None:
    # GIVEN a 40 x 50 face box
    x1, y1, x2, y2 = head_from_face((100.0, 200.0, 140.0, 250.0))
    # THEN the HEAD reaches 0.75 face heights above it (a helmet), a quarter face wider each side, and ends above
    # the chin (labelled helmet heads end 0.3 face heights above the face's bottom, bare heads at it)
    assert (x1, y1, x2, y2) == (90.0, 162.5, 150.0, 242.5)
