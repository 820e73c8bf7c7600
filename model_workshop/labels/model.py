"""The one internal dataset model: every importer produces a `Dataset`, every exporter consumes one.

Boxes are kept in pixels (Ground Truth and COCO's unit); YOLO's normalised numbers are derived on export.
A dataset is saved as JSON (`dataset.json`) so commands can be chained: import once, then check,
visualise, export or train from the same file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model_workshop.labels.errors import DatasetError

SCHEMA: Literal["ppe-labels/1"] = "ppe-labels/1"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Box(_Frozen):
    class_name: str = Field(min_length=1, description="Class of the object inside the box.")
    left: float = Field(description="Left edge in pixels from the image's left side.")
    top: float = Field(description="Top edge in pixels from the image's top side.")
    width: float = Field(description="Box width in pixels (zero or negative is an error that `check` reports).")
    height: float = Field(description="Box height in pixels (zero or negative is an error that `check` reports).")

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height


class ImageRecord(_Frozen):
    key: str = Field(min_length=1, description="Stable id of the image inside the dataset (relative path or S3 key).")
    path: str | None = Field(description="Local file holding the pixels, or None when only a remote copy is known.")
    source_ref: str | None = Field(default=None, description="Where the image came from, e.g. s3://bucket/key.")
    width: int | None = Field(default=None, ge=1, description="Image width in pixels, when known.")
    height: int | None = Field(default=None, ge=1, description="Image height in pixels, when known.")
    boxes: tuple[Box, ...] = Field(default=(), description="Labelled objects (bounding-box jobs, YOLO).")
    image_label: str | None = Field(default=None, description="Whole-image class (classification jobs, folders).")

    @property
    def file_stem(self) -> str:
        return Path(self.key).stem

    @property
    def is_labelled(self) -> bool:
        return bool(self.boxes) or self.image_label is not None


class Dataset(_Frozen):
    schema_id: Literal["ppe-labels/1"] = Field(default=SCHEMA, alias="schema", description="File format version.")
    classes: tuple[str, ...] = Field(description="Class names; a class's index is its id on export.")
    images: tuple[ImageRecord, ...] = Field(description="Every image, labelled or not.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> Dataset:
        if len(set(self.classes)) != len(self.classes):
            dupes = sorted(name for name, n in Counter(self.classes).items() if n > 1)
            raise DatasetError(f"class names repeat: {dupes}; give each class one name")
        known = set(self.classes)
        for image in self.images:
            used = {box.class_name for box in image.boxes}
            if image.image_label is not None:
                used.add(image.image_label)
            unknown = used - known
            if unknown:
                raise DatasetError(
                    f"image {image.key!r} uses classes {sorted(unknown)} "
                    f"missing from the class list {list(self.classes)}"
                )
        keys = Counter(image.key for image in self.images)
        repeated = [key for key, n in keys.items() if n > 1]
        if repeated:
            raise DatasetError(f"image keys repeat: {repeated[:5]}; each image may appear once")
        return self

    @property
    def kind(self) -> Literal["detection", "classification", "empty"]:
        if any(image.boxes for image in self.images):
            return "detection"
        if any(image.image_label is not None for image in self.images):
            return "classification"
        return "empty"

    def class_id(self, name: str) -> int:
        return self.classes.index(name)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=1, by_alias=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Dataset:
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError as exc:
            raise DatasetError(f"dataset file {path} does not exist; create it with `labels import-*`") from exc
        except ValueError as exc:
            raise DatasetError(f"{path} is not a valid dataset file ({SCHEMA}): {exc}") from exc


def ordered_classes(seen: list[str], forced: list[str] | None) -> tuple[str, ...]:
    """Classes in first-seen order, or exactly `forced` (which must list every class that was seen)."""
    if forced is None:
        return tuple(dict.fromkeys(seen))
    missing = sorted(set(seen) - set(forced))
    if missing:
        raise DatasetError(f"--classes leaves out {missing}, which the labels use; add them to --classes")
    return tuple(dict.fromkeys(forced))
