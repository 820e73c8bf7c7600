"""Reading an image's header without decoding a pixel: JPEG or PNG, stored size, EXIF orientation.

Ingest (`services.ingest.domain`) and the detector (`services.detector.adapters.images`) both read images
through it, so a decompression bomb is refused before any decode, and both refuse a malformed image with
the one typed error, `InvalidImage` (each service then adds its own limits and error vocabulary).
"""

import struct
from dataclasses import dataclass
from typing import Literal

ContentType = Literal["image/jpeg", "image/png"]
AwsImageError = Literal["InvalidImageFormatException", "ImageTooLargeException", "InvalidParameterException"]

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class InvalidImage(Exception):  # noqa: N818 - mirrors Rekognition's exception names
    """The image cannot be analysed as given (format, corrupt header, size, dimensions). Permanent: do not retry.

    `aws_type` names the Rekognition exception that reports it; `unsupported` is True when the bytes are not
    JPEG or PNG at all (rather than a JPEG or PNG that is broken)."""

    def __init__(
        self, message: str, *, aws_type: AwsImageError = "InvalidImageFormatException", unsupported: bool = False
    ) -> None:
        super().__init__(message)
        self.aws_type = aws_type
        self.unsupported = unsupported

    def __reduce__(self) -> tuple[object, ...]:
        # keeps its fields when the error crosses a process boundary (raised in a model worker)
        return (_rebuild, (str(self), self.aws_type, self.unsupported))


def _rebuild(message: str, aws_type: AwsImageError, unsupported: bool) -> InvalidImage:
    return InvalidImage(message, aws_type=aws_type, unsupported=unsupported)


@dataclass(frozen=True)
class ImageHeader:
    """What the file header says, before decoding."""

    content_type: ContentType
    width: int  # as stored
    height: int
    orientation: int = 1  # EXIF orientation 1..8 (JPEG only)

    @property
    def extension(self) -> str:
        return "jpg" if self.content_type == "image/jpeg" else "png"

    @property
    def oriented_size(self) -> tuple[int, int]:
        """(width, height) after the EXIF orientation is applied: 5..8 turn the image by 90 degrees."""
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height


def sniff_content_type(data: bytes) -> ContentType:
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    if data.startswith(PNG_MAGIC):
        return "image/png"
    raise InvalidImage(
        "the body is neither JPEG nor PNG (checked by its magic bytes); send a JPEG or PNG image", unsupported=True
    )


def read_header(data: bytes) -> ImageHeader:
    """Sniff the type and read the stored dimensions (and JPEG EXIF orientation) without decoding pixels."""
    if sniff_content_type(data) == "image/png":
        return _png_header(data)
    return _jpeg_header(data)


def _png_header(data: bytes) -> ImageHeader:
    # Signature (8) + chunk length (4) + b"IHDR" (4) + width (4) + height (4): IHDR must come first.
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise InvalidImage("PNG has no IHDR header: the file is truncated or corrupt")
    width, height = struct.unpack(">II", data[16:24])
    return ImageHeader("image/png", width, height)


# SOF markers carry the frame size; C4 (DHT), C8 (JPG extension) and CC (DAC) share the range but do not.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS = frozenset(range(0xD0, 0xD9)) | {0x01}  # RSTn, SOI, TEM: no length field


def _jpeg_header(data: bytes) -> ImageHeader:
    orientation = 1
    position = 2
    length = len(data)
    while position + 4 <= length:
        if data[position] != 0xFF:
            raise InvalidImage("JPEG marker structure is broken before the frame header")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _STANDALONE_MARKERS:
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            break
        segment_length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        if segment_length < 2:
            break
        segment = data[position + 4 : position + 2 + segment_length]
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            orientation = _exif_orientation(segment[6:])
        elif marker in _SOF_MARKERS:
            if len(segment) < 5:
                break
            height, width = struct.unpack(">HH", segment[1:5])
            return ImageHeader("image/jpeg", width, height, orientation)
        position += 2 + segment_length
    raise InvalidImage("JPEG has no frame header (SOF): the file is truncated or corrupt")


def _exif_orientation(tiff: bytes) -> int:
    """Orientation tag (0x0112) of IFD0, or 1 when absent or unreadable (an odd EXIF is not a reason to refuse)."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    order = "<" if tiff[:2] == b"II" else ">"
    try:
        (ifd_offset,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd_offset : ifd_offset + 2])
        for index in range(min(count, 512)):
            entry = ifd_offset + 2 + 12 * index
            tag, kind, _, value = struct.unpack(order + "HHI4s", tiff[entry : entry + 12])
            if tag == 0x0112 and kind == 3:  # SHORT
                (orientation,) = struct.unpack(order + "H", value[:2])
                return orientation if 1 <= orientation <= 8 else 1
    except struct.error:
        return 1
    return 1
