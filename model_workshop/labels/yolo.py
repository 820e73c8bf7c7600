"""YOLO folders: `images/**.jpg` + `labels/**.txt` (`class cx cy w h`, normalised to 0..1) + names file."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from model_workshop.labels.errors import DatasetError
from model_workshop.labels.images import image_size, iter_images
from model_workshop.labels.model import Box, Dataset, ImageRecord

NAMES_FILES = ("data.yaml", "dataset.yaml", "classes.txt", "obj.names")


def read_names(folder: Path, names_file: Path | None = None) -> list[str]:
    """Class names from data.yaml (`names:` list or {id: name}) or a one-name-per-line file."""
    candidates = [names_file] if names_file is not None else [folder / name for name in NAMES_FILES]
    for candidate in candidates:
        if candidate is None or not candidate.is_file():
            continue
        if candidate.suffix in (".yaml", ".yml"):
            data: Any = yaml.safe_load(candidate.read_text())
            names = data.get("names") if isinstance(data, dict) else None
            if isinstance(names, dict):
                return [str(names[k]) for k in sorted(names, key=int)]
            if isinstance(names, list):
                return [str(n) for n in names]
            raise DatasetError(f"{candidate} has no 'names:' list; add one, e.g. names: ['vest', 'no_vest']")
        return [line.strip() for line in candidate.read_text().splitlines() if line.strip()]
    raise DatasetError(
        f"no class names found in {folder}: add a data.yaml with `names: [...]` or a classes.txt, or pass --names FILE"
    )


def _parse_label_file(label_file: Path, names: list[str], width: int, height: int) -> list[Box]:
    boxes = []
    for number, raw in enumerate(label_file.read_text().splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        where = f"{label_file}:{number}"
        if len(fields) != 5:
            raise DatasetError(f"{where}: expected 'class cx cy w h' (5 numbers), got {raw!r}")
        try:
            class_id = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError as exc:
            raise DatasetError(f"{where}: not numbers: {raw!r}") from exc
        if not 0 <= class_id < len(names):
            raise DatasetError(f"{where}: class id {class_id} is outside the names list (0..{len(names) - 1})")
        boxes.append(
            Box(
                class_name=names[class_id],
                left=(cx - w / 2) * width,
                top=(cy - h / 2) * height,
                width=w * width,
                height=h * height,
            )
        )
    return boxes


def import_yolo(folder: Path, *, names_file: Path | None = None) -> Dataset:
    """Read a YOLO folder; a label file is `labels/<same relative path as under images/>.txt`."""
    images_dir, labels_dir = folder / "images", folder / "labels"
    if not images_dir.is_dir() or not labels_dir.is_dir():
        raise DatasetError(f"{folder} is not a YOLO folder: it needs images/ and labels/ subfolders")
    names = read_names(folder, names_file)
    records = []
    for path in tqdm(list(iter_images(images_dir)), desc="yolo images", unit="img", leave=False):
        relative = path.relative_to(images_dir)
        size = image_size(path)
        if size is None:
            raise DatasetError(f"{path} is not a readable JPEG or PNG; replace or remove it")
        label_file = (labels_dir / relative).with_suffix(".txt")
        boxes = _parse_label_file(label_file, names, *size) if label_file.is_file() else []
        records.append(
            ImageRecord(key=relative.as_posix(), path=str(path), width=size[0], height=size[1], boxes=tuple(boxes))
        )
    return Dataset(classes=tuple(names), images=tuple(records))


def yolo_line(class_id: int, box: Box, width: int, height: int) -> str:
    cx = (box.left + box.width / 2) / width
    cy = (box.top + box.height / 2) / height
    return f"{class_id} {cx:.6f} {cy:.6f} {box.width / width:.6f} {box.height / height:.6f}"


@dataclass(frozen=True)
class ExportSummary:
    images: int
    boxes: int
    skipped: tuple[str, ...]  # images with no boxes whose size is unknown (no local file): nothing to write

    def render(self, out: Path) -> str:
        text = f"{self.images} images, {self.boxes} boxes -> {out}"
        if self.skipped:
            text += f" (skipped {len(self.skipped)} unlabelled images with no local file, e.g. {self.skipped[0]})"
        return text


def known_dimensions(image: ImageRecord) -> tuple[int, int] | None:
    if image.width is not None and image.height is not None:
        return image.width, image.height
    return image_size(Path(image.path)) if image.path else None


def image_dimensions(image: ImageRecord) -> tuple[int, int]:
    size = known_dimensions(image)
    if size is None:
        raise DatasetError(
            f"image {image.key!r}: size unknown and no readable local file; "
            "pass --images-dir when importing so its size can be read"
        )
    return size


def safe_relative(key: str) -> Path:
    """The image key as a relative path that stays inside the export folder."""
    relative = Path(key)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise DatasetError(f"image key {key!r} cannot be used as a path inside the export folder; rename the image")
    return relative


def _place_image(source: str, target: Path, link: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        target.unlink()
    if link:
        os.symlink(os.path.abspath(source), target)
    else:
        shutil.copy2(source, target)


def export_yolo(dataset: Dataset, out: Path, *, link: bool = False) -> ExportSummary:
    """Write images/, labels/, classes.txt and data.yaml under `out`."""
    if dataset.kind == "classification":
        raise DatasetError(
            "this dataset holds whole-image classes, no boxes: YOLO detection needs boxes. "
            "Train on it directly with `labels train`, or export COCO"
        )
    # validate everything before writing anything: a bad image leaves no half-written export behind
    planned, skipped = [], []
    for image in dataset.images:
        if not image.boxes and known_dimensions(image) is None:
            skipped.append(image.key)
            continue
        planned.append((image, safe_relative(image.key), image_dimensions(image)))
    written = 0
    for image, relative, (width, height) in tqdm(planned, desc="export yolo", unit="img", leave=False):
        lines = [yolo_line(dataset.class_id(box.class_name), box, width, height) for box in image.boxes]
        label_file = (out / "labels" / relative).with_suffix(".txt")
        label_file.parent.mkdir(parents=True, exist_ok=True)
        label_file.write_text("".join(line + "\n" for line in lines))
        written += len(lines)
        if image.path is not None:
            _place_image(image.path, out / "images" / relative, link)
    (out / "classes.txt").write_text("".join(name + "\n" for name in dataset.classes))
    data_yaml = {
        "path": str(out.resolve()),
        "train": "images",
        "val": "images",
        "nc": len(dataset.classes),
        "names": list(dataset.classes),
    }
    (out / "data.yaml").write_text(yaml.safe_dump(data_yaml, sort_keys=False))
    return ExportSummary(images=len(planned), boxes=written, skipped=tuple(skipped))
