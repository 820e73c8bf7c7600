"""The data-lake export: anonymised person events, incidents and the audit trail as Parquet, incremental,
re-runnable.

`python -m services.reporting.export [--target s3://bucket/prefix | /folder] [--lag-s 300]` runs it once;
the service runs it every REPORTING_EXPORT_INTERVAL_S when REPORTING_EXPORT_TARGET is set.

Each run exports, per stream, the rows stored since the stream's watermark (up to now - lag) into
`<stream>/site=<site>/date=<YYYY-MM-DD>/part-<from>-<to>.parquet`, then moves the watermark. The range is
saved before any file is written: a run that dies midway is redone with the same range and the same file
names, overwriting its own partial output, so a rerun never duplicates rows. Schema and Athena DDL:
docs/reporting.md#data-lake-export.
"""

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.reporting.adapters.datalake import PartitionedWriter, Target, file_name, publish
from services.reporting.adapters.export_source import ExportSource
from services.reporting.schedule import every
from shared.logging import get_logger

log = get_logger(__name__)

STREAMS: dict[str, tuple[str, str]] = {  # stream -> (site column, date column) of its partitions
    "person_events": ("site_id", "captured_at"),
    "incidents": ("site_id", "started_at"),
    "audit": ("partition_site", "occurred_at"),
}


@dataclass
class StreamResult:
    stream: str
    rows: int = 0
    files: list[str] = field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None
    resumed: bool = False
    skipped: str | None = None


def _row(stream: str, row: dict[str, Any]) -> dict[str, Any]:
    if stream == "person_events":
        equipment = row.get("equipment") or {}
        row["equipment"] = [(name, value) for name, value in sorted(equipment.items())] or None
    return row


class Exporter:
    def __init__(self, source: ExportSource, target: Target, *, s3: Any | None, lag_s: float, batch_rows: int) -> None:
        self._source = source
        self._target = target
        self._s3 = s3
        self._lag_s = lag_s
        self._batch_rows = batch_rows

    async def run_once(self) -> list[StreamResult]:
        lock = await self._source.try_lock()
        if lock is None:
            log.info("another exporter is running; skipped")
            return [StreamResult(stream, skipped="another exporter is running") for stream in STREAMS]
        try:
            return [await self._export(stream) for stream in STREAMS]
        finally:
            await self._source.unlock(lock)

    async def _export(self, stream: str) -> StreamResult:
        run = await self._source.plan(stream=stream, lag_s=self._lag_s)
        if run is None:
            return StreamResult(stream, skipped="nothing new")
        result = StreamResult(stream, start=run.start, end=run.end, resumed=run.resumed)
        writer = PartitionedWriter(stream, file_name(run.start, run.end))
        site_of, day_of = STREAMS[stream]
        try:
            async for batch in self._source.rows(run, batch_rows=self._batch_rows):
                writer.write([_row(stream, row) for row in batch], site_of=site_of, day_of=day_of)
            result.files = await publish(self._target, writer.close(), s3=self._s3)
        finally:
            writer.cleanup()
        result.rows = writer.rows
        await self._source.finish(run, rows=writer.rows)
        log.info(
            "export done",
            stream=stream,
            rows=writer.rows,
            files=len(result.files),
            start=run.start.isoformat(),
            end=run.end.isoformat(),
            resumed=run.resumed,
        )
        return result

    async def run_forever(self, *, interval_s: float, stop: asyncio.Event) -> None:
        await every(
            interval_s, stop, self.run_once, failure="export failed; the same range is redone at the next interval"
        )


async def main(argv: list[str] | None = None) -> int:
    from services.reporting.config import ExportSettings
    from shared.aws import aws_client
    from shared.db import make_engine
    from shared.logging import configure_logging

    parser = argparse.ArgumentParser(
        prog="python -m services.reporting.export",
        description="Export new person events, incidents and audit records as Parquet (incremental; safe to rerun).",
        epilog="example: python -m services.reporting.export --target s3://my-lake/ppe",
    )
    parser.add_argument("--target", help="s3://bucket/prefix or a folder (default: REPORTING_EXPORT_TARGET)")
    parser.add_argument("--lag-s", type=float, help="leave rows stored in the last N seconds for the next run")
    args = parser.parse_args(argv)
    settings = ExportSettings()
    configure_logging("reporting-export", fmt=settings.log_format, level=settings.log_level)
    target_value = args.target or settings.export_target
    if not target_value:
        print("set --target or REPORTING_EXPORT_TARGET (s3://bucket/prefix or a folder)", file=sys.stderr)
        return 2
    target = Target.parse(target_value)
    engine = make_engine(settings.database_url)
    try:
        async with aws_client("s3", settings) as s3:
            exporter = Exporter(
                ExportSource(engine),
                target,
                s3=s3 if target.bucket else None,
                lag_s=settings.export_lag_s if args.lag_s is None else args.lag_s,
                batch_rows=settings.export_batch_rows,
            )
            results = await exporter.run_once()
    finally:
        await engine.dispose()
    summary = [{"stream": r.stream, "rows": r.rows, "files": len(r.files), "skipped": r.skipped} for r in results]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
