"""The retention job: purge old events from PostgreSQL and ask S3 to expire old frames, on a schedule."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from services.reporting.adapters.lifecycle import LifecycleError, request_frame_expiry
from services.reporting.adapters.repository import PurgeResult, ReportingRepository
from services.reporting.domain import rollup_bucket
from services.reporting.schedule import every
from shared.logging import get_logger

log = get_logger(__name__)


class RetentionJob:
    def __init__(
        self,
        repository: ReportingRepository,
        s3: Any | None,
        *,
        bucket: str,
        retention_days: int,
        frames_retention_days: int,
    ) -> None:
        self._repository = repository
        self._s3 = s3
        self._bucket = bucket
        self.retention_days = retention_days
        self._frames_retention_days = frames_retention_days
        self.last_run_at: datetime | None = None

    def cutoff(self, now: datetime) -> datetime:
        # On a rollup boundary, so rollup buckets and the events they count are purged together.
        return rollup_bucket(now - timedelta(days=self.retention_days))

    async def run_once(self, *, now: datetime | None = None) -> PurgeResult:
        now = now or datetime.now(UTC)
        cutoff = self.cutoff(now)
        result = await self._repository.purge_before(cutoff)
        log.info(
            "retention purge done",
            cutoff=cutoff.isoformat(),
            retention_days=self.retention_days,
            person_events=result.person_events,
            frames=result.frames,
            rollup_rows=result.rollup_rows,
            incidents=result.incidents,
        )
        if self._s3 is not None:
            try:
                await request_frame_expiry(self._s3, bucket=self._bucket, days=self._frames_retention_days)
            except LifecycleError as exc:
                log.error("frames lifecycle not set; will ask again next run", error=str(exc))
        self.last_run_at = now
        return result

    async def run_forever(self, *, interval_s: float, stop: asyncio.Event) -> None:
        await every(interval_s, stop, self.run_once, failure="retention run failed; retrying at the next interval")
