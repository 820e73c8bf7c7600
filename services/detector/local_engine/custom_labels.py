"""CropLabeller: a custom-label plug-in built from any crop-classifier ONNX + model card.

It answers in the DetectCustomLabels shape (`CustomLabel{Name, Confidence, Geometry{BoundingBox}}`), one
label per person region, like Rekognition Custom Labels run on person crops (the hi-vis vest design).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from services.detector.local_engine.classifiers import (
    BoxXYXY,
    CropClassifier,
    torso_box_from_person,
)
from shared.rekognition import (
    MIN_RETURNED_CONFIDENCE,
    BoundingBox,
    CustomLabel,
    Geometry,
    ProtectiveEquipmentPerson,
)

Region = Literal["torso", "person", "image"]
REGIONS: tuple[str, ...] = ("torso", "person", "image")


class CropLabeller:
    """Custom labels from a crop classifier, one label per person region.

    Construct from configuration with the model path: `CropLabeller(Path("weights/vest.onnx"))`
    (the card `<name>.card.json` must sit next to it). `region` picks what is cut from each person box:
    "torso" (shoulders..hips by body proportions, `torso_box_from_person`), "person" (the whole box) or
    "image" (the whole image, one label, no geometry). Default: the card's `region`, else "torso".
    `label_names` renames classes on output (e.g. {"wear": "hi_vis_vest"}; default: the card's
    `label_names`, else the class names); classes mapped to "" are
    never returned (e.g. {"no_wear": ""} to report only vests). Labels under `min_confidence` (at least 50,
    like Rekognition) are dropped.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        region: Region | None = None,
        label_names: dict[str, str] | None = None,
        min_confidence: float = MIN_RETURNED_CONFIDENCE,
        threads: int = 1,
    ) -> None:
        self.classifier = CropClassifier(Path(model_path), threads=threads)
        card_region = getattr(self.classifier.card, "region", None)
        chosen = region or card_region or "torso"
        if chosen not in REGIONS:
            raise ValueError(f"region must be one of {REGIONS}, got {chosen!r}")
        self.region: str = chosen
        names = dict(getattr(self.classifier.card, "label_names", None) or {})
        names.update(label_names or {})
        unknown = set(names) - set(self.classifier.classes)
        if unknown:
            raise ValueError(f"label_names has classes {sorted(unknown)} not in the model's {self.classifier.classes}")
        self.label_names = {c: names.get(c, c) for c in self.classifier.classes}
        self.min_confidence = max(MIN_RETURNED_CONFIDENCE, min_confidence)

    @classmethod
    def from_card(cls, card_path: Path, **kwargs: object) -> CropLabeller:
        """Build from `<name>.card.json` (the ONNX file `<name>.onnx` sits next to it)."""
        card_path = Path(card_path)
        return cls(card_path.with_name(card_path.name.removesuffix(".card.json") + ".onnx"), **kwargs)  # type: ignore[arg-type]  # the card's keyword arguments are validated by __init__

    @property
    def model_version(self) -> str:
        return self.classifier.model_version

    def regions(
        self, image_shape: tuple[int, ...], persons: Sequence[ProtectiveEquipmentPerson | BoundingBox]
    ) -> list[BoxXYXY]:
        """The pixel box classified for each person."""
        height, width = image_shape[:2]
        boxes: list[BoxXYXY] = []
        for person in persons:
            bb = person.BoundingBox if isinstance(person, ProtectiveEquipmentPerson) else person
            x1, y1 = bb.Left * width, bb.Top * height
            box = (x1, y1, x1 + bb.Width * width, y1 + bb.Height * height)
            boxes.append(torso_box_from_person(box) if self.region == "torso" else box)
        return boxes

    def detect(
        self,
        image_bgr: np.ndarray,
        persons: Sequence[ProtectiveEquipmentPerson | BoundingBox] | None = None,
    ) -> list[CustomLabel]:
        """One label per person region (or one for the whole image when region is "image" or persons is None)."""
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 BGR image, got shape {image_bgr.shape}")
        height, width = image_bgr.shape[:2]
        if self.region == "image" or persons is None:
            probs = self.classifier.predict([image_bgr])
            return [label for label in (self._label(probs[0], None),) if label is not None]
        return self.detect_regions(image_bgr, self.regions(image_bgr.shape, persons))

    def detect_regions(self, image_bgr: np.ndarray, boxes: Sequence[BoxXYXY]) -> list[CustomLabel]:
        """One label per given pixel box, classified as it is (e.g. torsos placed by the PPE engine's keypoints)."""
        height, width = image_bgr.shape[:2]
        boxes = [b for b in boxes if b[2] - b[0] >= 1 and b[3] - b[1] >= 1]
        if not boxes:
            return []
        probs = self.classifier.classify(image_bgr, boxes)
        labels: list[CustomLabel] = []
        for row, (x1, y1, x2, y2) in zip(probs, boxes, strict=True):
            geometry = Geometry(
                BoundingBox=BoundingBox(
                    Left=x1 / width, Top=y1 / height, Width=(x2 - x1) / width, Height=(y2 - y1) / height
                )
            )
            label = self._label(row, geometry)
            if label is not None:
                labels.append(label)
        return labels

    def _label(self, probs: np.ndarray, geometry: Geometry | None) -> CustomLabel | None:
        classes = self.classifier.classes
        card = self.classifier.card
        if card.positive_class is not None and len(classes) == 2:
            positive = classes.index(card.positive_class)
            index = positive if probs[positive] >= card.threshold else 1 - positive
        else:
            index = int(np.argmax(probs))
        confidence = float(np.clip(probs[index] * 100.0, 0.0, 100.0))
        name = self.label_names[classes[index]]
        if not name or confidence < self.min_confidence:
            return None
        return CustomLabel(Name=name, Confidence=round(confidence, 3), Geometry=geometry)
