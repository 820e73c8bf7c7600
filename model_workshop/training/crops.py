"""Crops of the training images: the context crops training cuts (cached), and the probabilities of the
inference path (square_crop on the original image -> CropClassifier), on clean or jittered boxes."""

from __future__ import annotations

import hashlib
import math
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from model_workshop.settings import FromSettings, WorkshopSettings
from model_workshop.training.data import CropSample, DatasetError
from model_workshop.training.fit import TrainConfig
from services.detector.local_engine.classifiers import CropClassifier, square_crop

# Fixed evaluation jitter that imitates an automatically located box (pose keypoints, detectors).
EVAL_JITTER_SHIFT = 0.15
EVAL_JITTER_SCALE = (0.8, 1.3)


def _pixel_box(sample: CropSample, width: int, height: int) -> tuple[float, float, float, float]:
    if sample.box is None:
        return (0.0, 0.0, float(width), float(height))
    x1, y1, x2, y2 = sample.box
    return (x1 * width, y1 * height, x2 * width, y2 * height)


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read image {path} (not a JPEG/PNG or damaged); remove it or fix the file")
    return image


def _images(samples: Sequence[CropSample], desc: str, progress: bool) -> Iterator[tuple[np.ndarray, list[int]]]:
    """Each image of the samples read once, in the order first named, with the indices of its samples."""
    by_image: dict[Path, list[int]] = defaultdict(list)
    for index, sample in enumerate(samples):
        by_image[sample.image_path].append(index)
    for image_path, indices in tqdm(by_image.items(), desc=desc, unit="img", disable=not progress):
        yield read_image(image_path), indices


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
    for image, indices in _images(samples, "cutting crops", progress):
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
    for image, indices in _images(samples, "evaluating", progress):
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
