"""Rekognition Summary rules (shared/rekognition.py), table-driven against hand-written cases."""

from __future__ import annotations

import pytest

from shared.rekognition import (
    BodyPart,
    BodyPartName,
    BoundingBox,
    CoversBodyPart,
    EquipmentDetection,
    EquipmentType,
    ProtectiveEquipmentPerson,
    SummarizationAttributes,
    person_verdict,
    summarize,
)

BOX = BoundingBox(Width=0.1, Height=0.1, Left=0.1, Top=0.1)
HEAD, FACE, LH, RH = BodyPartName.HEAD, BodyPartName.FACE, BodyPartName.LEFT_HAND, BodyPartName.RIGHT_HAND
HC, FC, GC = EquipmentType.HEAD_COVER, EquipmentType.FACE_COVER, EquipmentType.HAND_COVER


def eq(kind: EquipmentType, conf: float = 99.0, covers: bool = True, covers_conf: float = 99.0) -> EquipmentDetection:
    return EquipmentDetection(
        BoundingBox=BOX, Confidence=conf, Type=kind, CoversBodyPart=CoversBodyPart(Value=covers, Confidence=covers_conf)
    )


def part(name: BodyPartName, conf: float = 99.0, *items: EquipmentDetection) -> BodyPart:
    return BodyPart(Name=name, Confidence=conf, EquipmentDetections=list(items))


def person(*parts: BodyPart, conf: float = 99.0, pid: int = 0) -> ProtectiveEquipmentPerson:
    return ProtectiveEquipmentPerson(BodyParts=list(parts), BoundingBox=BOX, Confidence=conf, Id=pid)


# (case, person, required, MinConfidence, expected bucket)
CASES = [
    ("helmet on a visible head", person(part(HEAD, 99, eq(HC))), [HC], 80, "with"),
    ("bare visible head", person(part(HEAD, 99)), [HC], 80, "without"),
    ("head not visible", person(part(FACE, 99)), [HC], 80, "indeterminate"),
    ("head below MinConfidence", person(part(HEAD, 70, eq(HC))), [HC], 80, "indeterminate"),
    ("person below MinConfidence", person(part(HEAD, 99, eq(HC)), conf=70), [HC], 80, "indeterminate"),
    ("helmet detected below MinConfidence", person(part(HEAD, 99, eq(HC, conf=70))), [HC], 80, "indeterminate"),
    (
        "helmet covers with low CoversBodyPart confidence",
        person(part(HEAD, 99, eq(HC, covers_conf=60))),
        [HC],
        80,
        "indeterminate",
    ),
    (
        "helmet held, confidently not covering",
        person(part(HEAD, 99, eq(HC, covers=False, covers_conf=95))),
        [HC],
        80,
        "without",
    ),
    (
        "helmet not covering, unsure",
        person(part(HEAD, 99, eq(HC, covers=False, covers_conf=60))),
        [HC],
        80,
        "indeterminate",
    ),
    ("MinConfidence under 50 acts as 50", person(part(HEAD, 55, eq(HC, conf=55, covers_conf=55))), [HC], 10, "with"),
    (
        "MinConfidence under 50: person at 45 is unknown",
        person(part(HEAD, 99, eq(HC)), conf=45),
        [HC],
        10,
        "indeterminate",
    ),
    (
        "exactly at MinConfidence counts",
        person(part(HEAD, 80, eq(HC, conf=80, covers_conf=80)), conf=80),
        [HC],
        80,
        "with",
    ),
    ("mask on face", person(part(FACE, 99, eq(FC))), [FC], 80, "with"),
    (
        "face cover found on the head is not on the face",
        person(part(FACE, 99), part(HEAD, 99, eq(FC))),
        [FC],
        80,
        "without",
    ),
    ("both gloves", person(part(LH, 99, eq(GC)), part(RH, 99, eq(GC))), [GC], 80, "with"),
    ("one glove, other hand bare", person(part(LH, 99, eq(GC)), part(RH, 99)), [GC], 80, "without"),
    ("one glove, other hand hidden", person(part(LH, 99, eq(GC))), [GC], 80, "indeterminate"),
    ("no hands visible", person(part(HEAD, 99, eq(HC))), [GC], 80, "indeterminate"),
    ("helmet ok but face bare", person(part(HEAD, 99, eq(HC)), part(FACE, 99)), [HC, FC], 80, "without"),
    ("violation wins over unknown part", person(part(HEAD, 99)), [HC, FC], 80, "without"),
    ("helmet ok, face unknown", person(part(HEAD, 99, eq(HC))), [HC, FC], 80, "indeterminate"),
    (
        "all three present",
        person(part(HEAD, 99, eq(HC)), part(FACE, 99, eq(FC)), part(LH, 99, eq(GC)), part(RH, 99, eq(GC))),
        [HC, FC, GC],
        80,
        "with",
    ),
    ("nothing required, confident person", person(), [], 80, "with"),
    ("nothing required, unsure person", person(conf=60), [], 80, "indeterminate"),
    ("duplicate required types count once", person(part(HEAD, 99, eq(HC))), [HC, HC], 80, "with"),
    (
        "one of two helmets covers",
        person(part(HEAD, 99, eq(HC, covers=False, covers_conf=95), eq(HC))),
        [HC],
        80,
        "with",
    ),
]


@pytest.mark.parametrize(("case", "who", "required", "min_confidence", "expected"), CASES, ids=[c[0] for c in CASES])
def test_person_verdict(
    case: str, who: ProtectiveEquipmentPerson, required: list[EquipmentType], min_confidence: float, expected: str
) -> None:
    assert person_verdict(who, required, min_confidence) == expected


def test_summarize_puts_each_person_in_exactly_one_bucket_by_id() -> None:
    # GIVEN three persons: helmeted, bare-headed, head not visible
    persons = [
        person(part(HEAD, 99, eq(HC)), pid=0),
        person(part(HEAD, 99), pid=1),
        person(part(FACE, 99), pid=2),
    ]
    # WHEN summarised for HEAD_COVER at 80
    summary = summarize(persons, SummarizationAttributes(MinConfidence=80, RequiredEquipmentTypes=[HC]))
    # THEN each id lands in its own bucket
    assert summary.PersonsWithRequiredEquipment == [0]
    assert summary.PersonsWithoutRequiredEquipment == [1]
    assert summary.PersonsIndeterminate == [2]


def test_summarize_empty_image() -> None:
    summary = summarize([], SummarizationAttributes(MinConfidence=50, RequiredEquipmentTypes=[HC]))
    assert (
        summary.PersonsWithRequiredEquipment,
        summary.PersonsWithoutRequiredEquipment,
        summary.PersonsIndeterminate,
    ) == ([], [], [])
