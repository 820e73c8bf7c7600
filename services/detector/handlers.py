"""FrameReceived in, FrameAnalyzed out.

Failure policy (shared.sqs semantics): a missing or undecodable frame is rejected to the DLQ with its
reason; a model or backend error is retried `model_attempts` deliveries in all, then rejected; S3/SQS
trouble is retried later. Idempotent by frame id through `adapters.results.ResultStore`.
"""

import asyncio
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from services.detector.adapters.images import MAX_BYTES_S3, inspect_image
from services.detector.adapters.results import ResultRecord, ResultStore
from services.detector.config import DetectorSettings
from services.detector.domain import merge
from services.detector.engines.base import (
    CustomLabelEngine,
    EngineError,
    EngineUnavailable,
    FusedEngine,
    ImageInput,
    InvalidImage,
)
from services.detector.engines.registry import EngineSet
from services.detector.metrics import DUPLICATES, FAILURES, FRAMES_ANALYZED, STAGE_SECONDS
from shared.contracts import Envelope, FrameAnalyzed, FrameReceived
from shared.handlers import MessageHandler
from shared.logging import bind_context, get_logger
from shared.rekognition import BoundingBox, DetectCustomLabelsResponse, DetectProtectiveEquipmentResponse
from shared.s3 import FrameNotFound, FrameStore, StorageError
from shared.sqs import MessageContext, Publisher, PublishError, Reject, RetryLater

log = get_logger(__name__)
T = TypeVar("T")


class _Stopwatch:
    def __init__(self) -> None:
        self.timings_ms: dict[str, float] = {}

    def record(self, stage: str, started: float) -> None:
        seconds = time.perf_counter() - started
        self.timings_ms[stage] = seconds * 1000
        STAGE_SECONDS.labels(stage).observe(seconds)


async def analyse(
    received: FrameReceived, image: ImageInput, engines: EngineSet, label_names: Sequence[str]
) -> FrameAnalyzed:
    """Run the PPE engine and the frame's custom-label engines, concurrently where they are independent."""
    watch = _Stopwatch()
    started = time.perf_counter()
    whole_image = [(n, engines.custom_labels[n]) for n in label_names if not engines.custom_labels[n].needs_persons]
    per_person = [(n, engines.custom_labels[n]) for n in label_names if engines.custom_labels[n].needs_persons]

    async def timed_labels(
        name: str, engine: CustomLabelEngine, persons: list[BoundingBox] | None
    ) -> DetectCustomLabelsResponse:
        began = time.perf_counter()
        response = await engine.detect_labels(image, persons=persons)
        watch.record(f"labels:{name}", began)
        return response

    async def timed_ppe() -> DetectProtectiveEquipmentResponse:
        began = time.perf_counter()
        response = await engines.ppe.detect_ppe(image, received.summarization)
        watch.record("ppe", began)
        return response

    fuser = engines.ppe if isinstance(engines.ppe, FusedEngine) else None
    fused = [(n, e) for n, e in per_person if fuser is not None and fuser.can_fuse(e)]
    per_person = [(n, e) for n, e in per_person if (n, e) not in fused]

    async def timed_ppe_with_fused() -> tuple[DetectProtectiveEquipmentResponse, dict[str, DetectCustomLabelsResponse]]:
        if fuser is None or not fused:
            return await timed_ppe(), {}
        # the local engine runs the person-crop models in the same worker call (one decode, one round trip)
        began = time.perf_counter()
        response, labels = await fuser.detect_ppe_with_labels(image, received.summarization, [e for _, e in fused])
        watch.record("ppe", began)
        return response, labels

    (ppe, fused_labels), early = await asyncio.gather(
        timed_ppe_with_fused(), asyncio.gather(*(timed_labels(n, e, None) for n, e in whole_image))
    )
    persons = [person.BoundingBox for person in ppe.Persons]
    late = await asyncio.gather(*(timed_labels(n, e, persons) for n, e in per_person))
    labels = dict(zip([n for n, _ in whole_image] + [n for n, _ in per_person], [*early, *late], strict=True))
    labels.update(fused_labels)
    watch.record("engines", started)
    return merge(
        received,
        ppe=ppe,
        custom_labels=labels,
        model_versions=engines.model_versions(list(label_names)),
        timings_ms=watch.timings_ms,
    )


@dataclass
class FrameHandler(MessageHandler[FrameReceived]):
    """The consumer's handler for `frames-received`."""

    settings: DetectorSettings
    engines: EngineSet
    frames: FrameStore
    results: ResultStore
    publisher: Publisher
    _in_flight: dict[str, asyncio.Event] = field(default_factory=dict)

    async def handle(self, envelope: Envelope[FrameReceived], context: MessageContext) -> None:
        received = envelope.payload
        with bind_context(frame_id=received.context.frame_id, camera_id=received.context.camera_id):
            await self.handle_frame(received, context)

    async def handle_frame(self, received: FrameReceived, context: MessageContext) -> None:
        frame_id = received.context.frame_id
        # The same frame twice in one worker (a producer duplicate in one batch): the second waits for the
        # first and then finds its published result, without spending a delivery attempt.
        waited = False
        while (running := self._in_flight.get(frame_id)) is not None:
            waited = True
            await running.wait()
        done = self._in_flight[frame_id] = asyncio.Event()
        try:
            await self._handle(received, context, frame_id, read_first=waited or context.receive_count > 1)
        finally:
            del self._in_flight[frame_id]
            done.set()

    async def _handle(
        self, received: FrameReceived, context: MessageContext, frame_id: str, *, read_first: bool
    ) -> None:
        record: ResultRecord | None = None
        if read_first:
            # A redelivery: an earlier attempt may have stored (and even published) the result already.
            # First deliveries skip this read; a producer duplicate is caught by the conditional create.
            record = await self._storage("read result record", self.results.get(frame_id))
            if record is not None and record.state == "published":
                DUPLICATES.inc()
                log.info("frame already analysed and published; nothing to do")
                return
        if record is None:
            result = await self._analyse(received, context)
            stored, ours = await self._storage("store result record", self.results.create(result))
            record = stored
            if not ours and stored.state == "published":
                DUPLICATES.inc()
                log.info("frame already analysed and published; nothing to do")
                return
            if not ours:
                # another worker stored its result first and is publishing it: look again later
                raise RetryLater("another worker analysed this frame first", delay_s=self.settings.retry_delay_s)
        else:
            log.info("frame analysed before but not published; publishing the stored result")
        began = time.perf_counter()
        try:
            await self.publisher.publish(record.result, correlation_id=frame_id, group_id=received.context.camera_id)
        except PublishError as exc:
            FAILURES.labels("publish").inc()
            raise RetryLater(f"could not publish FrameAnalyzed: {exc}", delay_s=self.settings.retry_delay_s) from exc
        STAGE_SECONDS.labels("publish").observe(time.perf_counter() - began)
        await self._storage("mark result published", self.results.mark_published(record))
        FRAMES_ANALYZED.labels(self.engines.ppe.name).inc()
        log.info(
            "frame analysed",
            persons=len(record.result.ppe.Persons),
            without=len(record.result.ppe.Summary.PersonsWithoutRequiredEquipment) if record.result.ppe.Summary else 0,
            custom_labels=len(record.result.custom_labels),
            engines_ms=round(record.result.timings_ms.get("engines", 0.0), 1),
        )

    async def _analyse(self, received: FrameReceived, context: MessageContext) -> FrameAnalyzed:
        ref = received.frame
        began = time.perf_counter()
        try:
            stored = await self.frames.get(ref.key, bucket=ref.bucket, max_bytes=MAX_BYTES_S3)
        except FrameNotFound as exc:
            FAILURES.labels("frame_missing").inc()
            raise Reject(f"frame missing: {exc}; it may have expired, ingest must resend it") from exc
        except StorageError as exc:
            FAILURES.labels("storage").inc()
            raise RetryLater(f"could not read the frame: {exc}", delay_s=self.settings.retry_delay_s) from exc
        STAGE_SECONDS.labels("fetch").observe(time.perf_counter() - began)
        try:
            image = inspect_image(stored.data, max_bytes=MAX_BYTES_S3)
            names = self.settings.custom_labels_for(
                site_id=received.context.site_id, camera_id=received.context.camera_id
            )
            return await analyse(received, image, self.engines, names)
        except InvalidImage as exc:
            FAILURES.labels("invalid_image").inc()
            raise Reject(f"frame is not an analysable image ({exc.aws_type}): {exc}") from exc
        except (EngineError, EngineUnavailable) as exc:
            FAILURES.labels("model").inc()
            attempt = context.receive_count
            if attempt >= self.settings.model_attempts:
                raise Reject(f"model failed on {attempt} deliveries, giving up: {exc}") from exc
            delay = self.settings.retry_delay_s * 2 ** (attempt - 1)
            raise RetryLater(f"model failed (delivery {attempt}): {exc}", delay_s=delay) from exc

    async def _storage(self, what: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except StorageError as exc:
            FAILURES.labels("storage").inc()
            raise RetryLater(f"could not {what}: {exc}", delay_s=self.settings.retry_delay_s) from exc
