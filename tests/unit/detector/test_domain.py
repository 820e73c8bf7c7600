"""Attaching custom labels to persons, and the merged FrameAnalyzed."""

import pytest

from services.detector.domain import attach_labels, merge, owner_of
from shared.rekognition import (
    BoundingBox,
    CustomLabel,
    DetectCustomLabelsResponse,
    DetectProtectiveEquipmentResponse,
    Geometry,
    ProtectiveEquipmentPerson,
)
from tests.factories import frame_received


def box(left: float, top: float, width: float, height: float) -> BoundingBox:
    return BoundingBox(Left=left, Top=top, Width=width, Height=height)


def person(person_id: int, bounding_box: BoundingBox) -> ProtectiveEquipmentPerson:
    return ProtectiveEquipmentPerson(Id=person_id, BoundingBox=bounding_box, Confidence=99.0, BodyParts=[])


LEFT_PERSON = person(0, box(0.05, 0.1, 0.2, 0.8))
RIGHT_PERSON = person(1, box(0.6, 0.1, 0.2, 0.8))
BIG_PERSON = person(2, box(0.0, 0.0, 0.5, 1.0))  # stands behind and around LEFT_PERSON


@pytest.mark.parametrize(
    ("label_box", "persons", "expected"),
    [
        (box(0.08, 0.3, 0.14, 0.3), [LEFT_PERSON, RIGHT_PERSON], 0),  # vest inside the left person
        (box(0.62, 0.3, 0.14, 0.3), [LEFT_PERSON, RIGHT_PERSON], 1),  # inside the right person
        (box(0.40, 0.3, 0.10, 0.3), [LEFT_PERSON, RIGHT_PERSON], None),  # between them: nobody's
        (box(0.19, 0.3, 0.10, 0.3), [LEFT_PERSON, RIGHT_PERSON], 0),  # 60% inside the left person: attached
        (box(0.22, 0.3, 0.10, 0.3), [LEFT_PERSON, RIGHT_PERSON], None),  # 30% inside: not attached
        (box(0.08, 0.3, 0.14, 0.3), [BIG_PERSON, LEFT_PERSON], 0),  # both hold it: the tighter box wins
        (box(0.30, 0.3, 0.10, 0.3), [BIG_PERSON, LEFT_PERSON], 2),  # only the big one holds it
        (box(0.08, 0.3, 0.0, 0.3), [LEFT_PERSON], None),  # empty label box
        (box(0.08, 0.3, 0.14, 0.3), [], None),
    ],
)
def test_owner_of(label_box: BoundingBox, persons: list[ProtectiveEquipmentPerson], expected: int | None) -> None:
    assert owner_of(label_box, persons) == expected


def test_labels_without_geometry_stay_unattached() -> None:
    labels = [
        CustomLabel(Name="hi_vis_vest", Confidence=91.0, Geometry=Geometry(BoundingBox=box(0.62, 0.3, 0.14, 0.3))),
        CustomLabel(Name="site_is_busy", Confidence=70.0),
    ]
    attributed = attach_labels("vest", labels, [LEFT_PERSON, RIGHT_PERSON])
    assert [(a.engine, a.person_id, a.label.Name) for a in attributed] == [
        ("vest", 1, "hi_vis_vest"),
        ("vest", None, "site_is_busy"),
    ]


def test_merge_carries_context_ppe_labels_versions_and_timings() -> None:
    received = frame_received("f-1", camera_id="cam-9", site_id="site-3")
    ppe = DetectProtectiveEquipmentResponse(ProtectiveEquipmentModelVersion="v7", Persons=[LEFT_PERSON, RIGHT_PERSON])
    vest = CustomLabel(Name="hi_vis_vest", Confidence=88.0, Geometry=Geometry(BoundingBox=box(0.08, 0.3, 0.14, 0.3)))
    result = merge(
        received,
        ppe=ppe,
        custom_labels={"vest": DetectCustomLabelsResponse(CustomLabels=[vest])},
        model_versions={"local": "v7", "vest": "vest-1"},
        timings_ms={"ppe": 12.34567},
    )
    assert result.context == received.context and result.frame == received.frame
    assert result.summarization == received.summarization
    assert result.ppe == ppe
    assert [(a.engine, a.person_id, a.label) for a in result.custom_labels] == [("vest", 0, vest)]
    assert result.model_versions == {"local": "v7", "vest": "vest-1"}
    assert result.timings_ms == {"ppe": 12.346}
