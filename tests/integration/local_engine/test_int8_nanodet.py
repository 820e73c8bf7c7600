"""Int8 NanoDet (`quantize.py`): built from the committed calibration ranges, it finds the people the float
import finds, on real scenes; the output convolutions stay in float; calibration used only TRAIN images."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import onnx

from model_workshop.quantize import (
    CALIBRATION_MANIFEST,
    WEIGHTS_DIR,
    calibration_images,
    output_convs,
)
from services.detector.local_engine.persons import PersonDetector
from shared.boxes import iou


def _detectors(model_dir: Path) -> tuple[PersonDetector, PersonDetector]:
    return (
        PersonDetector(model_dir / "nanodet.onnx", input_side=576, enlarge_to=512),
        PersonDetector(model_dir / "nanodet-int8.onnx", input_side=576, enlarge_to=512),
    )


def test_int8_finds_the_people_the_float_model_finds(model_dir: Path, shared_data: Path) -> None:
    fp32, int8 = _detectors(model_dir)
    matched, confident, score_gaps = 0, 0, []
    for path in sorted((shared_data / "scenes" / "images").glob("*.jpg")):
        image = cv2.imread(str(path))
        reference = fp32.detect(image, min_score=0.25, iou=0.65, max_persons=20)
        quantized = int8.detect(image, min_score=0.2, iou=0.65, max_persons=30)
        for box, score in zip(reference.boxes, reference.scores, strict=True):
            if score < 0.4:  # a borderline box may fall either side of the threshold
                continue
            confident += 1
            ious = [iou(box, other) for other in quantized.boxes]
            best = int(np.argmax(ious)) if ious else -1
            if best >= 0 and ious[best] >= 0.7:
                matched += 1
                score_gaps.append(abs(float(score) - float(quantized.scores[best])))
    assert confident >= 60, "the scenes hold fewer confident people than expected"
    assert matched / confident >= 0.95, f"int8 matched {matched}/{confident} confident float persons"
    assert float(np.mean(score_gaps)) < 0.05


def test_output_convolutions_stay_float_and_the_rest_is_int8(model_dir: Path) -> None:
    float_heads = output_convs(model_dir / "nanodet.onnx")
    assert len(float_heads) == 3  # one per NanoDet level: class scores + box distributions in one conv
    graph = onnx.load(str(model_dir / "nanodet-int8.onnx")).graph
    producer = {out: node for node in graph.node for out in node.output}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    quantized = {
        n.name for n in convs if (p := producer.get(n.input[0])) is not None and p.op_type == "DequantizeLinear"
    }
    assert {n.name for n in convs} - quantized == set(float_heads)
    assert len(quantized) == len(convs) - 3


def test_calibration_used_only_train_side_images(shared_data: Path) -> None:
    images = calibration_images(shared_data)
    held_back: set[Path] = set()
    for name in ("head_cover", "face_cover", "hand_cover"):
        held_back |= {shared_data / rel for rel in json.loads((WEIGHTS_DIR / f"{name}.split.json").read_text())["test"]}
    assert images and not set(images) & held_back
    # the committed manifest is exactly that draw, with the hashes of the files on disk
    rows = [line.split(",") for line in CALIBRATION_MANIFEST.read_text().splitlines()[1:]]
    assert [shared_data / rel for rel, _ in rows] == images
    for rel, digest in rows[:8]:
        assert hashlib.sha256((shared_data / rel).read_bytes()).hexdigest() == digest
