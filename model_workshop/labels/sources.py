"""Open whatever the user points at as a dataset: a dataset.json, a YOLO folder or a folder per class."""

from __future__ import annotations

from pathlib import Path

from model_workshop.labels.errors import DatasetError
from model_workshop.labels.folders import import_folders
from model_workshop.labels.model import Dataset
from model_workshop.labels.yolo import import_yolo


def open_dataset(path: Path) -> Dataset:
    if path.is_file():
        if path.suffix in (".manifest", ".jsonl"):
            raise DatasetError(
                f"{path} looks like a Ground Truth manifest; import it first: "
                f"labels import-gt {path} --images-dir DIR -o dataset.json"
            )
        return Dataset.load(path)
    if path.is_dir():
        if (path / "images").is_dir() and (path / "labels").is_dir():
            return import_yolo(path)
        return import_folders(path)
    raise DatasetError(f"{path} does not exist; give a dataset.json, a YOLO folder or a folder per class")
