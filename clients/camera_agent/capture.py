"""Reading one camera with OpenCV, sampling frames, and spooling them; reconnects with backoff."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
from prometheus_client import Counter, Gauge

from clients.camera_agent.config import CameraConfig, MotionConfig
from clients.camera_agent.spool import Spool
from shared.backoff import backoff_delay
from shared.logging import get_logger

log = get_logger(__name__)

CONNECTED = Gauge("ppe_agent_camera_connected", "1 while the camera stream is open.", ["camera"])
LAST_FRAME = Gauge("ppe_agent_last_frame_timestamp_seconds", "Unix time of the last sampled frame.", ["camera"])
CAPTURED = Counter("ppe_agent_frames_sampled_total", "Frames sampled and spooled.", ["camera", "reason"])
RECONNECTS = Counter("ppe_agent_reconnects_total", "Times the stream was reopened after a failure.", ["camera"])


@dataclass
class CameraStatus:
    camera_id: str
    connected: bool = False
    last_frame_at: datetime | None = None
    frames_sampled: int = 0
    frames_sent: int = 0
    frames_dropped: int = 0
    frames_rejected: int = 0
    reconnects: int = 0


def open_source(source: str, timeout_s: float) -> cv2.VideoCapture:
    if source.startswith("v4l2:"):
        return cv2.VideoCapture(int(source.split(":", 1)[1]), cv2.CAP_V4L2)
    if "://" in source:
        milliseconds = int(timeout_s * 1000)
        return cv2.VideoCapture(
            source,
            cv2.CAP_FFMPEG,
            [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, milliseconds, cv2.CAP_PROP_READ_TIMEOUT_MSEC, milliseconds],
        )
    if not Path(source).exists():
        raise FileNotFoundError(source)
    return cv2.VideoCapture(source)


def changed_fraction(previous: np.ndarray, current: np.ndarray, pixel_delta: int) -> float:
    return float(np.count_nonzero(cv2.absdiff(previous, current) > pixel_delta)) / current.size


def encode_jpeg(frame: np.ndarray, *, max_side: int, quality: int) -> bytes:
    height, width = frame.shape[:2]
    scale = max_side / max(height, width)
    if scale < 1:
        frame = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    ok, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()


class Sampler:
    """Decides which frames to send: every interval, and on motion (frame differencing) if enabled."""

    def __init__(self, interval_s: float, motion: MotionConfig | None) -> None:
        self._interval_s = interval_s
        self._motion = motion
        self._last_sent: float | None = None
        self._previous: np.ndarray | None = None

    def decide(self, frame: np.ndarray, now: float) -> str | None:
        small = cv2.GaussianBlur(cv2.cvtColor(cv2.resize(frame, (160, 90)), cv2.COLOR_BGR2GRAY), (5, 5), 0)
        previous, self._previous = self._previous, small
        if self._last_sent is None or now - self._last_sent >= self._interval_s:
            self._last_sent = now
            return "interval"
        if (
            self._motion is not None
            and previous is not None
            and now - self._last_sent >= self._motion.min_interval_s
            and changed_fraction(previous, small, self._motion.pixel_delta) >= self._motion.threshold
        ):
            self._last_sent = now
            return "motion"
        return None


class CameraCapture(threading.Thread):
    def __init__(
        self,
        config: CameraConfig,
        spool: Spool,
        status: CameraStatus,
        stop: threading.Event,
        on_frame: Callable[[], None],
    ) -> None:
        super().__init__(name=f"capture-{config.id}", daemon=True)
        self.config = config
        self.spool = spool
        self.status = status
        self.stop = stop
        self.on_frame = on_frame
        self._sequence = 0

    def run(self) -> None:
        failures = 0  # reconnects failed in a row: the next waits longer
        while not self.stop.is_set():
            try:
                capture = open_source(self.config.source, self.config.read_timeout_s)
            except FileNotFoundError:
                log.error("video file not found; fix the camera's source", camera_id=self.config.id,
                          source=self.config.source)
                return
            if not capture.isOpened():
                self._set_connected(False)
                delay = backoff_delay(failures, first_s=1.0, max_s=30.0)
                log.warning("camera unreachable; retrying", camera_id=self.config.id, retry_in_s=round(delay, 1))
                self.stop.wait(delay)
                failures += 1
                continue
            self._set_connected(True)
            log.info("camera connected", camera_id=self.config.id)
            failures = 0
            ended = self._read_frames(capture)
            capture.release()
            self._set_connected(False)
            if ended and not self.config.loop and "://" not in self.config.source:
                log.info("video file finished", camera_id=self.config.id)
                return
            if not self.stop.is_set():
                self.status.reconnects += 1
                RECONNECTS.labels(self.config.id).inc()
                log.warning("stream dropped or stalled; reconnecting", camera_id=self.config.id)
                self.stop.wait(0.5)

    def _set_connected(self, value: bool) -> None:
        self.status.connected = value
        CONNECTED.labels(self.config.id).set(1 if value else 0)

    def _read_frames(self, capture: cv2.VideoCapture) -> bool:
        """Reads until failure or stop; True when a file source reached its end."""
        sampler = Sampler(self.config.interval_s, self.config.motion)
        is_file = "://" not in self.config.source and not self.config.source.startswith("v4l2:")
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        started = time.monotonic()
        index = 0
        while not self.stop.is_set():
            ok, frame = capture.read()
            if not ok or frame is None:
                return is_file
            index += 1
            if is_file and self.config.realtime:
                # Pace a file like a live camera so interval sampling means the same thing.
                delay = started + index / fps - time.monotonic()
                if delay > 0:
                    self.stop.wait(delay)
            now = time.monotonic() if (self.config.realtime or not is_file) else index / fps
            reason = sampler.decide(frame, now)
            if reason is not None:
                self._spool(frame, reason)
        return False

    def _spool(self, frame: np.ndarray, reason: str) -> None:
        captured_at = datetime.now(UTC)
        self._sequence += 1
        client_frame_id = f"{self.config.id}-{captured_at.strftime('%Y%m%dT%H%M%S%fZ')}-{self._sequence}"
        jpeg = encode_jpeg(frame, max_side=self.config.max_side, quality=self.config.jpeg_quality)
        dropped = self.spool.put(jpeg, captured_at=captured_at, client_frame_id=client_frame_id)
        self.status.frames_sampled += 1
        self.status.last_frame_at = captured_at
        CAPTURED.labels(self.config.id, reason).inc()
        LAST_FRAME.labels(self.config.id).set(captured_at.timestamp())
        if dropped:
            self.status.frames_dropped += dropped
            log.warning("spool full; dropped oldest frames", camera_id=self.config.id, dropped=dropped)
        self.on_frame()
