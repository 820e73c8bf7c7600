"""Each camera's latest face-blurred snapshot, for the zone editor: `<prefix><camera_id>.jpg` in the frames bucket
(prefix `REPORTING_SNAPSHOTS_PREFIX`, default `snapshots/`).

Reporting is where a frame's pixels (its S3 key, in FrameAnalyzed) and its persons (the detector's boxes) meet,
so it makes the snapshot: the raw frame is read, the head band of every person and every face / head equipment
box is blurred (shared.privacy, as in alerts), and only the blurred JPEG is written. A camera's snapshot is
renewed at most every `interval_s` per process; the raw frame is never served. Persons the detector missed are
not blurred (the same limit as alert images).
"""

import time
from dataclasses import dataclass

from shared.contracts import FrameAnalyzed
from shared.logging import get_logger
from shared.privacy import SnapshotError, blur_regions, privacy_regions
from shared.s3 import FrameNotFound, FrameStore, StorageError

log = get_logger(__name__)
MAX_FRAME_BYTES = 15 << 20


def snapshot_key(prefix: str, camera_id: str) -> str:
    return f"{prefix}{camera_id}.jpg"


@dataclass(frozen=True)
class Snapshot:
    image: bytes
    frame_id: str
    captured_at: str


class Snapshots:
    def __init__(self, store: FrameStore, *, interval_s: float, prefix: str = "snapshots/") -> None:
        self._store = store
        self._prefix = prefix
        self._interval_s = interval_s
        self._renewed: dict[str, float] = {}  # camera id -> monotonic time of the last renewal

    async def renew_if_due(self, frame: FrameAnalyzed) -> bool:
        """Write the frame's blurred snapshot if the camera's is older than the interval. Never raises.

        A failure is logged and leaves the previous snapshot in place: the editor is not worth a frame's retry.
        """
        camera_id = frame.context.camera_id
        now = time.monotonic()
        last = self._renewed.get(camera_id)
        if last is not None and now - last < self._interval_s:
            return False
        self._renewed[camera_id] = now
        try:
            raw = await self._store.get(frame.frame.key, bucket=frame.frame.bucket, max_bytes=MAX_FRAME_BYTES)
            image = blur_regions(raw.data, privacy_regions(frame.ppe.Persons))
            await self._store.put(
                snapshot_key(self._prefix, camera_id),
                image,
                content_type="image/jpeg",
                metadata={"frame-id": frame.context.frame_id, "captured-at": frame.context.captured_at.isoformat()},
            )
        except (FrameNotFound, SnapshotError, StorageError) as exc:
            # the previous snapshot stays; the next try is after the interval (not on every frame)
            log.warning("camera snapshot not renewed", camera_id=camera_id, error=str(exc)[:300])
            return False
        log.info("camera snapshot renewed", camera_id=camera_id, frame_id=frame.context.frame_id)
        return True

    async def latest(self, camera_id: str) -> Snapshot | None:
        """The camera's blurred snapshot, None when none was made yet. Raises StorageError when S3 fails."""
        try:
            stored = await self._store.get(snapshot_key(self._prefix, camera_id), max_bytes=MAX_FRAME_BYTES)
        except FrameNotFound:
            return None
        return Snapshot(stored.data, stored.metadata.get("frame-id", ""), stored.metadata.get("captured-at", ""))
