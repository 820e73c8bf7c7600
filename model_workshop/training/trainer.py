"""train_crop_classifier: cached crops -> SmallCNN -> ONNX + model card + split + data hash manifest.

Cutting the crops and scoring through the inference path: crops.py; the training knobs and loop: fit.py.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from model_workshop.scores import THRESHOLD_GRID, class_counts, evaluate_probs, f1
from model_workshop.settings import FromSettings
from model_workshop.training.crops import (
    EVAL_JITTER_SCALE,
    EVAL_JITTER_SHIFT,
    extract_contexts,
    read_image,
    runtime_probs,
)
from model_workshop.training.data import CropSample, DatasetError, Split, make_split, sha256_file
from model_workshop.training.fit import MEAN, STD, TrainConfig, train_net
from model_workshop.training.model import ONNX_OPSET, count_parameters, export_onnx
from services.detector.local_engine.classifiers import CropClassifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    card_path: Path
    split_path: Path
    data_manifest_path: Path
    card: dict[str, Any]
    held_back: list[CropSample]
    held_back_labels: np.ndarray
    held_back_probs: np.ndarray  # [N, C], clean boxes through the inference path

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.card["metrics"])


def choose_threshold(
    labels: np.ndarray, positive_prob: np.ndarray, positive_index: int, minimum: float = 0.05
) -> float:
    """The threshold on P(positive) (>= minimum) with the best mean F1 of both classes (ties: closest to 0.5)."""
    best, best_score = max(0.5, minimum), -1.0
    candidates = [t for t in THRESHOLD_GRID if t >= minimum - 1e-9]
    for t in sorted(candidates, key=lambda v: abs(v - 0.5)):
        pred = np.where(positive_prob >= t, positive_index, 1 - positive_index)
        score = float(np.mean([f1(*class_counts(labels, pred, c)) for c in (0, 1)]))
        if score > best_score + 1e-9:
            best, best_score = float(t), score
    return best


def _select(samples: Sequence[CropSample], files: frozenset[str]) -> list[CropSample]:
    return [s for s in samples if s.file in files]


def train_crop_classifier(
    samples: Sequence[CropSample],
    classes: Sequence[str],
    out_dir: Path,
    name: str,
    *,
    positive_class: str | None = None,
    test_samples: Sequence[CropSample] | None = None,
    split: Split | None = None,
    test_fraction: float = 0.2,
    config: TrainConfig | None = None,
    data_source: str = "",
    license_status: str = "unknown: check the data's license before shipping a model trained on it",
    cache_dir: Path | None | FromSettings = FromSettings.CACHE,
    progress: bool = True,
    extra_card: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a crop classifier and write `<name>.onnx`, `<name>.card.json`, `<name>.split.json`, `<name>.data.csv`.

    samples: from `yolo_samples(...)` / `folder_samples(...)` (class indices into `classes`).
    Held-back data: `test_samples` if given, else `split` (e.g. a shared split file), else an automatic
    group-aware 80/20 split by image file (seed `config.seed`).
    Metrics in the card are measured through the inference path (CropClassifier on square_crop of the
    original images): on clean boxes, and on boxes jittered like automatic localisation.
    """
    config = config or TrainConfig()
    classes = list(classes)
    if len(classes) < 2:
        raise ValueError("need at least two classes")
    if positive_class is not None and positive_class not in classes:
        raise ValueError(f"positive_class {positive_class!r} is not in {classes}")
    started = time.monotonic()
    torch.set_num_threads(config.threads)
    cv2.setNumThreads(1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    if test_samples is not None:
        train_samples, held_back = list(samples), list(test_samples)
        split = Split(train=frozenset(s.file for s in train_samples), test=frozenset(s.file for s in held_back))
    else:
        if split is None:
            split = make_split(samples, test_fraction=test_fraction, seed=config.seed)
        train_samples, held_back = _select(samples, split.train), _select(samples, split.test)
    if config.max_train_per_class is not None:
        rng = random.Random(config.seed)
        by_class: dict[int, list[CropSample]] = defaultdict(list)
        for s in train_samples:
            by_class[s.label].append(s)
        train_samples = []
        for label in sorted(by_class):
            group = by_class[label]
            rng.shuffle(group)
            train_samples.extend(group[: config.max_train_per_class])
    if not train_samples or not held_back:
        raise DatasetError(
            f"need samples on both sides of the split; got {len(train_samples)} train, {len(held_back)} held back"
        )
    missing = [c for i, c in enumerate(classes) if not any(s.label == i for s in train_samples)]
    if missing:
        raise DatasetError(f"no training samples for classes {missing}; add labelled examples of them")

    validation: list[CropSample] = []
    if config.threshold is None and positive_class is not None and len(classes) == 2:
        val_split = make_split(train_samples, test_fraction=config.validation_fraction, seed=config.seed + 1)
        validation = [s for s in train_samples if s.file in val_split.test]
        train_samples = [s for s in train_samples if s.file in val_split.train]
    contexts, box_px = extract_contexts(train_samples, config, cache_dir=cache_dir, progress=progress)
    keep = box_px >= config.min_box_px
    labels = np.array([s.label for s in train_samples], dtype=np.int64)
    log.info(
        "training %s on %d crops (%d under %d px dropped)", name, int(keep.sum()), int((~keep).sum()), config.min_box_px
    )
    monitor = None
    if validation:
        val_contexts, val_px = extract_contexts(validation, config, cache_dir=cache_dir, progress=progress)
        val_ok = val_px >= config.min_box_px
        monitor = (val_contexts[val_ok], np.array([s.label for s in validation], dtype=np.int64)[val_ok])
    net, losses = train_net(contexts[keep], labels[keep], len(classes), config, progress, monitor)

    model_path = out_dir / f"{name}.onnx"
    export_onnx(net, config.input_size, model_path)
    model_sha = sha256_file(model_path)
    today = dt.datetime.now(dt.UTC)
    card: dict[str, Any] = {
        "name": name,
        "model_version": f"{today:%Y%m%d}.{model_sha[:8]}",
        "classes": classes,
        "positive_class": positive_class,
        "threshold": config.threshold,
        "input_size": config.input_size,
        "crop_margin": config.crop_margin,
        "mean": list(MEAN),
        "std": list(STD),
    }
    card_path = out_dir / f"{name}.card.json"
    card["threshold"] = 0.5 if config.threshold is None else config.threshold
    card_path.write_text(json.dumps(card, indent=1) + "\n")

    classifier = CropClassifier(model_path, threads=config.threads)
    positive_index = classes.index(positive_class) if positive_class is not None else None
    threshold = card["threshold"]
    threshold_source = "fixed"
    if validation and positive_index is not None:
        val_keep = [s for s in validation if _long_side_ok(s, config.min_box_px)]
        # Jittered boxes: the threshold should suit automatically located regions, not perfect labels.
        val_probs = runtime_probs(classifier, val_keep, jitter_seed=config.seed + 1)
        threshold = choose_threshold(
            np.array([s.label for s in val_keep]), val_probs[:, positive_index], positive_index, config.min_threshold
        )
        threshold_source = f"macro-F1 maximum on a validation slice of the train side ({len(val_keep)} crops)"
        card["threshold"] = threshold
        card_path.write_text(json.dumps(card, indent=1) + "\n")
        classifier = CropClassifier(model_path, threads=config.threads)
    held_keep = [s for s in held_back if _long_side_ok(s, config.min_box_px)]
    held_labels = np.array([s.label for s in held_keep], dtype=np.int64)
    held_probs = runtime_probs(classifier, held_keep, progress=progress)
    metrics: dict[str, Any] = {
        "held_back_clean": evaluate_probs(held_labels, held_probs, classes, positive_index, threshold),
    }
    if any(s.box is not None for s in held_keep):
        metrics["held_back_jittered"] = evaluate_probs(
            held_labels,
            runtime_probs(classifier, held_keep, jitter_seed=config.seed),
            classes,
            positive_index,
            threshold,
        )
        metrics["held_back_jittered"]["jitter"] = {"shift": EVAL_JITTER_SHIFT, "scale": list(EVAL_JITTER_SCALE)}

    split_path = out_dir / f"{name}.split.json"
    split.save(split_path)
    data_manifest_path = out_dir / f"{name}.data.csv"
    used = {s.file: s.image_path for s in [*train_samples, *held_back]}
    test_files = split.test
    lines = ["file,sha256,side"] + [
        f"{f},{sha256_file(p)},{'test' if f in test_files else 'train'}" for f, p in sorted(used.items())
    ]
    data_manifest_path.write_text("\n".join(lines) + "\n")

    card.update(
        {
            "created": today.isoformat(timespec="seconds"),
            "architecture": f"SmallCNN width {config.width}, {count_parameters(net)} parameters, softmax in graph",
            "onnx": {
                "file": model_path.name,
                "sha256": model_sha,
                "opset": ONNX_OPSET,
                "input": "input",
                "output": "probabilities",
            },
            "preprocessing": (
                "square_crop(image_bgr, box_xyxy_pixels, crop_margin) from classifiers.py; resize to input_size "
                "(INTER_AREA when shrinking, else INTER_LINEAR); BGR->RGB; /255; (x - mean) / std; NCHW float32"
            ),
            "data": {
                "source": data_source,
                "license_status": license_status,
                "train_files": len({s.file for s in train_samples}),
                "held_back_files": len({s.file for s in held_back}),
                "train_crops": int(keep.sum()),
                "held_back_crops": len(held_keep),
                "class_counts_train": {c: int(np.sum(labels[keep] == i)) for i, c in enumerate(classes)},
                "hash_manifest": data_manifest_path.name,
                "split_file": split_path.name,
            },
            "threshold_source": threshold_source,
            "metrics": metrics,
            "training": {
                **{k: v for k, v in asdict(config).items() if k != "augment"},
                "augment": asdict(config.augment),
                "final_loss": round(losses[-1], 4) if losses else None,
                "seconds": round(time.monotonic() - started, 1),
                "torch_version": torch.__version__,
            },
            **(extra_card or {}),
        }
    )
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    log.info("trained %s: %s", name, json.dumps(metrics["held_back_clean"]))
    return TrainResult(model_path, card_path, split_path, data_manifest_path, card, held_keep, held_labels, held_probs)


def _long_side_ok(sample: CropSample, min_box_px: int) -> bool:
    if sample.box is None:
        return True
    width, height = _image_size(sample.image_path)
    x1, y1, x2, y2 = sample.box
    return max((x2 - x1) * width, (y2 - y1) * height) >= min_box_px


_SIZE_CACHE: dict[Path, tuple[int, int]] = {}


def _image_size(path: Path) -> tuple[int, int]:
    if path not in _SIZE_CACHE:
        image = read_image(path)
        _SIZE_CACHE[path] = (image.shape[1], image.shape[0])
    return _SIZE_CACHE[path]


__all__ = ["TrainResult", "choose_threshold", "train_crop_classifier"]
