"""Folder-per-class layout: `<root>/<class name>/**/<image>` means the whole image is that class."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from model_workshop.labels.errors import DatasetError
from model_workshop.labels.images import image_size, iter_images
from model_workshop.labels.model import Dataset, ImageRecord


def class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def import_folders(root: Path) -> Dataset:
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; expected one subfolder per class")
    folders = class_folders(root)
    if len(folders) < 2:
        raise DatasetError(f"{root} has {len(folders)} class subfolder(s); a classifier needs at least two")
    records = []
    for folder in folders:
        for path in tqdm(list(iter_images(folder)), desc=f"class {folder.name}", unit="img", leave=False):
            size = image_size(path)
            records.append(
                ImageRecord(
                    key=path.relative_to(root).as_posix(),
                    path=str(path),
                    width=size[0] if size else None,
                    height=size[1] if size else None,
                    image_label=folder.name,
                )
            )
    return Dataset(classes=tuple(folder.name for folder in folders), images=tuple(records))
