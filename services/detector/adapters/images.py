"""Image checks and decoding with Rekognition's limits and error types.

`inspect_image` reads only the header (cheap, runs in the event loop); `decode_image` does the full decode
with EXIF orientation applied and runs where the model runs (a worker process).
"""

import struct

import cv2
import numpy as np

from services.detector.engines.base import ImageInput, InvalidImage

MAX_BYTES_INLINE = 4 * 1024 * 1024  # Image.Bytes
MAX_BYTES_S3 = 15 * 1024 * 1024  # Image.S3Object
MIN_SIDE = 64
MAX_SIDE = 4096

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carrying the dimensions (all SOFn except DHT C4, JPG C8, DAC CC).
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_size(data: bytes) -> tuple[int, int]:
    index = 2
    while index + 4 <= len(data):
        if data[index] != 0xFF:
            raise InvalidImage("JPEG is corrupt: bad marker in the header")
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            index += 2
            continue
        (length,) = struct.unpack(">H", data[index + 2 : index + 4])
        if marker in _SOF_MARKERS:
            if index + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            break
        index += 2 + length
    raise InvalidImage("JPEG is corrupt or truncated: no frame header found")


def inspect_image(data: bytes, *, max_bytes: int = MAX_BYTES_INLINE) -> ImageInput:
    """Format, size and dimension checks, the way Rekognition reports them."""
    if not data:
        raise InvalidImage("image is empty", aws_type="InvalidParameterException")
    if len(data) > max_bytes:
        raise InvalidImage(
            f"image is {len(data)} bytes, over the {max_bytes} byte limit", aws_type="ImageTooLargeException"
        )
    if data.startswith(b"\xff\xd8\xff"):
        content_type = "image/jpeg"
        width, height = _jpeg_size(data)
    elif data.startswith(_PNG_MAGIC):
        content_type = "image/png"
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise InvalidImage("PNG is corrupt: no IHDR header")
        width, height = struct.unpack(">II", data[16:24])
    else:
        raise InvalidImage("image format is not supported: send JPEG or PNG")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise InvalidImage(
            f"image is {width}x{height} px; each side must be at most {MAX_SIDE} px", aws_type="ImageTooLargeException"
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise InvalidImage(
            f"image is {width}x{height} px; each side must be at least {MIN_SIDE} px",
            aws_type="InvalidParameterException",
        )
    return ImageInput(data=data, content_type=content_type, width=width, height=height)  # type: ignore[arg-type]


def decode_image(data: bytes) -> np.ndarray:
    """BGR uint8 pixels with the JPEG EXIF orientation applied (OpenCV's IMREAD_COLOR does it)."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise InvalidImage("image could not be decoded: the file is corrupt or truncated")
    return image
