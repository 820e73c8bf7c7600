"""Queue handlers: FrameAnalyzed -> anonymised person events, IncidentChanged -> incident list."""

from sqlalchemy.exc import IntegrityError

from services.reporting.adapters.repository import ReportingRepository
from services.reporting.adapters.snapshots import Snapshots
from services.reporting.domain import DEFAULT_CATALOGUE, FrameRecord, frame_record
from services.reporting.metrics import FRAMES, INCIDENTS, PERSONS
from shared.contracts import Envelope, FrameAnalyzed, IncidentChanged
from shared.equipment import Catalogue, UnknownEquipment
from shared.handlers import BatchMessageHandler, MessageHandler
from shared.logging import bind_context, get_logger
from shared.sqs import MessageContext, Reject

log = get_logger(__name__)


class FrameHandler(BatchMessageHandler[FrameAnalyzed]):
    """The frames consumer's batch handler: the frames of one receive stored in one transaction.

    All or nothing: when it raises, the consumer calls it again with each frame alone, so a frame that cannot
    be judged or breaks a constraint is rejected on its own and the others are stored. `snapshots` (optional):
    renew the camera's face-blurred snapshot (zone editor) from newly stored frames."""

    def __init__(
        self,
        repository: ReportingRepository,
        catalogue: Catalogue = DEFAULT_CATALOGUE,
        snapshots: Snapshots | None = None,
    ) -> None:
        self._repository = repository
        self._catalogue = catalogue
        self._snapshots = snapshots

    async def handle_envelopes(self, envelopes: list[Envelope[FrameAnalyzed]]) -> None:
        records = [_record(envelope.payload, self._catalogue) for envelope in envelopes]
        by_id = {envelope.payload.context.frame_id: envelope.payload for envelope in envelopes}
        first: dict[str, FrameRecord] = {}
        for record in records:
            first.setdefault(record.frame_id, record)
        try:
            stored = await self._repository.ingest_frames(list(first.values()))
        except IntegrityError as exc:
            # e.g. two persons with one Id in a response: retrying cannot fix the message.
            raise Reject(f"frame violates reporting constraints: {exc.orig}") from exc
        for record in records:
            with bind_context(frame_id=record.frame_id, camera_id=record.camera_id):
                # A frame id twice in one batch: the first is stored, the second is the duplicate.
                if record.frame_id in stored and first[record.frame_id] is record:
                    FRAMES.labels("stored").inc()
                    PERSONS.inc(len(record.persons))
                    log.info("frame stored", persons=len(record.persons))
                    if self._snapshots is not None:
                        await self._snapshots.renew_if_due(by_id[record.frame_id])
                else:
                    FRAMES.labels("duplicate").inc()
                    log.info("frame already stored; duplicate ignored")


def _record(payload: FrameAnalyzed, catalogue: Catalogue) -> FrameRecord:
    try:
        return frame_record(payload, catalogue)
    except UnknownEquipment as exc:
        # the frame requires equipment this service's PPE_CUSTOM_EQUIPMENT does not define
        with bind_context(frame_id=payload.context.frame_id, camera_id=payload.context.camera_id):
            raise Reject(f"frame cannot be judged: {exc}") from exc


class IncidentHandler(MessageHandler[IncidentChanged]):
    """The incidents consumer's handler: one IncidentChanged onto the incident list."""

    def __init__(self, repository: ReportingRepository) -> None:
        self._repository = repository

    async def handle(self, envelope: Envelope[IncidentChanged], context: MessageContext) -> None:
        change = envelope.payload
        with bind_context(frame_id=change.frame_id, camera_id=change.camera_id, incident_id=change.incident_id):
            await self._repository.record_incident(change, changed_at=envelope.occurred_at)
            INCIDENTS.labels(change.status).inc()
            log.info("incident recorded", status=change.status)
