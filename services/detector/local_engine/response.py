"""From `LocalPipeline.analyse` output to the Rekognition response: which persons are returned, which parts
count as covered and with what confidence, and each person's torso for a torso custom-label model.
"""

from __future__ import annotations

import numpy as np

from services.detector.local_engine.bodyparts import (
    LEFT_HIP,
    LEFT_SHOULDER,
    RIGHT_HIP,
    RIGHT_SHOULDER,
    VISIBLE,
    PartBox,
)
from services.detector.local_engine.classifiers import (
    torso_box_from_keypoints,
    torso_box_from_person,
    torso_box_from_shoulders,
)
from services.detector.local_engine.loaded import PART_EQUIPMENT, LoadedModels
from services.detector.local_engine.results import PartResult, PersonResult, person_confidence
from shared.rekognition import (
    MIN_RETURNED_CONFIDENCE,
    BodyPart,
    BodyPartName,
    BoundingBox,
    CoversBodyPart,
    DetectProtectiveEquipmentResponse,
    EquipmentDetection,
    EquipmentType,
    ProtectiveEquipmentPerson,
    SummarizationAttributes,
    summarize,
)


def torso_box(person: PersonResult) -> tuple[float, float, float, float]:
    """Shoulders..hips from the keypoints when a shoulder and a hip are visible, below both shoulders when no hip
    is, else body proportions of the person box."""
    kps = person.keypoints
    shoulders = [kps[i, :2].tolist() for i in (LEFT_SHOULDER, RIGHT_SHOULDER) if kps[i, 2] >= VISIBLE]
    hips = [kps[i, :2].tolist() for i in (LEFT_HIP, RIGHT_HIP) if kps[i, 2] >= VISIBLE]
    if shoulders and hips:
        return torso_box_from_keypoints(shoulders, hips)
    if len(shoulders) == 2:
        return torso_box_from_shoulders(shoulders, person.box.tolist())
    return torso_box_from_person(person.box.tolist())


def _bbox(box: tuple[float, float, float, float] | np.ndarray, width: int, height: int) -> BoundingBox:
    x1, y1, x2, y2 = (float(v) for v in box)
    return BoundingBox(Width=(x2 - x1) / width, Height=(y2 - y1) / height, Left=x1 / width, Top=y1 / height)


def _equipment_box(part: PartBox) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = part.box
    h = y2 - y1
    if part.name == BodyPartName.HEAD:  # the helmet: upper part of the head box
        return (x1, y1, x2, y1 + 0.6 * h)
    if part.name == BodyPartName.FACE:  # the mask: lower part of the face
        return (x1, y1 + 0.45 * h, x2, y2)
    return part.box


class Responding(LoadedModels):
    """The stages of `LocalPipeline` that build the response from the analysed persons."""

    def _covered(self, equipment_type: EquipmentType, p: float) -> tuple[bool, float]:
        """Whether the part counts as covered, and the detection's confidence 0..100.

        HEAD / FACE: the classifier's card threshold decides (chosen for balanced errors, so a bare head is not
        called a helmet because helmets are common); HAND: P(glove) of 0.5 after calibration. The confidence is
        the calibrated share of such parts that were covered where a curve is shipped, else 100 x P.
        """
        name = equipment_type.value.lower()
        calibrated = self.settings.calibrated and self._calibration is not None and name in self._calibration.curves
        confidence = self._calibration[name](p) if calibrated and self._calibration is not None else 100.0 * p
        if equipment_type is EquipmentType.HAND_COVER and calibrated:
            covered = confidence >= MIN_RETURNED_CONFIDENCE
        else:
            covered = p >= self._classifiers[equipment_type].threshold
        return covered and confidence >= MIN_RETURNED_CONFIDENCE, confidence

    def _body_part(self, result: PartResult, width: int, height: int) -> BodyPart | None:
        confidence = 100.0 * result.part.score
        if confidence < MIN_RETURNED_CONFIDENCE:
            return None
        equipment_type = PART_EQUIPMENT[result.part.name]
        p = result.p_covered
        detections: list[EquipmentDetection] = []
        covered, cover_confidence = self._covered(equipment_type, p) if p is not None else (False, 0.0)
        if equipment_type is EquipmentType.HAND_COVER:
            lo, hi = self.settings.hand_uncertain
            uncertain = lo < cover_confidence / 100.0 < hi if p is not None else True
            if uncertain:
                # The glove model cannot decide this hand: leave the hand out rather than guess,
                # so a HAND_COVER requirement makes this person indeterminate, not compliant or violating.
                return None
        if covered:
            detections.append(
                EquipmentDetection(
                    BoundingBox=_bbox(_equipment_box(result.part), width, height),
                    Confidence=round(cover_confidence, 3),
                    Type=equipment_type,
                    CoversBodyPart=CoversBodyPart(Value=True, Confidence=round(cover_confidence, 3)),
                )
            )
        return BodyPart(Name=result.part.name, Confidence=round(confidence, 3), EquipmentDetections=detections)

    @staticmethod
    def torso_regions(analysed: list[PersonResult], width: int, height: int) -> list[BoundingBox]:
        """Each person's torso (for custom-label engines such as the vest model, with region="person")."""
        return [_bbox(torso_box(p), width, height) for p in analysed]

    def _returned(self, analysed: list[PersonResult]) -> list[tuple[PersonResult, float]]:
        """The persons a response returns (confidence >= 50), in Id order, with their confidence."""
        returned = []
        for person in analysed:
            confidence = max(self._curve("person", person.score, person_confidence(person.score)), person.evidence)
            if confidence >= MIN_RETURNED_CONFIDENCE:
                returned.append((person, confidence))
        if len(returned) > self.settings.max_persons:  # Rekognition's cap: the most confident, in their order
            best = sorted(range(len(returned)), key=lambda i: -returned[i][1])[: self.settings.max_persons]
            returned = [returned[i] for i in sorted(best)]
        return returned

    def respond(
        self,
        analysed: list[PersonResult],
        width: int,
        height: int,
        attributes: SummarizationAttributes | None = None,
    ) -> DetectProtectiveEquipmentResponse:
        """The Rekognition response for `analyse` output; person i keeps Id i unless it is under 50."""
        persons: list[ProtectiveEquipmentPerson] = []
        for person, confidence in self._returned(analysed):
            parts = [bp for r in person.parts if (bp := self._body_part(r, width, height)) is not None]
            persons.append(
                ProtectiveEquipmentPerson(
                    BodyParts=parts,
                    BoundingBox=_bbox(person.box, width, height),
                    Confidence=round(confidence, 3),
                    Id=len(persons),
                )
            )
        summary = summarize(persons, attributes) if attributes is not None else None
        return DetectProtectiveEquipmentResponse(
            ProtectiveEquipmentModelVersion=self.model_version, Persons=persons, Summary=summary
        )
