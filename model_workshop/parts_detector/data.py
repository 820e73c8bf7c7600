"""Labelled sources for the part detector: YOLO folders whose class ids map to (part, covered)."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_workshop.errors import DatasetError
from services.detector.local_engine.parts import PARTS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SPLITS_DIR = Path(__file__).resolve().parents[2] / "services" / "detector" / "local_engine" / "weights"


@dataclass(frozen=True)
class Source:
    """One YOLO folder (`images/`, `labels/`); `classes` maps a YOLO class id to (part index, covered 0/1)."""

    name: str
    root: Path
    classes: dict[int, tuple[int, int]]
    split_file: Path | None = None  # a {"train": [...], "test": [...]} file list relative to data root

    @property
    def parts(self) -> frozenset[int]:
        """Parts this source labels: its images teach the other parts nothing (they are not boxed there)."""
        return frozenset(part for part, _ in self.classes.values())


@dataclass(frozen=True)
class Sample:
    image: Path
    source: str
    boxes: np.ndarray  # [N, 4] x1 y1 x2 y2, normalised 0..1
    part: np.ndarray  # [N] index into PARTS
    covered: np.ndarray  # [N] 0/1
    parts_labelled: tuple[int, ...]


def default_sources(data: Path) -> list[Source]:
    """The project's data: helmet / no_helmet head boxes and bare / gloved hand boxes, TRAIN side only."""
    head, hand = PARTS.index("HEAD"), PARTS.index("HAND")
    return [
        Source("helmet_vest", data / "helmet_vest", {0: (head, 1), 1: (head, 0)}, SPLITS_DIR / "head_cover.split.json"),
        Source("gloves", data / "gloves", {0: (hand, 0), 1: (hand, 1)}, SPLITS_DIR / "hand_cover.split.json"),
    ]


def parse_source(spec: str) -> Source:
    """`DIR:ID=PART/STATE,...`, e.g. `site_photos:0=head/covered,1=head/bare,2=hand/gloved` (states: covered,
    gloved, helmet = 1; bare = 0)."""
    folder, sep, mapping = spec.rpartition(":")
    if not sep or not folder:
        raise DatasetError(f"--source expects DIR:ID=PART/STATE,..., got {spec!r}")
    classes: dict[int, tuple[int, int]] = {}
    for item in mapping.split(","):
        cid, _, target = item.partition("=")
        part, _, state = target.partition("/")
        part = part.upper()
        if part not in PARTS or state not in ("covered", "gloved", "helmet", "bare") or not cid.isdigit():
            raise DatasetError(f"bad class map {item!r} in {spec!r} (parts: {PARTS}; states: covered / bare)")
        classes[int(cid)] = (PARTS.index(part), 0 if state == "bare" else 1)
    root = Path(folder)
    return Source(root.name, root, classes)


def _read_labels(path: Path, classes: dict[int, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes, part, covered = [], [], []
    if path.is_file():
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) < 5 or int(fields[0]) not in classes:
                continue
            cx, cy, w, h = (float(v) for v in fields[1:5])
            boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            p, c = classes[int(fields[0])]
            part.append(p)
            covered.append(c)
    return (
        np.clip(np.asarray(boxes, np.float32).reshape(-1, 4), 0, 1),
        np.asarray(part, np.int64),
        np.asarray(covered, np.int64),
    )


def load_samples(source: Source, data_root: Path, side: str) -> list[Sample]:
    """The source's images of one side of its split file ("train" / "test"); all images when it has none."""
    if source.split_file is not None:
        files = [data_root / rel for rel in json.loads(source.split_file.read_text())[side]]
    elif side == "train":
        files = sorted(p for p in (source.root / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        return []
    if not files:
        raise DatasetError(f"{source.name}: no images for side {side!r} under {source.root}")
    samples = []
    for image in files:
        boxes, part, covered = _read_labels(source.root / "labels" / f"{image.stem}.txt", source.classes)
        samples.append(Sample(image, source.name, boxes, part, covered, tuple(sorted(source.parts))))
    return samples


def split_validation(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """A seeded, per-source validation slice by file (for epochs, thresholds and calibration)."""
    train, val = [], []
    for name in sorted({s.source for s in samples}):
        group = sorted((s for s in samples if s.source == name), key=lambda s: s.image.name)
        random.Random(f"{seed}:{name}").shuffle(group)
        cut = max(1, round(len(group) * fraction))
        val += group[:cut]
        train += group[cut:]
    return train, val


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
