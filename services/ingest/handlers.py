"""Frame intake: validate, then reserve -> store -> publish -> commit, undoing what was written on failure.

Order matters for "no half-written state": the ledger row is reserved first (it is what makes a retried
client_frame_id find the first attempt), the object is stored before the message is sent (a detector never
sees a message whose object is missing), and the row is committed last. If S3 or SQS fails, what was
written is deleted again and the caller answers 503 with Retry-After.
"""

import asyncio
import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import cv2
import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from services.ingest.adapters.db import DATABASE_ERRORS, FrameLedger, TakenOver
from services.ingest.domain import (
    Camera,
    FrameRecord,
    ImageHeader,
    IngestError,
    Reason,
    check_complete,
    check_dimensions,
    frame_location,
    new_frame_id,
    read_header,
)
from services.ingest.schemas import FrameMetadata
from shared.contracts import FrameContext, FrameReceived, FrameRef
from shared.equipment import BUILT_IN
from shared.handlers import RequestHandler
from shared.logging import bind_context, get_logger
from shared.rekognition import EquipmentType, SummarizationAttributes
from shared.s3 import FrameStore, StorageError, frame_key
from shared.sqs import Publisher, PublishError

log = get_logger(__name__)

# Reduced decoding (libjpeg DCT scaling) still entropy-decodes every block, so a corrupt stream is caught,
# at about 40% of a full decode's CPU. Without IMREAD_IGNORE_ORIENTATION, OpenCV applies EXIF orientation.
DECODE_FLAGS = cv2.IMREAD_REDUCED_GRAYSCALE_8
DECODE_SCALE = 8


@dataclass(frozen=True)
class FramePost:
    """One posted frame, as the route hands it over: the authenticated camera, its metadata, the image bytes."""

    camera: Camera
    metadata: FrameMetadata
    data: bytes


@dataclass(frozen=True)
class Intake:
    record: FrameRecord
    duplicate: bool


def decode(data: bytes, header: ImageHeader) -> tuple[int, int]:
    """Decode the image (EXIF orientation applied); returns the oriented (width, height)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), DECODE_FLAGS)
    if image is None or image.size == 0:
        raise IngestError(Reason.invalid_image, f"the {header.content_type} could not be decoded: it is corrupt")
    width, height = header.oriented_size
    # JPEG rounds the scaled size up, PNG (decoded, then resized) rounds it: allow one pixel either way.
    if abs(image.shape[0] - height / DECODE_SCALE) > 1 or abs(image.shape[1] - width / DECODE_SCALE) > 1:
        raise IngestError(
            Reason.invalid_image,
            f"decoded size {image.shape[1]}x{image.shape[0]} (1/{DECODE_SCALE}) does not match the header's "
            f"{width}x{height}: the file is inconsistent",
        )
    return width, height


def unavailable(what: str, error: Exception, retry_after_s: int) -> IngestError:
    return IngestError(
        Reason.dependency_unavailable,
        f"{what} is unavailable ({type(error).__name__}); nothing was stored: retry after {retry_after_s}s",
        retry_after_s=retry_after_s,
    )


class FrameHandler(RequestHandler[FramePost, Intake]):
    """`POST /v1/frames`' business: validate, reserve, store, announce FrameReceived, commit."""

    def __init__(
        self,
        *,
        ledger: FrameLedger,
        store: FrameStore,
        publisher: Publisher,
        decode_concurrency: int,
        retry_after_s: int,
    ) -> None:
        self._ledger = ledger
        self._store = store
        self._publisher = publisher
        self._decode_slots = asyncio.Semaphore(decode_concurrency)
        self._retry_after_s = retry_after_s

    async def validate(self, data: bytes) -> tuple[ImageHeader, int, int]:
        """Cheap checks first (type, header dimensions, completeness), then the real decode in a thread."""
        header = read_header(data)
        check_dimensions(header)
        check_complete(data, header.content_type)
        async with self._decode_slots:
            width, height = await asyncio.to_thread(decode, data, header)
        return header, width, height

    async def handle(self, request: FramePost) -> Intake:
        camera, metadata, data = request.camera, request.metadata, request.data
        site_id, _ = frame_location(camera, site_id=metadata.site_id, zone_id=metadata.zone_id)
        header, width, height = await self.validate(data)
        received_at = datetime.now(UTC)
        frame_id = new_frame_id()
        record = FrameRecord(
            frame_id=frame_id,
            camera_id=camera.camera_id,
            client_frame_id=metadata.client_frame_id,
            status="pending",
            sha256=hashlib.sha256(data).hexdigest(),
            bucket=self._store.bucket,
            key=frame_key(
                site_id=site_id,
                camera_id=camera.camera_id,
                captured_at=metadata.captured_at.astimezone(UTC),
                frame_id=frame_id,
                extension=header.extension,
            ),
            content_type=header.content_type,
            size_bytes=len(data),
            width=width,
            height=height,
            captured_at=metadata.captured_at,
            received_at=received_at,
        )
        with bind_context(frame_id=frame_id, camera_id=camera.camera_id):
            # Shielded: a client hanging up mid-write must not leave the sequence half done.
            return await asyncio.shield(self._write(camera, metadata, record, data))

    async def _write(self, camera: Camera, metadata: FrameMetadata, record: FrameRecord, data: bytes) -> Intake:
        try:
            existing = await self._ledger.reserve(record)
        except DATABASE_ERRORS as exc:
            log.error("ledger unavailable", error=str(exc))
            raise unavailable("the frame database", exc, self._retry_after_s) from exc
        if isinstance(existing, TakenOver):
            log.info("stale reservation of the same image taken over", original_frame_id=existing.frame_id)
            record = replace(record, frame_id=existing.frame_id, key=existing.key)
        elif existing is not None:
            return self._duplicate(existing, record)
        try:
            await self._store.put(
                record.key,
                data,
                content_type=record.content_type,
                metadata=self._object_metadata(camera, metadata, record),
            )
        except StorageError as exc:
            log.error("frame not stored; reservation released", error=str(exc))
            await self._release(record)
            raise unavailable("frame storage (S3)", exc, self._retry_after_s) from exc
        try:
            await self._publisher.publish(self._message(camera, metadata, record), correlation_id=record.frame_id)
        except (PublishError, ClientError, BotoCoreError) as exc:
            log.error("frame not queued; object deleted and reservation released", error=str(exc))
            await self._delete_object(record)
            await self._release(record)
            raise unavailable("the frame queue (SQS)", exc, self._retry_after_s) from exc
        try:
            await self._ledger.commit(record.frame_id)
        except DATABASE_ERRORS as exc:
            # Stored and queued: the frame will be analysed. Only its ledger row stays 'pending'.
            log.error("frame queued but not marked committed", error=str(exc))
            return Intake(record, duplicate=False)
        log.info("frame accepted", key=record.key, size_bytes=record.size_bytes)
        return Intake(replace(record, status="committed"), duplicate=False)

    def _duplicate(self, existing: FrameRecord, attempt: FrameRecord) -> Intake:
        if existing.sha256 != attempt.sha256:
            raise IngestError(
                Reason.idempotency_conflict,
                f"client_frame_id {attempt.client_frame_id!r} was already used for a different image "
                f"(frame {existing.frame_id}); send a new client_frame_id for a new image",
                frame_id=existing.frame_id,
            )
        if existing.status != "committed":
            raise IngestError(
                Reason.frame_in_progress,
                f"client_frame_id {attempt.client_frame_id!r} is being stored by another request; retry shortly",
                frame_id=existing.frame_id,
                retry_after_s=1,
            )
        log.info("duplicate client_frame_id: returning the original frame", original_frame_id=existing.frame_id)
        return Intake(existing, duplicate=True)

    def _object_metadata(self, camera: Camera, metadata: FrameMetadata, record: FrameRecord) -> dict[str, str]:
        site_id, zone_id = frame_location(camera, site_id=metadata.site_id, zone_id=metadata.zone_id)
        values = {
            "frame-id": record.frame_id,
            "camera-id": camera.camera_id,
            "site-id": site_id,
            "zone-id": zone_id,
            "captured-at": record.captured_at.isoformat(),
            "received-at": record.received_at.isoformat(),
            "sha256": record.sha256,
        }
        if record.client_frame_id:
            values["client-frame-id"] = record.client_frame_id
        return values

    def _message(self, camera: Camera, metadata: FrameMetadata, record: FrameRecord) -> FrameReceived:
        # Rekognition's types go to the Summary attributes; custom equipment travels beside them
        required = list(dict.fromkeys(metadata.required_ppe or camera.required_ppe))
        site_id, zone_id = frame_location(camera, site_id=metadata.site_id, zone_id=metadata.zone_id)
        return FrameReceived(
            context=FrameContext(
                frame_id=record.frame_id,
                camera_id=camera.camera_id,
                site_id=site_id,
                zone_id=zone_id,
                captured_at=record.captured_at,
            ),
            frame=FrameRef(
                bucket=record.bucket,
                key=record.key,
                content_type=record.content_type,
                size_bytes=record.size_bytes,
                width=record.width,
                height=record.height,
                sha256=record.sha256,
            ),
            received_at=record.received_at,
            client_frame_id=record.client_frame_id,
            summarization=SummarizationAttributes(
                MinConfidence=metadata.min_confidence if metadata.min_confidence is not None else camera.min_confidence,
                RequiredEquipmentTypes=[EquipmentType(name) for name in required if name in BUILT_IN],
            ),
            custom_equipment=[name for name in required if name not in BUILT_IN],
            zones=camera.zones,
        )

    async def _release(self, record: FrameRecord) -> None:
        try:
            await self._ledger.release(record.frame_id)
        except DATABASE_ERRORS as exc:
            # The pending row is taken over by the next attempt after the pending timeout.
            log.error("could not release reservation", error=str(exc))

    async def _delete_object(self, record: FrameRecord) -> None:
        try:
            await self._store.delete(record.key)
        except StorageError as exc:
            # Unreferenced: no message points at it, and the bucket's lifecycle rule expires it.
            log.error("could not delete unqueued frame object", error=str(exc))
