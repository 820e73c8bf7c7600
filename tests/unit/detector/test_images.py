"""Image checks with Rekognition's limits and error types, on real encoded images."""

import cv2
import numpy as np
import pytest

from services.detector.adapters.images import MAX_BYTES_INLINE, decode_image, inspect_image
from services.detector.engines.base import InvalidImage
from tests.support.images import photo_like


def encode(width: int, height: int, ext: str = ".jpg") -> bytes:
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("ext, content_type", [(".jpg", "image/jpeg"), (".png", "image/png")])
def test_header_gives_format_and_size(ext: str, content_type: str) -> None:
    image = inspect_image(encode(320, 200, ext))
    assert (image.content_type, image.width, image.height) == (content_type, 320, 200)


@pytest.mark.parametrize("progressive", [False, True])
def test_a_camera_like_photo(progressive: bool) -> None:
    # GIVEN a drawn scene encoded as cameras do (baseline or progressive JFIF), not a block of noise
    params = [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    ok, encoded = cv2.imencode(".jpg", photo_like(960, 540), params)
    data = encoded.tobytes()
    assert ok and data[6:10] == b"JFIF" and (b"\xff\xc2" in data) == progressive  # SOF2 = progressive
    # WHEN inspected and decoded THEN the header's size is the pixels' size
    image = inspect_image(data)
    assert (image.content_type, image.width, image.height) == ("image/jpeg", 960, 540)
    assert decode_image(image.data).shape == (540, 960, 3)


@pytest.mark.parametrize(
    ("data", "aws_type"),
    [
        (b"", "InvalidParameterException"),
        (b"GIF89a" + b"\0" * 100, "InvalidImageFormatException"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 10, "InvalidImageFormatException"),  # JPEG magic, no frame header
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 4, "InvalidImageFormatException"),
        (encode(4100, 64), "ImageTooLargeException"),
        (encode(63, 200), "InvalidParameterException"),
        (encode(200, 40, ".png"), "InvalidParameterException"),
    ],
)
def test_bad_images_get_rekognition_error_types(data: bytes, aws_type: str) -> None:
    with pytest.raises(InvalidImage) as caught:
        inspect_image(data)
    assert caught.value.aws_type == aws_type


def test_too_many_bytes_is_image_too_large() -> None:
    with pytest.raises(InvalidImage) as caught:
        inspect_image(b"\xff\xd8\xff" + b"\0" * MAX_BYTES_INLINE)
    assert caught.value.aws_type == "ImageTooLargeException"


def test_a_jpeg_cut_after_its_headers_passes_the_header_check_but_not_the_decode() -> None:
    truncated = encode(200, 200)[:210]
    assert inspect_image(truncated).width == 200  # the header alone looks fine
    with pytest.raises(InvalidImage):
        decode_image(truncated)


def test_invalid_image_keeps_its_type_across_pickling() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(InvalidImage("too big", aws_type="ImageTooLargeException")))
    assert (str(error), error.aws_type) == ("too big", "ImageTooLargeException")


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an APP1 Exif segment holding only the Orientation tag (0x0112)."""
    import struct

    tiff = b"MM\x00\x2a" + struct.pack(">I", 8)  # big-endian TIFF header, first IFD at offset 8
    tiff += struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_exif_orientation_is_applied_before_analysis() -> None:
    # GIVEN a 320x200 photo whose EXIF says "rotate 90 degrees clockwise to view" (orientation 6)
    rotated = with_exif_orientation(encode(320, 200), 6)
    image = inspect_image(rotated)
    assert (image.width, image.height) == (320, 200)  # the stored pixel grid
    # THEN the decoded pixels are upright: 200 wide, 320 high
    assert decode_image(rotated).shape == (320, 200, 3)
    assert decode_image(with_exif_orientation(encode(320, 200), 1)).shape == (200, 320, 3)
