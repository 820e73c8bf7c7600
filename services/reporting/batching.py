"""Group the frames that concurrent handlers are storing into one transaction (one commit for many frames).

Each handler still gets its own answer: `submit()` returns whether its frame was new, or raises, so the
consumer deletes or redelivers each message on its own. A batch that breaks a constraint is retried frame
by frame, so one bad frame never takes the others down with it.
"""

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError

from services.reporting.adapters.repository import ReportingRepository
from services.reporting.domain import FrameRecord
from shared.logging import get_logger

log = get_logger(__name__)


@dataclass
class _Batch:
    items: list[tuple[FrameRecord, "asyncio.Future[bool]"]] = field(default_factory=list)


class FrameBatcher:
    def __init__(self, repository: ReportingRepository, *, max_frames: int = 50, max_wait_s: float = 0.02) -> None:
        self._repository = repository
        self._max_frames = max_frames
        self._max_wait_s = max_wait_s
        self._open = _Batch()
        self._timer: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def submit(self, record: FrameRecord) -> bool:
        """Store the frame with whatever else arrives within `max_wait_s`; True when it was new."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._open.items.append((record, future))
        if len(self._open.items) >= self._max_frames:
            self._close_batch()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._close_after_wait())
        return await future

    async def _close_after_wait(self) -> None:
        await asyncio.sleep(self._max_wait_s)
        self._timer = None
        self._close_batch()

    def _close_batch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._open = self._open, _Batch()
        if batch.items:
            task = asyncio.create_task(self._store(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _store(self, batch: _Batch) -> None:
        first: dict[str, FrameRecord] = {}
        for record, _ in batch.items:
            first.setdefault(record.frame_id, record)
        try:
            stored = await self._repository.ingest_frames(list(first.values()))
        except IntegrityError:
            log.warning("batch broke a constraint; storing its frames one by one", frames=len(batch.items))
            await self._store_one_by_one(batch)
            return
        except Exception as exc:  # noqa: BLE001 - every waiting handler gets the failure and is redelivered
            for _, future in batch.items:
                _settle(future, exc=exc)
            return
        for record, future in batch.items:
            # A frame id twice in one batch: the first is stored, the second is the duplicate.
            _settle(future, result=record.frame_id in stored and first[record.frame_id] is record)

    async def _store_one_by_one(self, batch: _Batch) -> None:
        for record, future in batch.items:
            try:
                _settle(future, result=await self._repository.ingest_frame(record))
            except Exception as exc:  # noqa: BLE001 - handed to the frame's own handler
                _settle(future, exc=exc)


def _settle(future: "asyncio.Future[bool]", *, result: bool = False, exc: BaseException | None = None) -> None:
    if future.done():  # the handler timed out and gave up waiting
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
