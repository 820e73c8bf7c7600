"""The strict scorer reads only the Rekognition JSON: a missed part is a wrong verdict."""

from __future__ import annotations

from typing import Any

from model_workshop import strict_eval as se


def bbox(x1: float, y1: float, x2: float, y2: float) -> dict[str, float]:
    return {"Left": x1, "Top": y1, "Width": x2 - x1, "Height": y2 - y1}


def cover(kind: str, box: tuple[float, float, float, float], conf: float = 95.0) -> dict[str, Any]:
    return {"Type": kind, "BoundingBox": bbox(*box), "Confidence": conf, "CoversBodyPart": {"Value": True, "Confidence": conf}}


def person(pid: int, box: tuple[float, ...], parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Id": pid, "BoundingBox": bbox(*box), "Confidence": 99.0, "BodyParts": parts}


HELMET = se.LabelledBox("helmet", (0.10, 0.10, 0.20, 0.20))
BARE = se.LabelledBox("no_helmet", (0.60, 0.10, 0.70, 0.20))


def test_helmet_head_needs_a_head_cover_box_on_it_and_bare_head_needs_a_person_with_a_head() -> None:
    # GIVEN a helmet worker with a HEAD_COVER box on his head and a bare worker with a HEAD and no cover
    response = {
        "Persons": [
            person(0, (0.05, 0.08, 0.25, 0.9), [{"Name": "HEAD", "Confidence": 90, "EquipmentDetections": [cover("HEAD_COVER", (0.1, 0.1, 0.2, 0.16))]}]),
            person(1, (0.55, 0.08, 0.75, 0.9), [{"Name": "HEAD", "Confidence": 90, "EquipmentDetections": []}]),
        ],
        "Summary": {"PersonsWithRequiredEquipment": [0], "PersonsWithoutRequiredEquipment": [1], "PersonsIndeterminate": []},
    }
    counts = se.Counts()
    se.score_heads(response, [HELMET, BARE], counts, 80.0)
    assert counts.ratio(se.HEAD_RIGHT) == 1.0
    assert counts.ratio(se.HEAD_SUMMARY) == 1.0
    assert counts.ratio(se.HELMET_CONFIDENT) == 1.0
    assert counts.ratio(se.INDETERMINATE) == 0.0


def test_missed_heads_and_weak_covers_count_as_wrong() -> None:
    # GIVEN only the bare worker is found, and the helmet box elsewhere is weak
    response = {
        "Persons": [person(0, (0.55, 0.08, 0.75, 0.9), [{"Name": "HEAD", "Confidence": 90, "EquipmentDetections": [cover("HEAD_COVER", (0.3, 0.3, 0.4, 0.4), 60)]}])],
        "Summary": {"PersonsWithRequiredEquipment": [], "PersonsWithoutRequiredEquipment": [], "PersonsIndeterminate": [0]},
    }
    counts = se.Counts()
    se.score_heads(response, [HELMET, BARE], counts, 80.0)
    assert counts.n[se.HEAD_RIGHT] == 1 and counts.d[se.HEAD_RIGHT] == 2  # the missed helmet head is wrong
    assert counts.ratio(se.HELMET_CONFIDENT) == 0.0
    assert counts.ratio(se.HEAD_SUMMARY) == 0.0  # indeterminate is not right
    assert counts.ratio(se.INDETERMINATE) == 1.0


def test_faces_hands_and_torsos() -> None:
    counts = se.Counts()
    se.score_face({"Persons": []}, True, counts)  # no face = wrong
    masked = person(0, (0, 0, 1, 1), [{"Name": "FACE", "Confidence": 90, "EquipmentDetections": [cover("FACE_COVER", (0.2, 0.5, 0.8, 0.9))]}])
    se.score_face({"Persons": [masked]}, True, counts)
    se.score_face({"Persons": [masked]}, False, counts)  # a mask on a bare face is wrong
    assert (counts.n[se.FACE_FOUND], counts.n[se.FACE_RIGHT], counts.d[se.FACE_RIGHT]) == (2, 1, 3)

    hands = person(0, (0, 0, 1, 1), [{"Name": "LEFT_HAND", "Confidence": 90, "EquipmentDetections": [cover("HAND_COVER", (0.1, 0.1, 0.3, 0.3))]}])
    se.score_hands({"Persons": [hands]}, [se.LabelledBox("gloved_hand", (0.1, 0.1, 0.3, 0.3)), se.LabelledBox("gloved_hand", (0.6, 0.6, 0.8, 0.8)), se.LabelledBox("bare_hand", (0.12, 0.1, 0.3, 0.3))], counts)
    assert counts.ratio(se.GLOVED_COVERED) == 0.5 and counts.ratio(se.BARE_GLOVED) == 1.0

    labels = {"CustomLabels": [{"Name": "hi_vis_vest", "Confidence": 90, "Geometry": {"BoundingBox": bbox(0.1, 0.3, 0.3, 0.6)}}]}
    se.score_torsos(labels, [se.LabelledBox("wear", (0.1, 0.3, 0.3, 0.6)), se.LabelledBox("no_wear", (0.1, 0.3, 0.3, 0.6)), se.LabelledBox("wear", (0.7, 0.3, 0.9, 0.6))], counts)
    assert counts.n[se.TORSO_RIGHT] == 1 and counts.d[se.TORSO_RIGHT] == 3
