"""Real encoded test images for ingest, drawn in the test (tests/support/images.py), so no photo data is needed."""

import struct
from functools import lru_cache

import cv2
import numpy as np

from tests.support.images import photo_like


@lru_cache(maxsize=1)
def scene() -> np.ndarray:
    return photo_like(1280, 720)


def resized(width: int, height: int) -> np.ndarray:
    return cv2.resize(scene(), (width, height), interpolation=cv2.INTER_AREA)


def jpeg(width: int = 640, height: int = 360, *, quality: int = 85) -> bytes:
    ok, buffer = cv2.imencode(".jpg", resized(width, height), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buffer.tobytes()


def png(width: int = 320, height: int = 180) -> bytes:
    ok, buffer = cv2.imencode(".png", resized(width, height))
    assert ok
    return buffer.tobytes()


def with_exif_orientation(data: bytes, orientation: int, *, byte_order: str = "II") -> bytes:
    """Insert an APP1 EXIF segment holding only the Orientation tag right after SOI."""
    order = "<" if byte_order == "II" else ">"
    tiff = byte_order.encode() + struct.pack(order + "HI", 42, 8)
    tiff += struct.pack(order + "H", 1) + struct.pack(order + "HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff += struct.pack(order + "I", 0)
    payload = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


def noisy_jpeg(min_bytes: int) -> bytes:
    """A valid JPEG of at least `min_bytes` (random pixels do not compress), within the side limits."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(1300, 1700, 3), dtype=np.uint8)
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok and len(buffer) >= min_bytes, len(buffer)
    return buffer.tobytes()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature + IHDR that claims a size, and no pixel data: what a decompression bomb looks like first."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", 0)
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00" * 64
