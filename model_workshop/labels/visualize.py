"""Draw boxes and class names on images, and tile them into one contact sheet, to eyeball a labelling job."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from model_workshop.labels.errors import DatasetError
from model_workshop.labels.model import Dataset, ImageRecord
from model_workshop.labels.yolo import safe_relative

# BGR, chosen to stay distinguishable on photos; a class's colour is PALETTE[class id % len].
PALETTE: tuple[tuple[int, int, int], ...] = (
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
    (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0),
    (147, 69, 52), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203),
)  # fmt: skip
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _label(canvas: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], scale: float) -> None:
    thickness = max(1, round(scale * 2))
    (tw, th), baseline = cv2.getTextSize(text, FONT, scale, thickness)
    y = max(y, th + baseline)
    cv2.rectangle(canvas, (x, y - th - baseline), (x + tw, y), colour, -1)
    cv2.putText(canvas, text, (x, y - baseline), FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def read_image(image: ImageRecord) -> np.ndarray:
    if image.path is None:
        raise DatasetError(f"image {image.key!r} has no local file; import with --images-dir")
    pixels = cv2.imread(image.path, cv2.IMREAD_COLOR)
    if pixels is None:
        raise DatasetError(f"{image.path} cannot be decoded as an image; replace or remove it")
    return pixels


def draw(dataset: Dataset, image: ImageRecord) -> np.ndarray:
    canvas = read_image(image).copy()
    height, width = canvas.shape[:2]
    scale = max(0.4, min(width, height) / 900)
    line = max(2, round(min(width, height) / 300))
    for box in image.boxes:
        colour = PALETTE[dataset.class_id(box.class_name) % len(PALETTE)]
        p1 = (round(box.left), round(box.top))
        p2 = (round(box.right), round(box.bottom))
        cv2.rectangle(canvas, p1, p2, colour, line)
        _label(canvas, box.class_name, max(0, p1[0]), max(0, p1[1]), colour, scale)
    if image.image_label is not None:
        colour = PALETTE[dataset.class_id(image.image_label) % len(PALETTE)]
        _label(canvas, image.image_label, 0, 0, colour, scale * 1.5)
    return canvas


def visualize(dataset: Dataset, out: Path, *, limit: int | None = None) -> list[Path]:
    """Write one annotated JPEG per image under `out` (same relative layout as the keys)."""
    written = []
    images = [image for image in dataset.images if image.path is not None][:limit]
    if not images:
        raise DatasetError("no image in this dataset has a local file to draw on; import with --images-dir")
    for image in tqdm(images, desc="visualize", unit="img", leave=False):
        target = (out / safe_relative(image.key)).with_suffix(".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(target), draw(dataset, image)):
            raise DatasetError(f"could not write {target}; check the folder is writable")
        written.append(target)
    return written


def contact_sheet(dataset: Dataset, out: Path, *, tile: int = 256, limit: int = 100, columns: int = 0) -> Path:
    """One PNG with up to `limit` annotated thumbnails (file name under each) in a grid."""
    images = [image for image in dataset.images if image.path is not None][:limit]
    if not images:
        raise DatasetError("no image in this dataset has a local file to draw on; import with --images-dir")
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    caption = 18
    sheet = np.full((rows * (tile + caption), columns * tile, 3), 255, dtype=np.uint8)
    for index, image in enumerate(tqdm(images, desc="contact sheet", unit="img", leave=False)):
        drawn = draw(dataset, image)
        height, width = drawn.shape[:2]
        factor = tile / max(height, width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        thumb = cv2.resize(drawn, size, interpolation=cv2.INTER_AREA)
        row, column = divmod(index, columns)
        y0, x0 = row * (tile + caption), column * tile
        sheet[y0 : y0 + thumb.shape[0], x0 : x0 + thumb.shape[1]] = thumb
        name = Path(image.key).name
        cv2.putText(sheet, name[:40], (x0 + 2, y0 + tile + 13), FONT, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out.with_suffix(".png")), sheet):
        raise DatasetError(f"could not write {out}; check the folder is writable")
    return out.with_suffix(".png")
