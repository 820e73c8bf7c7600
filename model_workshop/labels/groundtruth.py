"""Import SageMaker Ground Truth output manifests (JSON lines) into a `Dataset`.

Each output line holds `source-ref` plus, per labelling job, a label attribute and `<attribute>-metadata`:
- bounding-box jobs: `{"annotations": [{"class_id", "left", "top", "width", "height"}], "image_size": [...]}`
  with the id -> name table in the metadata's `class-map`;
- image-classification jobs: an integer class id, with `class-name` (and sometimes `class-map`) in the metadata.
Class ids are local to one job, so jobs are merged by class NAME, never by id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from model_workshop.labels.errors import ManifestError
from model_workshop.labels.images import image_size
from model_workshop.labels.model import Box, Dataset, ImageRecord, ordered_classes

DETECTION = "groundtruth/object-detection"
CLASSIFICATION = "groundtruth/image-classification"
_METADATA_SUFFIX = "-metadata"


@dataclass
class _Pending:
    """An image while lines from several jobs are being merged into it."""

    key: str
    source_ref: str
    path: str | None
    width: int | None = None
    height: int | None = None
    boxes: list[Box] = field(default_factory=list)
    label: str | None = None
    label_origin: str = ""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key.jpg` -> (`bucket`, `some/key.jpg`)."""
    if not uri.startswith("s3://"):
        raise ManifestError(f"{uri!r} is not an s3:// URI (expected s3://bucket/key)")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ManifestError(f"{uri!r} has no bucket name (expected s3://bucket/key)")
    return bucket, key


def _image_key(source_ref: str) -> str:
    if source_ref.startswith("s3://"):
        _bucket, key = split_s3_uri(source_ref)
        return key or source_ref
    return source_ref


def _local_path(source_ref: str, key: str, images_dir: Path | None) -> Path | None:
    """Find the local copy of an image: the key below images_dir, else its file name in images_dir."""
    if images_dir is None:
        local = Path(source_ref)
        return local if not source_ref.startswith("s3://") and local.is_file() else None
    for candidate in (images_dir / key, images_dir / Path(key).name):
        if candidate.is_file():
            return candidate
    return None


def _label_attributes(line: Mapping[str, Any], wanted: list[str] | None) -> list[str]:
    found = [k[: -len(_METADATA_SUFFIX)] for k in line if k.endswith(_METADATA_SUFFIX)]
    if wanted is None:
        return found
    return [name for name in wanted if name in found]


def _class_map(metadata: Mapping[str, Any], where: str) -> dict[int, str]:
    raw = metadata.get("class-map", {})
    if not isinstance(raw, dict):
        raise ManifestError(f'{where}: class-map must be an object like {{"0": "vest"}}, got {raw!r}')
    try:
        return {int(k): str(v) for k, v in raw.items()}
    except ValueError as exc:
        raise ManifestError(f"{where}: class-map keys must be integer ids, got {list(raw)}") from exc


def _number(annotation: Mapping[str, Any], name: str, where: str) -> float:
    value = annotation.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ManifestError(f"{where}: annotation field {name!r} must be a number, got {value!r}")
    return float(value)


def _detection(
    value: Any, metadata: Mapping[str, Any], where: str, seen: list[str]
) -> tuple[list[Box], tuple[int, int] | None]:
    if not isinstance(value, dict) or not isinstance(value.get("annotations"), list):
        raise ManifestError(f"{where}: a bounding-box label needs an 'annotations' list, got {value!r}")
    class_map = _class_map(metadata, where)
    seen.extend(class_map[i] for i in sorted(class_map))
    boxes = []
    for annotation in value["annotations"]:
        class_id = annotation.get("class_id")
        if not isinstance(class_id, int) or class_id not in class_map:
            raise ManifestError(
                f"{where}: class_id {class_id!r} is not in the job's class-map {class_map}; "
                "fix the manifest or re-export it from Ground Truth"
            )
        boxes.append(
            Box(
                class_name=class_map[class_id],
                left=_number(annotation, "left", where),
                top=_number(annotation, "top", where),
                width=_number(annotation, "width", where),
                height=_number(annotation, "height", where),
            )
        )
    size = None
    sizes = value.get("image_size")
    if isinstance(sizes, list) and sizes and isinstance(sizes[0], dict):
        size = (int(sizes[0]["width"]), int(sizes[0]["height"]))
    return boxes, size


def _classification(value: Any, metadata: Mapping[str, Any], where: str, seen: list[str]) -> str:
    if isinstance(value, list):
        raise ManifestError(f"{where}: multi-label classification jobs are not supported; split them per class")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(f"{where}: a classification label must be an integer class id, got {value!r}")
    class_map = _class_map(metadata, where)
    seen.extend(class_map[i] for i in sorted(class_map))
    name = metadata.get("class-name")
    if name is None:
        name = class_map.get(value)
    if name is None:
        raise ManifestError(f"{where}: class id {value} has no 'class-name' and no entry in 'class-map'")
    if value in class_map and class_map[value] != name:
        raise ManifestError(f"{where}: class-name {name!r} disagrees with class-map[{value}] = {class_map[value]!r}")
    seen.append(str(name))
    return str(name)


def _job_type(value: Any, metadata: Mapping[str, Any]) -> str:
    declared = metadata.get("type")
    if isinstance(declared, str):
        return declared
    if isinstance(value, dict) and "annotations" in value:
        return DETECTION
    return CLASSIFICATION


def read_manifest_lines(manifest: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    """(`file:line`, parsed object) for every non-empty line."""
    try:
        text = manifest.read_text()
    except FileNotFoundError as exc:
        raise ManifestError(f"manifest {manifest} does not exist") from exc
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{manifest.name}:{number}"
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(line, dict) or not isinstance(line.get("source-ref"), str):
            raise ManifestError(f"{where}: every line needs a 'source-ref' string (the image's s3:// URI)")
        yield where, line


def import_ground_truth(
    manifests: list[Path],
    *,
    images_dir: Path | None = None,
    label_attributes: list[str] | None = None,
    classes: list[str] | None = None,
) -> Dataset:
    """Merge the output manifests of one or more Ground Truth jobs into one dataset, by class name."""
    pending: dict[str, _Pending] = {}
    seen: list[str] = []
    lines = [item for manifest in manifests for item in read_manifest_lines(manifest)]
    for where, line in tqdm(lines, desc="ground truth lines", unit="line", leave=False):
        source_ref: str = line["source-ref"]
        key = _image_key(source_ref)
        if key not in pending:
            local = _local_path(source_ref, key, images_dir)
            pending[key] = _Pending(key=key, source_ref=source_ref, path=str(local) if local else None)
        image = pending[key]
        for attribute in _label_attributes(line, label_attributes):
            metadata = line[attribute + _METADATA_SUFFIX]
            if not isinstance(metadata, dict):
                raise ManifestError(f"{where}: {attribute}-metadata must be an object")
            if attribute not in line:
                continue  # the job failed on this image; Ground Truth leaves only failure-reason in metadata
            at = f"{where} [{attribute}]"
            value = line[attribute]
            job_type = _job_type(value, metadata)
            if job_type == DETECTION:
                boxes, size = _detection(value, metadata, at, seen)
                image.boxes.extend(boxes)
                if size is not None:
                    image.width, image.height = size
            elif job_type == CLASSIFICATION:
                name = _classification(value, metadata, at, seen)
                if image.label is not None and image.label != name:
                    raise ManifestError(
                        f"{at}: image {key!r} is labelled {name!r} here but {image.label!r} at {image.label_origin}; "
                        "resolve the disagreement (re-label or drop one job) before importing"
                    )
                image.label, image.label_origin = name, at
            else:
                raise ManifestError(
                    f"{at}: job type {job_type!r} is not supported; use bounding-box or image-classification jobs"
                )
    records = []
    for image in pending.values():
        width, height = image.width, image.height
        if width is None and image.path is not None:
            size = image_size(Path(image.path))
            if size is not None:
                width, height = size
        records.append(
            ImageRecord(
                key=image.key,
                path=image.path,
                source_ref=image.source_ref,
                width=width,
                height=height,
                boxes=tuple(image.boxes),
                image_label=image.label,
            )
        )
    return Dataset(classes=ordered_classes(seen, classes), images=tuple(records))
