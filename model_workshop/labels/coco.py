"""COCO detection JSON export (`images`, `annotations` with `bbox: [x, y, w, h]` in pixels, `categories`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_workshop.labels.errors import DatasetError
from model_workshop.labels.model import Dataset
from model_workshop.labels.yolo import ExportSummary, image_dimensions, known_dimensions


def to_coco(dataset: Dataset) -> dict[str, Any]:
    """COCO category ids start at 1 (0 is background by convention): category id = class index + 1."""
    if dataset.kind == "classification":
        raise DatasetError("this dataset holds whole-image classes, no boxes: COCO detection JSON needs boxes")
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    skipped = []
    for image in dataset.images:
        if not image.boxes and known_dimensions(image) is None:
            skipped.append(image.key)
            continue
        width, height = image_dimensions(image)
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": image.key, "width": width, "height": height})
        for box in image.boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": dataset.class_id(box.class_name) + 1,
                    "bbox": [box.left, box.top, box.width, box.height],
                    "area": box.width * box.height,
                    "iscrowd": 0,
                }
            )
    categories = [{"id": i + 1, "name": name, "supercategory": "ppe"} for i, name in enumerate(dataset.classes)]
    return {"images": images, "annotations": annotations, "categories": categories, "skipped": skipped}


def export_coco(dataset: Dataset, out: Path) -> ExportSummary:
    coco = to_coco(dataset)
    skipped = tuple(coco.pop("skipped"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(coco, indent=1) + "\n")
    return ExportSummary(images=len(coco["images"]), boxes=len(coco["annotations"]), skipped=skipped)
