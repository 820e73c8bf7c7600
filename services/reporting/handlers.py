"""Queue handlers: FrameAnalyzed -> anonymised person events, IncidentChanged -> incident list."""

from collections.abc import Awaitable, Callable

from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError

from services.reporting.adapters.repository import ReportingRepository
from services.reporting.adapters.snapshots import Snapshots
from services.reporting.batching import FrameBatcher
from services.reporting.domain import DEFAULT_CATALOGUE, frame_record
from shared.contracts import Envelope, FrameAnalyzed, IncidentChanged
from shared.equipment import Catalogue, UnknownEquipment
from shared.logging import bind_context, get_logger
from shared.sqs import MessageContext, Reject

log = get_logger(__name__)

FRAMES = Counter("reporting_frames_total", "FrameAnalyzed messages by outcome.", ["outcome"])
PERSONS = Counter("reporting_person_events_total", "Person events stored.")
INCIDENTS = Counter("reporting_incident_changes_total", "IncidentChanged messages stored.", ["status"])

FrameHandler = Callable[[Envelope[FrameAnalyzed], MessageContext], Awaitable[None]]
IncidentHandler = Callable[[Envelope[IncidentChanged], MessageContext], Awaitable[None]]


def frame_handler(
    frames: FrameBatcher, catalogue: Catalogue = DEFAULT_CATALOGUE, snapshots: Snapshots | None = None
) -> FrameHandler:
    """`snapshots` (optional): renew the camera's face-blurred snapshot (zone editor) from new frames."""

    async def handle(envelope: Envelope[FrameAnalyzed], context: MessageContext) -> None:
        payload = envelope.payload
        with bind_context(frame_id=payload.context.frame_id, camera_id=payload.context.camera_id):
            try:
                record = frame_record(payload, catalogue)
            except UnknownEquipment as exc:
                # the frame requires equipment this service's PPE_CUSTOM_EQUIPMENT does not define
                raise Reject(f"frame cannot be judged: {exc}") from exc
            try:
                stored = await frames.submit(record)
            except IntegrityError as exc:
                # e.g. two persons with one Id in a response: retrying cannot fix the message.
                raise Reject(f"frame violates reporting constraints: {exc.orig}") from exc
            if stored:
                FRAMES.labels("stored").inc()
                PERSONS.inc(len(record.persons))
                log.info("frame stored", persons=len(record.persons))
                if snapshots is not None:
                    await snapshots.renew_if_due(payload)
            else:
                FRAMES.labels("duplicate").inc()
                log.info("frame already stored; duplicate ignored")

    return handle


def incident_handler(repository: ReportingRepository) -> IncidentHandler:
    async def handle(envelope: Envelope[IncidentChanged], context: MessageContext) -> None:
        change = envelope.payload
        with bind_context(frame_id=change.frame_id, camera_id=change.camera_id, incident_id=change.incident_id):
            await repository.record_incident(change, changed_at=envelope.occurred_at)
            INCIDENTS.labels(change.status).inc()
            log.info("incident recorded", status=change.status)

    return handle
