"""Camera agent building blocks: the on-disk spool and the frame sampler."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from clients.camera_agent.capture import Sampler
from clients.camera_agent.config import MotionConfig
from clients.camera_agent.sender import retry_after_seconds
from clients.camera_agent.spool import Spool

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def put(spool: Spool, n: int) -> int:
    return spool.put(f"jpeg-{n}".encode(), captured_at=T0 + timedelta(seconds=n), client_frame_id=f"f{n}")


def test_spool_returns_frames_oldest_first_and_survives_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_frames=10)
    for n in range(3):
        put(spool, n)
    reopened = Spool(tmp_path, max_frames=10)
    put(reopened, 3)
    order = []
    while (frame := reopened.oldest()) is not None:
        order.append((frame.client_frame_id, frame.read(), frame.captured_at))
        reopened.remove(frame)
    assert order == [(f"f{n}", f"jpeg-{n}".encode(), T0 + timedelta(seconds=n)) for n in range(4)]


def test_spool_is_bounded_and_drops_the_oldest(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_frames=3)
    dropped = [put(spool, n) for n in range(5)]
    assert dropped == [0, 0, 0, 1, 1]
    assert spool.dropped == 2
    first = spool.oldest()
    assert first is not None and first.client_frame_id == "f2"
    assert len(spool) == 3


def test_spool_discards_half_written_entries_left_by_a_crash(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_frames=10)
    put(spool, 0)
    (tmp_path / "000000000001.jpg.tmp").write_bytes(b"partial")
    (tmp_path / "000000000005.jpg").write_bytes(b"image without metadata")
    reopened = Spool(tmp_path, max_frames=10)
    assert not list(tmp_path.glob("*.tmp"))
    first = reopened.oldest()
    assert first is not None and first.client_frame_id == "f0"
    reopened.remove(first)
    assert reopened.oldest() is None  # the orphan image was dropped, not sent without metadata


def frame(value: int) -> np.ndarray:
    return np.full((180, 320, 3), value, np.uint8)


def test_sampler_sends_on_interval_only_without_motion_detection() -> None:
    sampler = Sampler(2.0, None)
    decisions = [sampler.decide(frame(t * 40 % 255), float(t)) for t in range(6)]
    assert decisions == ["interval", None, "interval", None, "interval", None]


def test_sampler_sends_on_motion_but_not_closer_than_min_interval() -> None:
    sampler = Sampler(10.0, MotionConfig(threshold=0.05, min_interval_s=1.0))
    still = frame(100)
    moved = still.copy()
    moved[40:140, 100:220] = 250  # an object enters: ~20% of the pixels change
    assert sampler.decide(still, 0.0) == "interval"
    assert sampler.decide(still, 0.5) is None  # nothing moved
    assert sampler.decide(moved, 0.7) is None  # moved, but within min_interval of the last frame
    assert sampler.decide(still, 1.5) == "motion"  # the object left again: a change
    assert sampler.decide(still, 2.0) is None


@pytest.mark.parametrize(
    ("header", "expected"), [("3", 3.0), ("0.5", 0.5), ("9999", 300.0), ("soon", 1.0), (None, 1.0)]
)
def test_retry_after_is_honoured_and_capped(header: str | None, expected: float) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    assert retry_after_seconds(httpx.Response(429, headers=headers), 1.0) == expected
