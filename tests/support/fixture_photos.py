"""The committed fixture photos (tests/fixtures, README there): real photos every clone has.

Mask photos (MIT) and glove photos (CC BY 4.0) only; the tests that need the helmet / vest scenes use
../shared/data and skip without it.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MASKS = FIXTURES / "masks"
GLOVES = FIXTURES / "gloves"
# By eye: masked faces in pic1 (3) and aizoo demo2 (1); bare faces in pic3 (2) and the group in pic2.
MASK_SCENES = tuple(MASKS / f"{name}.jpg" for name in ("scene_fmd_pic1", "scene_fmd_pic2", "scene_fmd_pic3",
                                                         "scene_aizoo_demo2"))
GLOVE_NAMES = ("bare_hand", "gloved_hand")  # YOLO class ids 0 and 1 of gloves/labels


def masked_close_ups() -> list[Path]:
    return sorted((MASKS / "with_mask").glob("*.jpg"))


def bare_close_ups() -> list[Path]:
    return sorted((MASKS / "without_mask").glob("*.jpg"))


def glove_label(photo: Path) -> Path:
    return GLOVES / "labels" / f"{photo.stem}.txt"


def hand_photos(cls: str) -> list[Path]:
    """The glove photos whose labelled hands are all `cls` (bare_hand / gloved_hand)."""
    wanted = str(GLOVE_NAMES.index(cls))
    photos = []
    for photo in sorted((GLOVES / "images").glob("*.jpg")):
        classes = {line.split()[0] for line in glove_label(photo).read_text().splitlines() if line.strip()}
        if classes == {wanted}:
            photos.append(photo)
    return photos
