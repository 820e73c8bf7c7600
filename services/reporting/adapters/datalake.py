"""Parquet files for the data lake (pyarrow), partitioned `site=<site id>/date=<YYYY-MM-DD>`, on S3 or a folder.

Files are first written to a local temporary folder, one ParquetWriter per partition (a row group per batch), then
moved into place (folder) or uploaded (S3). A file's name is fixed by the export run's range, so a rerun of an
interrupted run overwrites its own files instead of adding duplicates.
"""

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq

OUTCOME = pa.string()
EQUIPMENT = pa.map_(pa.string(), pa.struct([("outcome", OUTCOME), ("confidence", pa.float64())]))

PERSON_EVENTS = pa.schema(
    [
        pa.field("frame_id", pa.string(), nullable=False),
        pa.field("person_index", pa.int32(), nullable=False),
        pa.field("captured_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("site_id", pa.string(), nullable=False),
        pa.field("zone_id", pa.string(), nullable=False),
        pa.field("camera_id", pa.string(), nullable=False),
        pa.field("outcome", OUTCOME, nullable=False),
        pa.field("person_confidence", pa.float64(), nullable=False),
        pa.field("head_cover", OUTCOME),
        pa.field("head_cover_confidence", pa.float64()),
        pa.field("face_cover", OUTCOME),
        pa.field("face_cover_confidence", pa.float64()),
        pa.field("hand_cover", OUTCOME),
        pa.field("hand_cover_confidence", pa.float64()),
        pa.field("equipment", EQUIPMENT),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ],
    metadata={"ppe.stream": "person_events", "ppe.version": "1"},
)

INCIDENTS = pa.schema(
    [
        pa.field("incident_id", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("site_id", pa.string(), nullable=False),
        pa.field("zone_id", pa.string(), nullable=False),
        pa.field("camera_id", pa.string(), nullable=False),
        pa.field("missing_equipment", pa.list_(pa.string()), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("started_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("last_seen_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("resolved_at", pa.timestamp("us", tz="UTC")),
        pa.field("max_confidence", pa.float64(), nullable=False),
        pa.field("changed_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("version", pa.int32(), nullable=False),  # last, so older files read as version null
    ],
    metadata={"ppe.stream": "incidents", "ppe.version": "1"},
)

AUDIT = pa.schema(
    [
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("occurred_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("actor", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("site_id", pa.string()),
        pa.field("target", pa.string()),
        pa.field("details", pa.string(), nullable=False),  # JSON text
        pa.field("prev_hash", pa.string(), nullable=False),
        pa.field("hash", pa.string(), nullable=False),
    ],
    metadata={"ppe.stream": "audit", "ppe.version": "1"},
)

SCHEMAS: dict[str, pa.Schema] = {"person_events": PERSON_EVENTS, "incidents": INCIDENTS, "audit": AUDIT}


class ExportTargetError(ValueError):
    """REPORTING_EXPORT_TARGET is neither s3://bucket[/prefix] nor a local folder path."""


@dataclass(frozen=True)
class Target:
    """Where the lake lives: `s3://bucket/prefix` or a local folder (`file:///path` or a plain path)."""

    bucket: str | None
    root: str  # S3 key prefix (no leading /) or absolute folder path

    @classmethod
    def parse(cls, value: str) -> "Target":
        parsed = urlparse(value)
        if parsed.scheme == "s3":
            if not parsed.netloc:
                raise ExportTargetError(f"REPORTING_EXPORT_TARGET {value!r}: an s3:// target needs a bucket")
            return cls(parsed.netloc, parsed.path.strip("/"))
        if parsed.scheme in ("", "file"):
            path = parsed.path if parsed.scheme == "file" else value
            return cls(None, str(Path(path).resolve()))
        raise ExportTargetError(f"REPORTING_EXPORT_TARGET {value!r}: use s3://bucket/prefix or a folder path")

    def key(self, relative: str) -> str:
        return f"{self.root}/{relative}" if self.root else relative


def partition_path(stream: str, site_id: str, day: str) -> str:
    """Hive-style partition folder; the site id is URL-quoted so any id is a safe path segment."""
    return f"{stream}/site={quote(site_id, safe='')}/date={day}"


def file_name(start: datetime, end: datetime) -> str:
    return f"part-{start:%Y%m%dT%H%M%S%fZ}-{end:%Y%m%dT%H%M%S%fZ}.parquet"


class PartitionedWriter:
    """Collects batches of rows into one Parquet file per (site, date) partition in a temporary folder."""

    def __init__(self, stream: str, name: str) -> None:
        self.stream = stream
        self.schema = SCHEMAS[stream]
        self._name = name
        self._tmp = Path(tempfile.mkdtemp(prefix=f"ppe-export-{stream}-"))
        self._writers: dict[str, pq.ParquetWriter] = {}
        self.rows = 0

    def write(self, rows: Sequence[dict[str, Any]], *, site_of: str, day_of: str) -> None:
        """Rows (dicts with the schema's columns) split by partition; `day_of` names the datetime column."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            path = partition_path(self.stream, row[site_of], row[day_of].date().isoformat())
            groups.setdefault(path, []).append(row)
        for path, group in groups.items():
            writer = self._writers.get(path)
            if writer is None:
                folder = self._tmp / path
                folder.mkdir(parents=True, exist_ok=True)
                writer = self._writers[path] = pq.ParquetWriter(folder / self._name, self.schema, compression="zstd")
            writer.write_table(pa.Table.from_pylist(group, schema=self.schema))
        self.rows += len(rows)

    def close(self) -> list[tuple[Path, str]]:
        """Close every file; returns (local file, path relative to the lake root)."""
        for writer in self._writers.values():
            writer.close()
        return [(self._tmp / path / self._name, f"{path}/{self._name}") for path in sorted(self._writers)]

    def cleanup(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


async def publish(target: Target, files: Iterable[tuple[Path, str]], *, s3: Any | None) -> list[str]:
    """Move (folder) or upload (S3) the files; an existing file of the same name is replaced."""
    placed = []
    for local, relative in files:
        if target.bucket is None:
            destination = Path(target.root) / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            partial = destination.with_suffix(".parquet.partial")
            shutil.copyfile(local, partial)
            os.replace(partial, destination)  # readers never see half a file
            placed.append(str(destination))
        else:
            if s3 is None:
                raise ExportTargetError("an s3:// export target needs an S3 client")
            key = target.key(relative)
            body = await asyncio.to_thread(local.read_bytes)  # Parquet files of one partition: a few MB
            await s3.put_object(Bucket=target.bucket, Key=key, Body=body)
            placed.append(f"s3://{target.bucket}/{key}")
    return placed
