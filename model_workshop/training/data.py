"""Labelled crop samples from a YOLO folder or a folder-per-class layout, and the group-aware split."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from model_workshop.errors import DatasetError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass(frozen=True)
class CropSample:
    """One training example: a box in an image (or the whole image) with a classifier label."""

    file: str  # image path relative to the data root (the key used in split and hash manifests)
    image_path: Path
    box: tuple[float, float, float, float] | None  # normalised x1, y1, x2, y2; None = the whole image
    label: int
    group: str


@dataclass(frozen=True)
class Split:
    """Which image files train and which are held back (file keys relative to the data root)."""

    train: frozenset[str]
    test: frozenset[str]

    def to_json(self) -> dict[str, list[str]]:
        return {"train": sorted(self.train), "test": sorted(self.test)}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Split:
        data = json.loads(Path(path).read_text())
        return cls(train=frozenset(data["train"]), test=frozenset(data["test"]))


def find_manifest(folder: Path) -> Path | None:
    """The nearest manifest.csv (file, sha256, ..., group) in the folder or above it."""
    for parent in [folder, *folder.parents]:
        candidate = parent / "manifest.csv"
        if candidate.is_file():
            return candidate
    return None


def read_manifest_groups(manifest: Path) -> dict[str, str]:
    with manifest.open(newline="") as handle:
        return {row["file"]: row["group"] for row in csv.DictReader(handle) if row.get("group")}


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _root_and_groups(folder: Path, data_root: Path | None) -> tuple[Path, dict[str, str]]:
    manifest = find_manifest(folder) if data_root is None else (data_root / "manifest.csv")
    if manifest is not None and manifest.is_file():
        return manifest.parent, read_manifest_groups(manifest)
    return (data_root or folder), {}


def yolo_class_names(folder: Path) -> list[str]:
    """Class names of a YOLO folder: data.yaml `names` (list or id->name map), else classes.txt / names.txt."""
    for name in ("data.yaml", "dataset.yaml"):
        path = folder / name
        if path.is_file():
            names = (yaml.safe_load(path.read_text()) or {}).get("names")
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names, key=int)]
            if isinstance(names, list):
                return [str(n) for n in names]
    for name in ("classes.txt", "names.txt", "obj.names"):
        path = folder / name
        if path.is_file():
            return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    raise DatasetError(f"{folder} has no data.yaml with `names:` (nor classes.txt); add one listing the class names")


def yolo_samples(
    folder: Path,
    class_map: Mapping[str, str],
    classes: Sequence[str],
    *,
    data_root: Path | None = None,
) -> list[CropSample]:
    """Boxes of a YOLO folder (images/ + labels/ + data.yaml) as crop samples.

    class_map maps a YOLO class name (or id as a string) to a classifier label in `classes`;
    boxes of unmapped classes are ignored.
    """
    folder = Path(folder)
    images_dir, labels_dir = folder / "images", folder / "labels"
    if not images_dir.is_dir() or not labels_dir.is_dir():
        raise DatasetError(f"{folder} must hold images/ and labels/ (YOLO layout)")
    names = yolo_class_names(folder)
    id_to_label: dict[int, int] = {}
    for key, label in class_map.items():
        if label not in classes:
            raise DatasetError(f"class map target {label!r} is not one of the classes {list(classes)}")
        class_id = int(key) if key.isdigit() else (names.index(key) if key in names else -1)
        if class_id < 0 or class_id >= len(names):
            raise DatasetError(f"class {key!r} is not in {folder}'s names {names}")
        id_to_label[class_id] = list(classes).index(label)
    root, groups = _root_and_groups(folder, data_root)
    samples: list[CropSample] = []
    for image in _images(images_dir):
        label_file = labels_dir / image.relative_to(images_dir).with_suffix(".txt")
        if not label_file.is_file():
            continue
        key = image.relative_to(root).as_posix() if image.is_relative_to(root) else image.name
        for row in label_file.read_text().splitlines():
            parts = row.split()
            if len(parts) < 5:
                continue
            class_id = int(float(parts[0]))
            if class_id not in id_to_label:
                continue
            cx, cy, w, h = (float(v) for v in parts[1:5])
            box = (max(0.0, cx - w / 2), max(0.0, cy - h / 2), min(1.0, cx + w / 2), min(1.0, cy + h / 2))
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            samples.append(CropSample(key, image, box, id_to_label[class_id], groups.get(key, key)))
    if not samples:
        raise DatasetError(f"no boxes of classes {sorted(class_map)} found under {folder}")
    return samples


def folder_samples(
    folder: Path,
    classes: Sequence[str],
    class_map: Mapping[str, str] | None = None,
    *,
    data_root: Path | None = None,
) -> list[CropSample]:
    """Whole images of a folder-per-class layout (<folder>/<class>/*.jpg) as samples.

    class_map maps a sub-folder name to a label; by default each label is its own sub-folder.
    """
    folder = Path(folder)
    mapping = dict(class_map) if class_map else {c: c for c in classes}
    root, groups = _root_and_groups(folder, data_root)
    samples: list[CropSample] = []
    for sub, label in mapping.items():
        if label not in classes:
            raise DatasetError(f"class map target {label!r} is not one of the classes {list(classes)}")
        sub_dir = folder / sub
        if not sub_dir.is_dir():
            raise DatasetError(f"{sub_dir} does not exist (expected one sub-folder per class)")
        for image in _images(sub_dir):
            key = image.relative_to(root).as_posix() if image.is_relative_to(root) else image.name
            samples.append(CropSample(key, image, None, list(classes).index(label), groups.get(key, key)))
    if not samples:
        raise DatasetError(f"no images found in the class folders of {folder}")
    return samples


def make_split(
    samples: Iterable[CropSample], *, test_fraction: float = 0.2, seed: int = 0, force_test: Iterable[str] = ()
) -> Split:
    """Group-aware split by image file: whole groups go to one side, stratified by the labels a group holds."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must be between 0 and 1")
    group_files: dict[str, set[str]] = defaultdict(set)
    group_labels: dict[str, set[int]] = defaultdict(set)
    for s in samples:
        group_files[s.group].add(s.file)
        group_labels[s.group].add(s.label)
    forced = set(force_test)
    test: set[str] = set()
    strata: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for group in sorted(group_files):
        if group_files[group] & forced:
            test |= group_files[group]
        else:
            strata[tuple(sorted(group_labels[group]))].append(group)
    rng = random.Random(seed)
    for key in sorted(strata):
        groups = strata[key]
        rng.shuffle(groups)
        target = test_fraction * sum(len(group_files[g]) for g in groups)
        taken = 0
        for group in groups:
            if taken >= target:
                break
            test |= group_files[group]
            taken += len(group_files[group])
    all_files = set().union(*group_files.values()) if group_files else set()
    return Split(train=frozenset(all_files - test), test=frozenset(test))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
