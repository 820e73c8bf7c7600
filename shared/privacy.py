"""What leaves the platform as an image is face-blurred: the regions to blur, and the blur itself (OpenCV).

Used by the notifier (alert images) and by ingest (the zone editor's camera snapshot)."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from shared.rekognition import BodyPartName, ProtectiveEquipmentPerson


class SnapshotError(Exception):
    """The frame could not be decoded (or encoded) as an image."""


class Box(Protocol):
    """A box in ratios of the image; read-only, so frozen dataclasses (Region) qualify."""

    @property
    def left(self) -> float: ...
    @property
    def top(self) -> float: ...
    @property
    def width(self) -> float: ...
    @property
    def height(self) -> float: ...


@dataclass(frozen=True)
class Region:
    """A box in ratios of the image (0..1), origin top left."""

    left: float
    top: float
    width: float
    height: float


def privacy_regions(persons: Sequence[ProtectiveEquipmentPerson]) -> list[Region]:
    """Regions to blur: FACE / HEAD equipment boxes, and the head band (top 30 %) of each person's box.

    Rekognition gives no box for a bare body part, so the top of the person box stands in for the head.
    """
    regions: list[Region] = []
    for person in persons:
        pb = person.BoundingBox
        regions.append(Region(left=pb.Left, top=pb.Top, width=pb.Width, height=pb.Height * 0.3))
        for part in person.BodyParts:
            if part.Name in (BodyPartName.FACE, BodyPartName.HEAD):
                regions.extend(
                    Region(d.BoundingBox.Left, d.BoundingBox.Top, d.BoundingBox.Width, d.BoundingBox.Height)
                    for d in part.EquipmentDetections
                )
    return regions


def blur_regions(image_bytes: bytes, boxes: Sequence[Box], *, max_side: int = 1280, quality: int = 85) -> bytes:
    """Decode, downscale to max_side, blur each box (ratios of the image) beyond recognition, encode JPEG."""
    image = cv2.imdecode(np.frombuffer(image_bytes, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise SnapshotError("frame bytes are not a decodable image")
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        image = cv2.resize(image, (int(width * scale), int(height * scale)), interpolation=cv2.INTER_AREA)
        height, width = image.shape[:2]
    for box in boxes:
        x1 = max(0, int(box.left * width))
        y1 = max(0, int(box.top * height))
        x2 = min(width, int((box.left + box.width) * width) + 1)
        y2 = min(height, int((box.top + box.height) * height) + 1)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        region = image[y1:y2, x1:x2]
        # Pixelate first (destroys identity), then smooth the blocks.
        small = cv2.resize(region, (max(1, (x2 - x1) // 12), max(1, (y2 - y1) // 12)), interpolation=cv2.INTER_AREA)
        blocky = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
        kernel = max(3, ((min(x2 - x1, y2 - y1) // 4) | 1))
        image[y1:y2, x1:x2] = cv2.GaussianBlur(blocky, (kernel, kernel), 0)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise SnapshotError("could not encode the snapshot as JPEG")
    return bytes(encoded.tobytes())
