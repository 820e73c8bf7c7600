"""Ingest rules without I/O: sniffing, header dimensions and EXIF orientation, keys, token bucket."""

import cv2
import numpy as np
import pytest

from services.ingest.domain import (
    IngestError,
    RateLimiter,
    Reason,
    TokenBucket,
    check_complete,
    check_dimensions,
    hash_api_key,
    key_matches,
    new_api_key,
    new_frame_id,
    read_header,
)
from services.ingest.handlers import decode
from tests.unit.ingest.images import jpeg, png, png_header_only, with_exif_orientation


@pytest.mark.parametrize(
    ("make", "content_type", "size"),
    [
        (lambda: jpeg(640, 360), "image/jpeg", (640, 360)),
        (lambda: jpeg(64, 4096), "image/jpeg", (64, 4096)),
        (lambda: png(320, 180), "image/png", (320, 180)),
    ],
)
def test_header_reports_the_stored_size(make, content_type, size) -> None:  # type: ignore[no-untyped-def]
    header = read_header(make())
    assert (header.content_type, header.width, header.height) == (content_type, *size)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("byte_order", ["II", "MM"])
def test_exif_orientation_agrees_with_opencv_full_decode(orientation: int, byte_order: str) -> None:
    data = with_exif_orientation(jpeg(320, 180), orientation, byte_order=byte_order)
    header = read_header(data)
    full = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert header.orientation == orientation
    assert header.oriented_size == (full.shape[1], full.shape[0])
    assert decode(data, header) == (full.shape[1], full.shape[0])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GIF89a" + b"\x00" * 100, Reason.unsupported_media_type),
        (b"", Reason.unsupported_media_type),
        (b"<html>" * 10, Reason.unsupported_media_type),
        (b"\xff\xd8\xff\xe0\x00", Reason.invalid_image),  # JPEG magic, no frame header
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 8, Reason.invalid_image),  # PNG magic, no IHDR
    ],
)
def test_header_refuses_what_is_not_a_readable_jpeg_or_png(data: bytes, reason: Reason) -> None:
    with pytest.raises(IngestError) as caught:
        read_header(data)
    assert caught.value.reason == reason


@pytest.mark.parametrize(("width", "height"), [(63, 100), (100, 63), (4097, 100), (100, 50_000), (2**31, 2**31)])
def test_dimensions_outside_64_to_4096_are_refused_from_the_header(width: int, height: int) -> None:
    header = read_header(png_header_only(width, height))
    with pytest.raises(IngestError) as caught:
        check_dimensions(header)
    assert caught.value.reason == Reason.image_dimensions
    assert caught.value.status == 400


@pytest.mark.parametrize(("width", "height"), [(64, 64), (4096, 4096), (1280, 720)])
def test_dimensions_inside_the_range_pass(width: int, height: int) -> None:
    check_dimensions(read_header(png_header_only(width, height)))


def test_truncated_files_are_refused() -> None:
    data = jpeg(320, 180)
    check_complete(data, "image/jpeg")
    with pytest.raises(IngestError):
        check_complete(data[: len(data) // 2], "image/jpeg")
    image = png(100, 100)
    check_complete(image, "image/png")
    with pytest.raises(IngestError):
        check_complete(image[:-20], "image/png")


def test_a_jpeg_with_a_broken_huffman_table_fails_to_decode() -> None:
    data = bytearray(jpeg(320, 180))
    header = read_header(bytes(data))
    # Frame header intact (the cheap checks pass), but the Huffman table counts are bogus: libjpeg gives up.
    table = data.find(b"\xff\xc4")
    data[table + 5 : table + 21] = b"\xff" * 16
    with pytest.raises(IngestError) as caught:
        decode(bytes(data), header)
    assert caught.value.reason == Reason.invalid_image


def test_api_keys_are_random_and_checked_by_hash() -> None:
    first, second = new_api_key(), new_api_key()
    assert first != second and len(first) > 40
    stored = hash_api_key(first)
    assert first not in stored
    assert key_matches(first, stored)
    assert not key_matches(second, stored)


def test_frame_ids_are_unique_and_time_ordered() -> None:
    ids = [new_frame_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert [i[:15] for i in ids] == sorted(i[:15] for i in ids)


def test_token_bucket_allows_the_burst_then_paces_at_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) > 0


def test_rate_limiter_keeps_cameras_apart_and_follows_a_new_rate() -> None:
    limiter = RateLimiter(default_rate=1.0, burst_s=1.0)
    assert limiter.check("a", None, now=0.0) == 0.0
    assert limiter.check("a", None, now=0.0) > 0
    assert limiter.check("b", None, now=0.0) == 0.0
    assert limiter.check("a", 100.0, now=0.0) == 0.0  # rate raised by the admin: a fresh bucket
