"""Image checks and decoding with Rekognition's limits and error types.

`inspect_image` reads only the header (`shared.images`: cheap, runs in the event loop); `decode_image` does the
full decode with EXIF orientation applied and runs where the model runs (a worker process).
"""

import cv2
import numpy as np

from services.detector.engines.base import ImageInput
from shared.images import InvalidImage, read_header

MAX_BYTES_INLINE = 4 * 1024 * 1024  # Image.Bytes
MAX_BYTES_S3 = 15 * 1024 * 1024  # Image.S3Object
MIN_SIDE = 64
MAX_SIDE = 4096


def inspect_image(data: bytes, *, max_bytes: int = MAX_BYTES_INLINE) -> ImageInput:
    """Format, size and dimension checks, the way Rekognition reports them."""
    if not data:
        raise InvalidImage("image is empty", aws_type="InvalidParameterException")
    if len(data) > max_bytes:
        raise InvalidImage(
            f"image is {len(data)} bytes, over the {max_bytes} byte limit", aws_type="ImageTooLargeException"
        )
    header = read_header(data)  # InvalidImage (InvalidImageFormatException) when not a readable JPEG / PNG
    width, height = header.width, header.height
    if width > MAX_SIDE or height > MAX_SIDE:
        raise InvalidImage(
            f"image is {width}x{height} px; each side must be at most {MAX_SIDE} px", aws_type="ImageTooLargeException"
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise InvalidImage(
            f"image is {width}x{height} px; each side must be at least {MIN_SIDE} px",
            aws_type="InvalidParameterException",
        )
    return ImageInput(data=data, content_type=header.content_type, width=width, height=height)


def decode_image(data: bytes) -> np.ndarray:
    """BGR uint8 pixels with the JPEG EXIF orientation applied (OpenCV's IMREAD_COLOR does it)."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise InvalidImage("image could not be decoded: the file is corrupt or truncated")
    return image
