"""Reviewed incidents' frames, face-blurred, as a folder per verdict that `bin/labels import-folders` reads.

Real PostgreSQL, the emulator's S3, a photo-like frame drawn by the test; verdicts given through the API.
"""

from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from model_workshop.labels.folders import import_folders
from services.notifier.adapters import db
from services.notifier.config import NotifierSettings
from services.notifier.main import run
from services.notifier.verdict_export import export_verdicts
from shared.access import audit
from shared.access import tables as access_tables
from shared.s3 import FrameStore
from shared.sqs import QueueResolver
from tests.integration.notifier.conftest import bare_head_jpeg, publish_frames
from tests.unit.notifier.builders import hat_scenario


def _detail(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


async def test_false_positives_and_confirmed_frames_export_blurred_for_bin_labels(
    notifier_settings: NotifierSettings, engine: AsyncEngine, admin: httpx.AsyncClient, sqs_client: Any,
    s3_client: Any, resolver: QueueResolver, tmp_path: Path,
) -> None:
    bucket = notifier_settings.frames_bucket
    photo, heads = bare_head_jpeg()
    left, top, width, height = heads[0]
    person_box = (left, top, width, min(height / 0.3, 1.0 - top))
    # GIVEN three incidents on three cameras; cam-3's frame is gone by the time of the export
    for camera in ("cam-1", "cam-2", "cam-3"):
        key = f"frames/site-1/{camera}/still.jpg"
        if camera != "cam-3":
            await s3_client.put_object(Bucket=bucket, Key=key, Body=photo, ContentType="image/jpeg")
        frames = hat_scenario(camera_id=camera, before_s=1, without_s=4, after_s=0, bucket=bucket, key=key,
                              box=person_box)
        await publish_frames(sqs_client, resolver, frames)
    await run(notifier_settings, until_idle=True, engine=engine)
    async with engine.connect() as conn:
        ids = dict((await conn.execute(sa.select(db.incidents.c.camera_id, db.incidents.c.id))).all())
    # ... reviewed: cam-1 a false positive, cam-2 confirmed, cam-3 a false positive
    for camera, path, body in (("cam-1", "false-positive", {"reason": "a poster of a worker"}),
                               ("cam-2", "confirm", None), ("cam-3", "false-positive", {"reason": "reflection"})):
        response = await admin.post(f"/v1/incidents/{ids[camera]}/{path}", json=body)
        assert response.status_code == 200, response.text

    # WHEN the verdicts are exported
    done = await export_verdicts(engine, FrameStore(s3_client, bucket), tmp_path / "verdicts", actor="olga")

    # THEN one image per verdict, cam-3 skipped, and bin/labels reads the folder as two classes
    assert (done.written, done.skipped) == ({"false_positive": 1, "confirmed": 1}, 1)
    dataset = import_folders(tmp_path / "verdicts")
    assert dataset.classes == ("confirmed", "false_positive")
    assert sorted((r.image_label, r.key) for r in dataset.images) == [
        ("confirmed", f"confirmed/cam-2__{ids['cam-2']}.jpg"),
        ("false_positive", f"false_positive/cam-1__{ids['cam-1']}.jpg")]
    lines = (tmp_path / "verdicts" / "verdicts.csv").read_text().splitlines()
    assert len(lines) == 3 and "a poster of a worker" in lines[1] + lines[2]
    # ... and the exported head is blurred beyond recognition
    exported = cv2.imread(str(tmp_path / "verdicts" / f"false_positive/cam-1__{ids['cam-1']}.jpg"))
    raw = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
    raw = cv2.resize(raw, (exported.shape[1], exported.shape[0]))
    h, w = exported.shape[:2]
    y1, y2, x1, x2 = int(top * h), int((top + height) * h), int(left * w), int((left + width) * w)
    ratio = _detail(exported[y1:y2, x1:x2]) / _detail(raw[y1:y2, x1:x2])
    assert ratio < 0.2, f"the exported head region keeps {ratio:.0%} of its detail"
    # ... and the export is on the audit trail, in the name of who ran it, with the chain intact
    async with engine.connect() as conn:
        records = (await conn.execute(sa.select(access_tables.audit).where(
            access_tables.audit.c.action == "frame.export"))).all()
    assert [(r.actor, r.site_id, r.target, r.details["frames"]) for r in records] == [
        ("service:verdict-export (olga)", "site-1", "folder:verdicts", 2)]
    assert (await audit.verify(engine)).ok
