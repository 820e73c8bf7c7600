"""Strict, user-facing scores of a Rekognition-compatible PPE endpoint, computed from its JSON answers only.

A missed head, face or hand counts as a wrong verdict. The same scorer runs on the local engine in process
(the very worker code the detector service runs) and on any endpoint through the unmodified boto3 client
(`--against URL`: ours or AWS), so the figures are what a user of the API sees.

Measures (docs/local-engine.md, "Strict evaluation"):
- heads (YOLO helmet / no_helmet boxes): a helmet head is right when a HEAD_COVER box with IoU >= 0.2 lies on
  it; a bare head is right when a person holding it has a HEAD and no HEAD_COVER box lies on it;
- helmet heads with a confident (>= MinConfidence) HEAD_COVER box on them;
- persons indeterminate in the Summary at MinConfidence with HEAD_COVER required;
- face close-ups (short side >= 64 px): a FACE (confidence >= 50) returned, and the FACE_COVER verdict of the
  most confident FACE right (no FACE = wrong);
- hands (YOLO bare_hand / gloved_hand boxes): gloved hands with a HAND_COVER box (IoU >= 0.2) on them, bare
  hands wrongly given one;
- torsos (YOLO wear / no_wear boxes): the DetectCustomLabels label with the best IoU (>= 0.2) names the
  right class (hi-vis vest or not); no label = wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from shared.boxes import Box, iou

MATCH_IOU = 0.2
CLOSE_UP_MIN_SIDE = 64
RETURNED = 50.0  # Rekognition returns nothing under 50

Json = dict[str, Any]


class Endpoint(Protocol):
    """What the scorer needs of an engine: the two API calls, answering Rekognition JSON."""

    name: str

    def detect_ppe(self, image: bytes, required: list[str], min_confidence: float) -> Json: ...

    def detect_vest(self, image: bytes) -> Json: ...


@dataclass(frozen=True)
class LabelledBox:
    cls: str
    xyxy: tuple[float, float, float, float]  # ratios of the image size


def read_yolo_boxes(label_path: Path, names: tuple[str, ...]) -> list[LabelledBox]:
    boxes: list[LabelledBox] = []
    if not label_path.is_file():
        return boxes
    for line in label_path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        c, cx, cy, w, h = int(parts[0]), *(float(v) for v in parts[1:5])
        boxes.append(LabelledBox(names[c], (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
    return boxes


def _xyxy(bbox: Json) -> tuple[float, float, float, float]:
    left, top = float(bbox.get("Left", 0.0)), float(bbox.get("Top", 0.0))
    return (left, top, left + float(bbox.get("Width", 0.0)), top + float(bbox.get("Height", 0.0)))


def _part(person: Json, names: Iterable[str]) -> list[Json]:
    wanted = set(names)
    return [bp for bp in person.get("BodyParts", []) if bp.get("Name") in wanted]


def _equipment(part: Json, kind: str) -> list[tuple[tuple[float, float, float, float], float]]:
    """(box, confidence) of each `kind` detection on the part that covers it; confidence = the lower of the
    detection's and CoversBodyPart's."""
    return [
        (_xyxy(eq["BoundingBox"]), min(float(eq.get("Confidence", 0)), float(eq["CoversBodyPart"].get("Confidence", 0))))
        for eq in part.get("EquipmentDetections", [])
        if eq.get("Type") == kind and eq.get("CoversBodyPart", {}).get("Value")
    ]


@dataclass
class Counts:
    """Numerators and denominators by measure name, printed as a table."""

    n: dict[str, int] = field(default_factory=dict)
    d: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, hit: bool | int, total: int = 1) -> None:
        self.n[name] = self.n.get(name, 0) + int(hit)
        self.d[name] = self.d.get(name, 0) + total

    def ratio(self, name: str) -> float | None:
        return self.n[name] / self.d[name] if self.d.get(name) else None

    def rows(self, targets: dict[str, str]) -> list[str]:
        lines = ["| measure (strict) | value | target |", "|---|---|---|"]
        for name, target in targets.items():
            if name in self.d:
                value = self.ratio(name)
                lines.append(f"| {name} | {value:.3f} ({self.n[name]}/{self.d[name]}) | {target} |")
        return lines


HEAD_RIGHT = "labelled heads whose verdict is right (missed = wrong)"
HEAD_RIGHT_WITH_PERSON = "... of the heads held by a returned person"
HELMET_CONFIDENT = "helmet heads with a confident HEAD_COVER box on them"
HEAD_SUMMARY = "labelled heads whose Summary verdict is right (indeterminate = wrong)"
INDETERMINATE = "persons indeterminate in the Summary (HEAD_COVER required)"
FACE_FOUND = "face close-ups (>= 64 px) where a FACE (>= 50) is returned"
FACE_RIGHT = "FACE_COVER verdict right on those close-ups (no FACE = wrong)"
GLOVED_COVERED = "gloved hands covered by a HAND_COVER box"
BARE_GLOVED = "bare hands wrongly gloved (lower is better)"
TORSO_RIGHT = "torsos whose hi-vis verdict is right (no label = wrong)"

TARGETS = {
    HEAD_RIGHT: ">= 0.92",
    HEAD_RIGHT_WITH_PERSON: "",
    HELMET_CONFIDENT: ">= 0.92",
    HEAD_SUMMARY: "",
    INDETERMINATE: "<= 0.15",
    FACE_FOUND: ">= 0.95",
    FACE_RIGHT: ">= 0.93",
    GLOVED_COVERED: ">= 0.85",
    BARE_GLOVED: "<= 0.10",
    TORSO_RIGHT: ">= 0.90",
}


def score_heads(response: Json, labels: list[LabelledBox], counts: Counts, min_confidence: float) -> None:
    """One helmet_vest image: per labelled head, and the Summary's indeterminate share."""
    persons = response.get("Persons", [])
    summary = response.get("Summary") or {}
    by_id = {p.get("Id"): p for p in persons}
    verdict_of = {
        **{i: "with" for i in summary.get("PersonsWithRequiredEquipment", [])},
        **{i: "without" for i in summary.get("PersonsWithoutRequiredEquipment", [])},
        **{i: "indeterminate" for i in summary.get("PersonsIndeterminate", [])},
    }
    counts.add(INDETERMINATE, len(summary.get("PersonsIndeterminate", [])), len(persons))
    heads = [lab for lab in labels if lab.cls in ("helmet", "no_helmet")]
    covers = [
        (pid, box, conf) for pid, p in by_id.items() for part in _part(p, ["HEAD"]) for box, conf in _equipment(part, "HEAD_COVER")
    ]
    # Persons are matched one-to-one: first by their HEAD_COVER box, then by holding the head in the top half.
    owner: dict[int, Any] = {}
    pairs = sorted(((iou(lab.xyxy, box), k, pid) for k, lab in enumerate(heads) for pid, box, _c in covers), reverse=True)
    for overlap, k, pid in pairs:
        if overlap >= MATCH_IOU and k not in owner and pid not in owner.values():
            owner[k] = pid
    for k, lab in enumerate(heads):
        if k in owner:
            continue
        cx, cy = Box.of(lab.xyxy).centre
        holders = []
        for pid, p in by_id.items():
            b = _xyxy(p["BoundingBox"])
            upper_half = cy <= (b[1] + b[3]) / 2
            if pid not in owner.values() and _part(p, ["HEAD"]) and Box.of(b).holds((cx, cy)) and upper_half:
                holders.append(((b[2] - b[0]) * (b[3] - b[1]), pid))
        if holders:
            owner[k] = min(holders)[1]
    for k, lab in enumerate(heads):
        helmet = lab.cls == "helmet"
        on_it = [(c, box) for _pid, box, c in covers if iou(lab.xyxy, box) >= MATCH_IOU]
        held = k in owner
        right = bool(on_it) if helmet else held and not on_it
        counts.add(HEAD_RIGHT, right)
        if held:
            counts.add(HEAD_RIGHT_WITH_PERSON, right)
        if helmet:
            counts.add(HELMET_CONFIDENT, any(c >= min_confidence for c, _ in on_it))
        expected = "with" if helmet else "without"
        counts.add(HEAD_SUMMARY, held and verdict_of.get(owner[k]) == expected)


def score_face(response: Json, masked: bool, counts: Counts) -> None:
    faces = [
        part
        for p in response.get("Persons", [])
        for part in _part(p, ["FACE"])
        if float(part.get("Confidence", 0)) >= RETURNED
    ]
    counts.add(FACE_FOUND, bool(faces))
    if not faces:
        counts.add(FACE_RIGHT, False)
        return
    best = max(faces, key=lambda part: float(part.get("Confidence", 0)))
    counts.add(FACE_RIGHT, bool(_equipment(best, "FACE_COVER")) == masked)


def score_hands(response: Json, labels: list[LabelledBox], counts: Counts) -> None:
    gloves = [
        box
        for p in response.get("Persons", [])
        for part in _part(p, ["LEFT_HAND", "RIGHT_HAND"])
        for box, _conf in _equipment(part, "HAND_COVER")
    ]
    for lab in labels:
        covered = any(iou(lab.xyxy, box) >= MATCH_IOU for box in gloves)
        counts.add(GLOVED_COVERED if lab.cls == "gloved_hand" else BARE_GLOVED, covered)


VEST_NAMES = {"hi_vis_vest": "wear", "no_hi_vis_vest": "no_wear", "wear": "wear", "no_wear": "no_wear"}


def score_torsos(response: Json, labels: list[LabelledBox], counts: Counts) -> None:
    found = [
        (VEST_NAMES.get(str(label.get("Name")), str(label.get("Name"))), _xyxy(label["Geometry"]["BoundingBox"]))
        for label in response.get("CustomLabels", [])
        if label.get("Geometry", {}).get("BoundingBox")
    ]
    for lab in labels:
        if lab.cls not in ("wear", "no_wear"):
            continue
        scored = [(iou(lab.xyxy, box), name) for name, box in found]
        best = max(scored, default=(0.0, None))
        counts.add(TORSO_RIGHT, best[0] >= MATCH_IOU and best[1] == lab.cls)


HELMET_VEST_NAMES = ("helmet", "no_helmet", "no_wear", "wear")
GLOVE_NAMES = ("bare_hand", "gloved_hand")


def run(
    endpoint: Endpoint,
    *,
    helmet_vest: list[Path],
    masks: list[tuple[Path, bool]],
    gloves: list[Path],
    min_confidence: float = 80.0,
    read: Callable[[Path], bytes] = Path.read_bytes,
    image_size: Callable[[bytes], tuple[int, int]] | None = None,
) -> Counts:
    """Score every file through the endpoint; returns the counts (`Counts.rows(TARGETS)` prints them)."""
    counts = Counts()
    for path in tqdm(helmet_vest, desc="heads+torsos", unit="img", mininterval=10):
        data = read(path)
        labels = read_yolo_boxes(path.parent.parent / "labels" / f"{path.stem}.txt", HELMET_VEST_NAMES)
        score_heads(endpoint.detect_ppe(data, ["HEAD_COVER"], min_confidence), labels, counts, min_confidence)
        if any(lab.cls in ("wear", "no_wear") for lab in labels):
            score_torsos(endpoint.detect_vest(data), labels, counts)
    size = image_size or _image_size
    for path, masked in tqdm(masks, desc="faces", unit="img", mininterval=10):
        data = read(path)
        if min(size(data)) < CLOSE_UP_MIN_SIDE:  # Rekognition refuses images under 64 px a side
            continue
        score_face(endpoint.detect_ppe(data, ["FACE_COVER"], min_confidence), masked, counts)
    for path in tqdm(gloves, desc="hands", unit="img", mininterval=10):
        labels = read_yolo_boxes(path.parent.parent / "labels" / f"{path.stem}.txt", GLOVE_NAMES)
        score_hands(endpoint.detect_ppe(read(path), ["HAND_COVER"], min_confidence), labels, counts)
    return counts


def _image_size(data: bytes) -> tuple[int, int]:
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return (0, 0)
    return (image.shape[1], image.shape[0])


def _dumped(response: Any) -> Json:
    """A worker's typed response as the JSON dict an endpoint answers."""
    return dict(json.loads(response.model_dump_json()))


class LocalEndpoint:
    """The detector's own model-worker code, in process: decode, PPE engine, then the vest model on its persons."""

    name = "local (in process, services.detector.engines.local_worker)"

    def __init__(self, model_dir: Path | None = None, *, engine_settings: dict[str, Any] | None = None) -> None:
        from services.detector.config import default_custom_label_models
        from services.detector.engines import local_worker

        self._worker = local_worker
        specs = {name: spec.model_dump(mode="json") for name, spec in default_custom_label_models().items()}
        local_worker.init_worker(str(model_dir) if model_dir else None, specs, True, engine_settings)
        self.version = local_worker.versions()["ppe"]
        self._last: tuple[bytes, Json] | None = None

    def detect_ppe(self, image: bytes, required: list[str], min_confidence: float) -> Json:
        from shared.rekognition import SummarizationAttributes

        attributes = SummarizationAttributes.model_validate(
            {"MinConfidence": min_confidence, "RequiredEquipmentTypes": required}
        )
        if "HEAD_COVER" not in required:
            return _dumped(self._worker.detect_ppe(image, attributes).ppe)
        # Construction photos: the vest model runs on the same persons in the same call, as in the service.
        result = self._worker.detect_ppe_and_crops(image, attributes, ["vest"])
        self._last = (image, _dumped(result.labels["vest"]))
        return _dumped(result.ppe)

    def detect_vest(self, image: bytes) -> Json:
        if self._last is not None and self._last[0] is image:
            return self._last[1]
        return _dumped(self._worker.detect_ppe_and_crops(image, None, ["vest"]).labels["vest"])


class Boto3Endpoint:
    """Any Rekognition-compatible endpoint through the unmodified boto3 client (ours or AWS)."""

    def __init__(self, url: str | None, *, vest_arn: str, region: str = "us-east-1",
                 credentials: tuple[str, str] | None = None) -> None:
        """`credentials`: (access key id, secret) of a DETECTOR_API_KEYS pair; None: boto3's usual chain."""
        import boto3

        self.name = f"boto3 {url or 'AWS'}"
        keys = {"aws_access_key_id": credentials[0], "aws_secret_access_key": credentials[1]} if credentials else {}
        self._client = boto3.client("rekognition", endpoint_url=url, region_name=region, **keys)
        self._vest_arn = vest_arn

    def detect_ppe(self, image: bytes, required: list[str], min_confidence: float) -> Json:
        response = self._client.detect_protective_equipment(
            Image={"Bytes": image},
            SummarizationAttributes={"MinConfidence": min_confidence, "RequiredEquipmentTypes": required},
        )
        return dict(response)

    def detect_vest(self, image: bytes) -> Json:
        return dict(self._client.detect_custom_labels(ProjectVersionArn=self._vest_arn, Image={"Bytes": image}))
