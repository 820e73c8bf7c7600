"""train_crop_classifier: cached crops -> SmallCNN -> ONNX + model card + split + data hash manifest."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from model_workshop.scores import THRESHOLD_GRID, class_counts, evaluate_probs, f1
from model_workshop.settings import FromSettings, WorkshopSettings
from model_workshop.training.data import CropSample, DatasetError, Split, make_split, sha256_file
from model_workshop.training.model import (
    ONNX_OPSET,
    Augment,
    SmallCNN,
    count_parameters,
    crop_batch,
    export_onnx,
    normalise,
)
from services.detector.local_engine.classifiers import CropClassifier, square_crop

log = logging.getLogger(__name__)

MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)
# Fixed evaluation jitter that imitates an automatically located box (pose keypoints, detectors).
EVAL_JITTER_SHIFT = 0.15
EVAL_JITTER_SCALE = (0.8, 1.3)


@dataclass(frozen=True)
class TrainConfig:
    """Training knobs. Defaults fit a 64 px binary crop classifier trained on 2 CPU cores in minutes."""

    input_size: int = 64
    crop_margin: float = 0.15
    context_margin: float = 0.6
    context_px: int = 112
    epochs: int = 20
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    width: float = 1.0
    label_smoothing: float = 0.05
    class_balance: float = 0.5
    threshold: float | None = 0.5  # None: choose on a validation slice of the train side (binary models)
    validation_fraction: float = 0.15  # only used when threshold is None
    # Lowest threshold the validation slice may choose. The engine returns a cover only at P >= 0.5 as well
    # (Rekognition returns nothing under 50), so a lower card threshold would not be the one that decides.
    min_threshold: float = 0.05
    min_box_px: int = 8
    threads: int = 1  # under CPU contention one thread trains faster than two
    seed: int = 0
    max_train_per_class: int | None = None
    # Per epoch, at most this many crops of each class (a fresh random draw each epoch): bounds CPU time
    # on big classes and balances the classes a little.
    epoch_per_class: int | None = None
    augment: Augment = field(default_factory=Augment)


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


def _pixel_box(sample: CropSample, width: int, height: int) -> tuple[float, float, float, float]:
    if sample.box is None:
        return (0.0, 0.0, float(width), float(height))
    x1, y1, x2, y2 = sample.box
    return (x1 * width, y1 * height, x2 * width, y2 * height)


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read image {path} (not a JPEG/PNG or damaged); remove it or fix the file")
    return image


def _cache_key(samples: Sequence[CropSample], config: TrainConfig) -> str:
    digest = hashlib.sha256(f"v1|{config.context_margin}|{config.context_px}".encode())
    for s in samples:
        stat = s.image_path.stat()
        digest.update(f"{s.image_path}|{stat.st_size}|{stat.st_mtime_ns}|{s.box}\n".encode())
    return digest.hexdigest()[:24]


def extract_contexts(
    samples: Sequence[CropSample],
    config: TrainConfig,
    *,
    cache_dir: Path | None | FromSettings = FromSettings.CACHE,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Context crops (uint8 RGB [N, C, C, 3], the box plus context_margin) and each box's long side in pixels.

    Cached under cache_dir (never in the repository; default $PPE_CROP_CACHE), keyed by files, boxes and context
    settings.
    """
    if cache_dir is FromSettings.CACHE:
        cache_dir = WorkshopSettings().crop_cache
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"{_cache_key(samples, config)}.npz"
        if cache_file.is_file():
            cached = np.load(cache_file)
            return cached["contexts"], cached["box_px"]
    contexts = np.zeros((len(samples), config.context_px, config.context_px, 3), dtype=np.uint8)
    box_px = np.zeros(len(samples), dtype=np.float32)
    by_image: dict[Path, list[int]] = defaultdict(list)
    for index, sample in enumerate(samples):
        by_image[sample.image_path].append(index)
    for image_path, indices in tqdm(by_image.items(), desc="cutting crops", unit="img", disable=not progress):
        image = _read(image_path)
        height, width = image.shape[:2]
        for index in indices:
            box = _pixel_box(samples[index], width, height)
            box_px[index] = max(box[2] - box[0], box[3] - box[1])
            crop = square_crop(image, box, config.context_margin)
            interpolation = cv2.INTER_AREA if crop.shape[0] > config.context_px else cv2.INTER_LINEAR
            contexts[index] = cv2.resize(crop, (config.context_px, config.context_px), interpolation=interpolation)[
                :, :, ::-1
            ]
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp.npz")
        np.savez(tmp, contexts=contexts, box_px=box_px)
        tmp.replace(cache_file)
    return contexts, box_px


def jitter_box(
    box: tuple[float, float, float, float], rng: random.Random, shift: float, scale: tuple[float, float]
) -> tuple[float, float, float, float]:
    """Move and rescale a box like an imperfect automatic localisation would (shift as a fraction of its side)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    side = max(w, h)
    cx = (x1 + x2) / 2 + rng.uniform(-shift, shift) * side
    cy = (y1 + y2) / 2 + rng.uniform(-shift, shift) * side
    k = math.exp(rng.uniform(math.log(scale[0]), math.log(scale[1])))
    return (cx - k * w / 2, cy - k * h / 2, cx + k * w / 2, cy + k * h / 2)


def runtime_probs(
    classifier: CropClassifier,
    samples: Sequence[CropSample],
    *,
    jitter_seed: int | None = None,
    max_box_px: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Probabilities through the inference path (square_crop on the original image -> CropClassifier).

    jitter_seed: move/rescale each box (imperfect localisation); max_box_px: shrink each crop so the box's
    long side is at most this many pixels (a small, far-away object).
    """
    rng = random.Random(jitter_seed)
    probs = np.zeros((len(samples), len(classifier.classes)), dtype=np.float32)
    by_image: dict[Path, list[int]] = defaultdict(list)
    for index, sample in enumerate(samples):
        by_image[sample.image_path].append(index)
    for image_path, indices in tqdm(by_image.items(), desc="evaluating", unit="img", disable=not progress):
        image = _read(image_path)
        height, width = image.shape[:2]
        crops = []
        for index in indices:
            box = _pixel_box(samples[index], width, height)
            if jitter_seed is not None:
                box = jitter_box(box, rng, EVAL_JITTER_SHIFT, EVAL_JITTER_SCALE)
            crop = square_crop(image, box, classifier.crop_margin)
            long_side = max(box[2] - box[0], box[3] - box[1])
            if max_box_px is not None and long_side > max_box_px:
                side = max(2, int(round(crop.shape[0] * max_box_px / long_side)))
                crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
            crops.append(crop)
        probs[indices] = classifier.predict(crops)
    return probs


def _train_net(
    contexts: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    config: TrainConfig,
    progress: bool,
    monitor: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[nn.Module, list[float]]:
    """monitor: validation context crops and labels, scored (argmax, no jitter) after each epoch for the log."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = SmallCNN(num_classes, width=config.width)
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = (counts.sum() / np.maximum(counts, 1) / num_classes) ** config.class_balance
    criterion = nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32), label_smoothing=config.label_smoothing
    )
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = len(labels)
    if config.epoch_per_class is not None:
        per_epoch = int(np.minimum(np.bincount(labels), config.epoch_per_class).sum())
    steps_per_epoch = max(1, math.ceil(per_epoch / config.batch_size))
    total_steps = max(1, config.epochs * steps_per_epoch)
    warmup = max(1, total_steps // 10)

    def schedule(step: int) -> float:  # linear warm-up, then cosine decay to 2 %
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    data = torch.from_numpy(contexts).permute(0, 3, 1, 2).contiguous()
    targets = torch.from_numpy(labels.astype(np.int64))
    crop_fraction = (1 + 2 * config.crop_margin) / (1 + 2 * config.context_margin)
    box_fraction = 1 / (1 + 2 * config.context_margin)
    losses: list[float] = []
    bar = tqdm(range(config.epochs), desc="training", unit="epoch", disable=not progress)
    for _ in bar:
        net.train()
        order = _epoch_order(labels, config.epoch_per_class, generator)
        total, correct, loss_sum = 0, 0, 0.0
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            if len(idx) < 2:
                continue
            batch = crop_batch(data[idx], crop_fraction, box_fraction, config.input_size, config.augment, generator)
            logits = net(normalise(batch, MEAN, STD))
            loss = criterion(logits, targets[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == targets[idx]).sum())
            total += len(idx)
        losses.append(loss_sum / max(total, 1))
        shown = {"loss": f"{losses[-1]:.3f}", "acc": f"{correct / max(total, 1):.3f}"}
        if monitor is not None:
            shown["val_acc"] = f"{_monitor_accuracy(net, monitor, crop_fraction, config.input_size):.3f}"
            log.info("epoch %d/%d %s", len(losses), config.epochs, " ".join(f"{k} {v}" for k, v in shown.items()))
        bar.set_postfix(shown)
    return net.eval(), losses


@torch.no_grad()
def _monitor_accuracy(
    net: nn.Module, monitor: tuple[np.ndarray, np.ndarray], crop_fraction: float, input_size: int
) -> float:
    net.eval()
    contexts, labels = monitor
    data = torch.from_numpy(contexts).permute(0, 3, 1, 2).contiguous()
    predicted = []
    for start in range(0, len(data), 256):
        batch = crop_batch(data[start : start + 256], crop_fraction, 0.0, input_size, None)
        predicted.append(net(normalise(batch, MEAN, STD)).argmax(1))
    net.train()
    return float((torch.cat(predicted).numpy() == labels).mean())


def _epoch_order(labels: np.ndarray, per_class: int | None, generator: torch.Generator) -> torch.Tensor:
    if per_class is None:
        return torch.randperm(len(labels), generator=generator)
    picked = []
    for label in np.unique(labels):
        members = torch.from_numpy(np.flatnonzero(labels == label))
        picked.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    chosen = torch.cat(picked)
    return chosen[torch.randperm(len(chosen), generator=generator)]


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
    net, losses = _train_net(contexts[keep], labels[keep], len(classes), config, progress, monitor)

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
        image = _read(path)
        _SIZE_CACHE[path] = (image.shape[1], image.shape[0])
    return _SIZE_CACHE[path]


__all__ = ["TrainConfig", "TrainResult", "train_crop_classifier", "extract_contexts", "runtime_probs"]
