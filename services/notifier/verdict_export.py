"""Export reviewed incidents' opening frames, face-blurred, as a folder per verdict for `bin/labels`.

    python -m services.notifier.verdict_export --out work/verdicts [--site-id S] [--camera-id C] [--since ISO]

Writes OUT/false_positive/<camera>__<incident>.jpg and OUT/confirmed/<camera>__<incident>.jpg (the frame that
opened the incident, blurred with shared.privacy like every alert image), and OUT/verdicts.csv (incident,
camera, site, zone, missing PPE, verdict, reason: no reviewer names). `bin/labels import-folders OUT -o
work/verdicts.json` reads it as a two-class set (whole-frame: the alert was right or wrong). Incidents whose
frame is gone (retention) or not an image are skipped and counted. Needs DATABASE_URL and the platform's AWS
variables (PPE_FRAMES_BUCKET, AWS_ENDPOINT_URL...).
"""

import argparse
import asyncio
import csv
import getpass
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.adapters.alert_frames import MAX_FRAME_BYTES
from services.notifier.adapters.incidents import IncidentRepository
from services.notifier.domain import Box
from shared.access import audit
from shared.aws import aws_clients
from shared.config import PlatformSettings
from shared.db import make_engine
from shared.privacy import SnapshotError, blur_regions
from shared.rekognition import BoundingBox
from shared.s3 import FrameNotFound, FrameStore

VERDICTS = ("false_positive", "confirmed")


@dataclass
class Exported:
    written: dict[str, int]
    skipped: int

    def render(self, out: Path) -> str:
        counts = ", ".join(f"{self.written.get(v, 0)} {v}" for v in VERDICTS)
        return f"{counts} -> {out} ({self.skipped} skipped: frame gone or not an image)"


async def export_verdicts(
    engine: AsyncEngine, frames: FrameStore, out: Path, *, site_id: str | None = None,
    camera_id: str | None = None, since: datetime | None = None, actor: str = "unknown",
) -> Exported:
    """Write the reviewed frames under `out`; `actor` (the operating-system user of the command) goes into the
    audit records of the export."""
    async with engine.connect() as conn:
        rows = await IncidentRepository(conn).reviewed(VERDICTS, site_id=site_id, camera_id=camera_id, since=since)
    for verdict in VERDICTS:  # both folders, so bin/labels sees two classes even when one is empty
        (out / verdict).mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    per_site: dict[str, int] = {}
    skipped = 0
    with (out / "verdicts.csv").open("w", newline="") as handle:
        table = csv.writer(handle)
        table.writerow(["image", "incident_id", "camera_id", "site_id", "zone_id", "missing_equipment", "verdict",
                        "reason"])
        for row in rows:
            frame = row.opened_frame
            try:
                where = frame["frame"]
                raw = await frames.get(where["key"], bucket=where["bucket"], max_bytes=MAX_FRAME_BYTES)
                image = blur_regions(raw.data, [Box.of(BoundingBox.model_validate(b)) for b in frame["face_boxes"]])
            except (FrameNotFound, SnapshotError):
                skipped += 1
                continue
            name = f"{row.review}/{_safe(row.camera_id)}__{_safe(row.id)}.jpg"
            (out / name).write_bytes(image)
            table.writerow([name, row.id, row.camera_id, row.site_id, row.zone_id,
                            " ".join(row.missing_equipment), row.review, row.review_reason or ""])
            written[row.review] = written.get(row.review, 0) + 1
            per_site[row.site_id] = per_site.get(row.site_id, 0) + 1
    async with engine.begin() as conn:  # frames leaving the platform are a download: one audit record per site
        for site, count in sorted(per_site.items()):
            await audit.append(conn, actor=f"service:verdict-export ({actor})", action="frame.export",
                               site_id=site, target=f"folder:{out.name}",
                               details={"frames": count, "camera_id": camera_id, "since": since})
    return Exported(written, skipped)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


async def _main(args: argparse.Namespace) -> int:
    settings = PlatformSettings()
    engine = make_engine(settings.database_url)
    try:
        async with aws_clients(settings, "s3") as (s3,):
            done = await export_verdicts(engine, FrameStore(s3, settings.frames_bucket), args.out,
                                         site_id=args.site_id, camera_id=args.camera_id, since=args.since,
                                         actor=getpass.getuser())
    finally:
        await engine.dispose()
    print(done.render(args.out))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write (one subfolder per verdict)")
    parser.add_argument("--site-id")
    parser.add_argument("--camera-id")
    parser.add_argument("--since", type=datetime.fromisoformat, help="incidents started at or after (ISO, with offset)")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
