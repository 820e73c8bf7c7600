"""The labelled data an evaluation scores: which files (a model's held-back split, or a TRAIN-side validation
slice for tuning) and their YOLO boxes in pixels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.detector.local_engine.pipeline import WEIGHTS_DIR

YOLO_CLASSES = ("helmet", "no_helmet", "no_wear", "wear")


def held_back(
    split_name: str, data_root: Path, weights_dir: Path = WEIGHTS_DIR, side: str = "test"
) -> list[Path] | None:
    """One side ("test" = held back, "train" = for tuning) of a model's split file; None when it is absent."""
    path = weights_dir / f"{split_name}.split.json"
    if not path.is_file():
        return None
    split = json.loads(path.read_text())
    if side == "val":
        return validation_slice(split_name, data_root, weights_dir, split["train"])
    return [data_root / rel for rel in split[side]]


VAL_SOURCES = {"head_cover": "helmet_vest/", "hand_cover": "gloves/"}  # split file -> part detector source


def validation_slice(split_name: str, data_root: Path, weights_dir: Path, train: list[str]) -> list[Path]:
    """TRAIN-side files for tuning the engine: the part detector's validation slice (part_head.data.csv, side
    "val": not trained on, the calibration slice) for helmet_vest and gloves; every 6th TRAIN-side file otherwise
    (masks: the face detector and the FACE_COVER classifier have no slice of their own)."""
    prefix = VAL_SOURCES.get(split_name)
    manifest = weights_dir / "part_head.data.csv"
    if prefix is None or not manifest.is_file():
        return [data_root / rel for rel in train[::6]]
    rows = [line.split(",") for line in manifest.read_text().splitlines()[1:]]
    return [data_root / row[0] for row in rows if row[0].startswith(prefix) and row[2] == "val"]


@dataclass(frozen=True)
class Labelled:
    cls: str
    box: np.ndarray  # x1, y1, x2, y2 pixels


def read_yolo(label_path: Path, width: int, height: int) -> list[Labelled]:
    rows: list[Labelled] = []
    if not label_path.is_file():
        return rows
    for line in label_path.read_text().splitlines():
        if not line.strip():
            continue
        c, cx, cy, w, h = line.split()[:5]
        x, y, bw, bh = float(cx) * width, float(cy) * height, float(w) * width, float(h) * height
        rows.append(Labelled(YOLO_CLASSES[int(c)], np.array([x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2])))
    return rows

