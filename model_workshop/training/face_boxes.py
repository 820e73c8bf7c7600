"""FACE_COVER on the boxes the face detector gives: detector boxes for whole-image mask samples, and the measure.

The masks/ images are labelled as a whole (box = the image), but at run time the classifier sees the best
BlazeFace box (services/detector/local_engine/faces.py), which on a tight close-up is often larger than the frame
(clipped to it) or covers only the eyes-to-chin part. `detector_samples` adds one sample per image with that box,
so the model learns both; `measure` scores a classifier both ways.

    python -m model_workshop.training.face_boxes              # shipped face_cover on the train side + its
                                                              # validation slice (whole image vs detector box)
    python -m model_workshop.training.face_boxes --weights var/fc/face_cover.onnx

    python -m model_workshop.training.face_boxes --side test  # the held-back side, once, after choosing

"Detector box" is what an engine that finds faces with BlazeFace decides: the best box, P(with_mask) >=
max(card threshold, 0.5), an image without a face box counted as wrong; only close-ups with a short side
>= 64 px are scored, as in model_workshop.strict_eval. Choose on the validation slice (train side), never on test.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from model_workshop.settings import FromSettings, WorkshopSettings
from model_workshop.strict_eval import CLOSE_UP_MIN_SIDE
from model_workshop.training.data import CropSample, Split, folder_samples, make_split, sha256_file
from services.detector.local_engine.classifiers import CropClassifier, square_crop
from services.detector.local_engine.faces import MODEL_NAME, FaceDetector
from services.detector.local_engine.model_files import default_model_dir, require_models

Box = tuple[float, float, float, float]
CLASSES = ["without_mask", "with_mask"]


def detector_model_path(model_dir: Path | None = None) -> Path:
    return require_models(model_dir or default_model_dir(), [MODEL_NAME])[MODEL_NAME]


def best_face_boxes(
    samples: Sequence[CropSample],
    model_path: Path,
    *,
    cache_dir: Path | None | FromSettings = FromSettings.CACHE,
    progress: bool = True,
) -> dict[str, Box | None]:
    """The best-scoring detector box of each sample's image (normalised x1, y1, x2, y2), None when none is found.

    Cached per detector file (sha256) and image file (size, mtime) under cache_dir, never in the repository
    (default $PPE_FACE_BOX_CACHE).
    """
    if cache_dir is FromSettings.CACHE:
        cache_dir = WorkshopSettings().face_box_cache
    model_sha = sha256_file(model_path)
    cache_file = None
    cached: dict[str, list[float] | None] = {}
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"{model_sha[:16]}.json"
        if cache_file.is_file():
            cached = json.loads(cache_file.read_text())
    detector: FaceDetector | None = None
    out: dict[str, Box | None] = {}
    todo = sorted({s.image_path: s for s in samples}.values(), key=lambda s: s.file)
    for sample in tqdm(todo, desc="face boxes", unit="img", disable=not progress, mininterval=5):
        stat = sample.image_path.stat()
        key = f"{sample.file}|{stat.st_size}|{stat.st_mtime_ns}"
        if key not in cached:
            detector = detector or FaceDetector(model_path, threads=1)
            image = cv2.imread(str(sample.image_path), cv2.IMREAD_COLOR)
            h, w = image.shape[:2]
            found = detector.detect(image)
            cached[key] = None if not len(found) else [float(v) for v in found.boxes[0] / [w, h, w, h]]
        value = cached[key]
        out[sample.file] = None if value is None else (value[0], value[1], value[2], value[3])
    if cache_file is not None and detector is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(cached))
        tmp.replace(cache_file)
    return out


def detector_samples(samples: Sequence[CropSample], boxes: dict[str, Box | None]) -> list[CropSample]:
    """One sample with the detector's box for each whole-image sample whose image has a face box."""
    return [replace(s, box=boxes[s.file]) for s in samples if s.box is None and boxes.get(s.file) is not None]


def validation_slice(train_samples: Sequence[CropSample], fraction: float = 0.15, seed: int = 1) -> Split:
    """The trainer's validation slice of the train side (make_split by group; the trainer uses seed + 1)."""
    return make_split(train_samples, test_fraction=fraction, seed=seed)


def positive_probs(
    classifier: CropClassifier, samples: Sequence[CropSample], boxes: dict[str, Box | None]
) -> dict[str, np.ndarray]:
    """P(with_mask) per file: on the whole image and on the detector box (NaN where no face was found), and the
    image's short side in pixels."""
    whole = np.zeros(len(samples), np.float32)
    face = np.full(len(samples), np.nan, np.float32)
    short_side = np.zeros(len(samples), np.int64)
    for i, s in enumerate(tqdm(samples, desc="classifying", unit="img", mininterval=5)):
        image = cv2.imread(str(s.image_path), cv2.IMREAD_COLOR)
        h, w = image.shape[:2]
        short_side[i] = min(h, w)
        crops = [square_crop(image, (0, 0, w, h), classifier.crop_margin)]
        box = boxes.get(s.file)
        if box is not None:
            crops.append(square_crop(image, (box[0] * w, box[1] * h, box[2] * w, box[3] * h), classifier.crop_margin))
        p = classifier.predict_positive(crops)
        whole[i] = p[0]
        if box is not None:
            face[i] = p[1]
    return {"whole": whole, "face": face, "short_side": short_side}


def face_box_accuracy(
    labels: Sequence[int], probs: dict[str, np.ndarray], threshold: float, min_side: int = CLOSE_UP_MIN_SIDE
) -> dict[str, Any]:
    """Accuracy at the engine's decision (P >= max(threshold, 0.5)) on the close-ups the strict table scores
    (short side >= min_side): on whole images, and on detector boxes (of the images with a face box, and
    counting an image without one as wrong, as the strict table does)."""
    close = probs["short_side"] >= min_side
    probs = {k: v[close] for k, v in probs.items()}
    y = (np.asarray(labels) == 1)[close]
    t = max(threshold, 0.5)
    found = ~np.isnan(probs["face"])
    right = (probs["face"][found] >= t) == y[found]
    return {
        "n": int(len(y)),
        "min_short_side_px": min_side,
        "decision_threshold": t,
        "face_found": round(float(found.mean()), 4),
        "whole_image_accuracy": round(float(np.mean((probs["whole"] >= t) == y)), 4),
        "detector_box_accuracy": round(float(right.mean()), 4),
        "detector_box_accuracy_no_face_wrong": round(float(right.sum() / len(y)), 4),
        "detector_box_recall": {
            c: _recall(probs["face"][found & (y == (i == 1))], t, i == 1) for i, c in enumerate(CLASSES)
        },
    }


def _recall(face_probs: np.ndarray, threshold: float, positive: bool) -> float | None:
    return round(float(np.mean((face_probs >= threshold) == positive)), 4) if face_probs.size else None


def accuracy_rows(labels: np.ndarray, probs: dict[str, np.ndarray], thresholds: Sequence[float]) -> list[str]:
    rows = []
    for t in thresholds:
        r = face_box_accuracy(labels, probs, t)
        recall = ", ".join(f"{c} {v:.3f}" for c, v in r["detector_box_recall"].items() if v is not None)
        rows.append(
            f"  P >= {r['decision_threshold']:.2f}: whole image {r['whole_image_accuracy']:.3f} | detector box "
            f"{r['detector_box_accuracy']:.3f} on {r['face_found']:.3f} found (no face = wrong: "
            f"{r['detector_box_accuracy_no_face_wrong']:.3f}; recall {recall})"
        )
    return rows


def measure(
    classifier: CropClassifier, samples: Sequence[CropSample], boxes: dict[str, Box | None], title: str
) -> list[str]:
    labels = np.array([s.label for s in samples])
    probs = positive_probs(classifier, samples, boxes)
    thresholds = sorted({max(classifier.threshold, 0.5), 0.6, 0.7})
    close = int((probs["short_side"] >= CLOSE_UP_MIN_SIDE).sum())
    head = f"{title} ({len(samples)} images, {close} with a short side >= {CLOSE_UP_MIN_SIDE} px scored):"
    return [head] + accuracy_rows(labels, probs, thresholds)


def main(argv: list[str] | None = None) -> int:
    from model_workshop.training.train_all import WEIGHTS_DIR, shared_data_root

    parser = argparse.ArgumentParser(prog="python -m model_workshop.training.face_boxes", description=__doc__)
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR / "face_cover.onnx")
    parser.add_argument("--split", type=Path, default=WEIGHTS_DIR / "face_cover.split.json")
    parser.add_argument("--validation-only", action="store_true", help="score only the validation slice")
    parser.add_argument("--side", choices=["train", "test"], default="train", help="test: held back, once")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    samples = folder_samples(shared_data_root() / "masks", CLASSES)
    split = Split.load(args.split)
    classifier = CropClassifier(args.weights, threads=1)
    print(f"{classifier.model_version}: card threshold {classifier.threshold}, decided at P >= max(threshold, 0.5)")
    if args.side == "test":
        held_back = [s for s in samples if s.file in split.test]
        boxes = best_face_boxes(held_back, detector_model_path())
        print("\n".join(measure(classifier, held_back, boxes, "HELD-BACK side")))
        return 0
    train = [s for s in samples if s.file in split.train]
    boxes = best_face_boxes(train, detector_model_path())
    val_files = validation_slice(train).test
    val = [s for s in train if s.file in val_files]
    print("\n".join(measure(classifier, val, boxes, "validation slice of the train side")))
    if not args.validation_only:
        print("\n".join(measure(classifier, train, boxes, "whole train side")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
