"""The one image an alert may show: a face-blurred copy of its frame, written once under `alerts/`.

Every channel links to (and email attaches) this copy, never the raw frame. The key is a function of the
incident and the frame, and the write is conditional (S3 If-None-Match), so a redelivered request, a second
channel or a second worker reuses the stored copy instead of writing another one.
"""

from dataclasses import dataclass

from services.notifier.adapters.snapshot import SnapshotError, blur_regions
from services.notifier.domain import Box
from shared.contracts import NotificationRequested
from shared.logging import get_logger
from shared.s3 import FrameNotFound, FrameStore

log = get_logger(__name__)
MAX_FRAME_BYTES = 15 << 20


def alert_frame_key(prefix: str, *, incident_id: str, frame_id: str) -> str:
    return f"{prefix}{incident_id}/{frame_id}.jpg"


@dataclass(frozen=True)
class AlertFrame:
    key: str  # in the frames bucket, under the alert prefix
    image: bytes | None  # the blurred JPEG, when the caller asked for it
    written: bool  # False: an earlier attempt (or another channel / worker) stored it


class AlertFrames:
    def __init__(self, store: FrameStore, *, prefix: str) -> None:
        self._store = store
        self._prefix = prefix

    async def ensure(self, request: NotificationRequested, *, with_image: bool) -> AlertFrame | None:
        """The stored blurred copy of the request's frame, made now if it is not stored yet.

        None when there is nothing safe to show: the raw frame is gone (retention) or is not an image.
        Raises StorageError when S3 cannot be reached (the caller retries the delivery later).
        """
        incident = request.incident
        key = alert_frame_key(self._prefix, incident_id=incident.incident_id, frame_id=incident.frame_id)
        if await self._store.exists(key):
            return AlertFrame(key, (await self._store.get(key)).data if with_image else None, written=False)
        try:
            raw = await self._store.get(request.frame.key, bucket=request.frame.bucket, max_bytes=MAX_FRAME_BYTES)
            image = blur_regions(raw.data, [Box.of(b) for b in request.face_boxes])
        except FrameNotFound:
            log.warning("frame no longer stored; alert sent without a frame", key=request.frame.key)
            return None
        except SnapshotError as exc:
            log.warning("frame is not a usable image; alert sent without a frame", error=str(exc))
            return None
        written = await self._store.put_new(
            key,
            image,
            content_type="image/jpeg",
            metadata={"incident-id": incident.incident_id, "frame-id": incident.frame_id},
        )
        log.info("alert frame stored" if written else "alert frame stored by another worker", key=key)
        return AlertFrame(key, image if with_image else None, written=written)
