"""LocalPipeline: DetectProtectiveEquipment on CPU with local models.

one NanoDet run -> persons + HEAD / HAND boxes (the part head grafted on NanoDet, parts.py); faces (BlazeFace,
faces.py); pose per person (MoveNet Lightning) -> parts to persons by geometry, pose as tie-breaker and as the
fallback for parts no detector found (assign.py, bodyparts.py) -> crop classifiers per part (weights/*.onnx)
-> calibrated confidences (calibration.py) -> Rekognition response + Summary (shared/rekognition.py).
"""

from __future__ import annotations

import numpy as np

from services.detector.local_engine.assign import Holder, assign
from services.detector.local_engine.bodyparts import keypoint_confidence
from services.detector.local_engine.finding import PartFinding
from services.detector.local_engine.loaded import (
    PART_EQUIPMENT,
    WEIGHTS_DIR,
    EngineSettings,
    LoadedModels,
)
from services.detector.local_engine.model_files import ModelsMissingError
from services.detector.local_engine.response import Responding, torso_box
from services.detector.local_engine.results import PartResult, PersonResult, person_confidence
from shared.images import InvalidImage
from shared.rekognition import (
    MIN_RETURNED_CONFIDENCE,
    BoundingBox,
    DetectProtectiveEquipmentResponse,
    EquipmentType,
    SummarizationAttributes,
)


class LocalPipeline(PartFinding, Responding):
    """Loads all models once; `detect` is safe to call repeatedly from one thread.

    Loading: loaded.py; finding persons and parts: finding.py; the Rekognition response: response.py.
    `poses_run` counts the MoveNet runs since loading (what `EngineSettings.pose_when_needed` saves).
    """

    poses_run: int = 0

    @staticmethod
    def _check_image(image_bgr: np.ndarray) -> None:
        if (
            not isinstance(image_bgr, np.ndarray)
            or image_bgr.dtype != np.uint8
            or image_bgr.ndim != 3
            or image_bgr.shape[2] != 3
        ):
            shape = getattr(image_bgr, "shape", None)
            raise InvalidImage(f"expected an HxWx3 uint8 BGR array, got {type(image_bgr).__name__} {shape}")
        h, w = image_bgr.shape[:2]
        if min(h, w) < 64 or max(h, w) > 4096:
            raise InvalidImage(f"each image side must be 64..4096 px, got {w}x{h}")

    def analyse(self, image_bgr: np.ndarray) -> list[PersonResult]:
        """Persons with their parts and P(covered) per part (the raw material of `detect`)."""
        self._check_image(image_bgr)
        s = self.settings
        height, width = image_bgr.shape[:2]
        found, parts = self._find_persons(image_bgr)
        parts = self._zoom_small_heads(image_bgr, parts)
        (heads, lone_heads), (hands, lone_hands) = self._found(parts, "HEAD"), self._found(parts, "HAND")
        if self._is_scene(found.scores):
            lone_hands = np.zeros_like(lone_hands)
        faces = self._find_faces(image_bgr, self._face_canvases(image_bgr.shape, found, parts))
        kept = [
            (box, float(score))
            for box, score in zip(found.boxes, found.scores, strict=True)
            if self._may_hold_parts(box, float(score), heads, hands, faces)
        ]
        needs_pose = self._pose_needed([box for box, _ in kept], hands, lone_hands)
        persons = [
            PersonResult(box=box, score=score, keypoints=self._pose.estimate(image_bgr, box))
            if needed
            else PersonResult(box=box, score=score, keypoints=np.zeros((17, 3), np.float32), pose_skipped=True)
            for (box, score), needed in zip(kept, needs_pose, strict=True)
        ]
        self.poses_run += sum(not p.pose_skipped for p in persons)
        persons = self._one_person_per_head(persons)[: s.max_persons]
        holders = assign(
            [Holder(box=p.box, keypoints=p.keypoints) for p in persons],
            heads=heads,
            faces=faces,
            hands=hands,
            width=width,
            height=height,
            # Room for lone parts beyond the cap: weak person boxes that end up part-less are dropped below,
            # and `_returned` keeps the `max_persons` most confident.
            max_persons=len(persons) + s.max_persons,
            lone_heads=lone_heads,
            lone_hands=lone_hands,
        )
        for holder in holders:  # raw part-head scores -> calibrated confidences
            if holder.head is not None and holder.head_detected:
                holder.head = self._part_confidence("HEAD", holder.head, not holder.from_parts)
            holder.hands = [self._part_confidence("HAND", hand, not holder.from_parts) for hand in holder.hands]
            if holder.from_parts:
                holder.part_score = max(p.score for p in (holder.head, holder.face, *holder.hands) if p is not None)
        persons += [
            PersonResult(box=h.box, score=0.0, keypoints=np.zeros((17, 3), np.float32)) for h in holders[len(persons) :]
        ]
        persons, holders, taken_heads = self._drop_head_duplicates(persons, holders)
        by_equipment: dict[EquipmentType, list[PartResult]] = {e: [] for e in self._classifiers}
        for person, holder in zip(persons, holders, strict=True):
            for part, source in self._parts_of(person, holder, taken_heads):
                result = PartResult(part=part, p_covered=None, source=source)
                person.parts.append(result)
                side = min(part.box[2] - part.box[0], part.box[3] - part.box[1])
                equipment = PART_EQUIPMENT[part.name]
                # A part under 50 is never returned (`_body_part`), so its cover is not worth classifying.
                if 100.0 * part.score < MIN_RETURNED_CONFIDENCE or (
                    equipment is EquipmentType.HAND_COVER and side < s.min_hand_side
                ):
                    continue
                by_equipment[equipment].append(result)
            detected = [p.score for p in (holder.head, holder.face, *holder.hands) if p is not None]
            person.evidence = 100.0 * max(detected, default=0.0) if holder.from_parts or holder.head else 0.0
        for equipment, results in by_equipment.items():
            if not results:
                continue
            classifier = self._classifiers[equipment]
            probs = classifier.classify(image_bgr, [r.part.box for r in results])[:, classifier.positive_index]
            for result, p in zip(results, probs, strict=True):
                # Gloves: the part head saw the hand in the whole frame's features, and the mean of its P(glove)
                # and the crop classifier's decides (0.96 against 0.80 for the classifier alone; TRAIN side). Heads:
                # the classifier alone (the part head reads too many bare heads as helmets: trained 9:1 helmets).
                detector = result.part.covered if equipment is EquipmentType.HAND_COVER else None
                result.p_covered = float(p) if detector is None else (float(p) + detector) / 2.0
        return persons

    def detect(
        self, image_bgr: np.ndarray, attributes: SummarizationAttributes | None = None
    ) -> DetectProtectiveEquipmentResponse:
        analysed = self.analyse(image_bgr)
        return self.respond(analysed, image_bgr.shape[1], image_bgr.shape[0], attributes)

    def detect_with_torsos(
        self, image_bgr: np.ndarray, attributes: SummarizationAttributes | None = None
    ) -> tuple[DetectProtectiveEquipmentResponse, list[BoundingBox]]:
        """The response and each returned person's torso (from its keypoints), in Id order: what a torso
        custom-label model (the vest) classifies in the fused call."""
        analysed = self.analyse(image_bgr)
        height, width = image_bgr.shape[:2]
        response = self.respond(analysed, width, height, attributes)
        returned = [person for person, _ in self._returned(analysed)]
        for person in returned:  # the pose skipped in `analyse`: the torso needs it
            if person.pose_skipped:
                person.keypoints, person.pose_skipped = self._pose.estimate(image_bgr, person.box), False
                self.poses_run += 1
        torsos = self.torso_regions(returned, width, height)
        return response, torsos


__all__ = [
    "LocalPipeline",
    "ModelsMissingError",
    "InvalidImage",
    "EngineSettings",
    "LoadedModels",
    "PartResult",
    "PersonResult",
    "WEIGHTS_DIR",
    "keypoint_confidence",
    "person_confidence",
    "torso_box",
]
