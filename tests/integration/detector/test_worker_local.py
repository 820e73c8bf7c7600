"""Real frames through the real queue with the offline engine, checked against the scenes' labels.

The scene photos (../shared/data/scenes) carry YOLO boxes: heads with (0) or without (1) a helmet, torsos
with (3) or without (2) hi-vis workwear. The published FrameAnalyzed must find the labelled workers, say
which heads are covered, and attach the vest labels to the right persons. Bars are set a little under the
engine's own measured accuracy (docs/local_engine.md) so this test checks the detector's plumbing (decode,
orientation, box ratios, merge) on top of a model that is measured elsewhere.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.detector.config import DetectorSettings
from services.detector.engines.registry import EngineSet, build_engines
from services.detector.main import run
from shared.config import PlatformSettings
from shared.contracts import FrameAnalyzed
from shared.rekognition import BodyPartName, BoundingBox, EquipmentType
from shared.s3 import FrameStore
from shared.sqs import Publisher, QueueResolver
from tests.integration.detector.helpers import dead_letters, published, submit_frame
from tests.support.fixture_photos import bare_close_ups, hand_photos, masked_close_ups

HELMET, NO_HELMET, NO_WEAR, WEAR = 0, 1, 2, 3
MIN_HEAD_RECALL = 0.75  # labelled heads inside a detected person's box
MIN_HEAD_COVER_AGREEMENT = 0.75  # of those, HEAD_COVER verdict agrees with the label
MIN_VEST_AGREEMENT = 0.7  # labelled torsos whose person got the matching vest / no-vest label


def yolo_boxes(path: Path) -> list[tuple[int, BoundingBox]]:
    boxes = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        cls, cx, cy, w, h = line.split()
        x, y, width, height = float(cx), float(cy), float(w), float(h)
        boxes.append((int(cls), BoundingBox(Left=x - width / 2, Top=y - height / 2, Width=width, Height=height)))
    return boxes


def centre_inside(inner: BoundingBox, outer: BoundingBox) -> bool:
    cx, cy = inner.Left + inner.Width / 2, inner.Top + inner.Height / 2
    return outer.Left <= cx <= outer.Left + outer.Width and outer.Top <= cy <= outer.Top + outer.Height


def owner(result: FrameAnalyzed, box: BoundingBox) -> Any:
    """The smallest detected person whose box holds the labelled box's centre."""
    holders = [p for p in result.ppe.Persons if centre_inside(box, p.BoundingBox)]
    return min(holders, key=lambda p: p.BoundingBox.Width * p.BoundingBox.Height, default=None)


def worker_timings(stage: str) -> float:
    """How many worker timings of `stage` the detector's stage histogram holds."""
    return REGISTRY.get_sample_value("ppe_detector_stage_seconds_count", {"stage": stage}) or 0.0


@pytest.fixture(scope="module")
async def local_engines() -> AsyncIterator[EngineSet]:
    """One pool of model workers for the module (loading models is the slow part)."""
    engines = build_engines(DetectorSettings(ppe_engine="local", workers=2))  # default: the shipped vest model too
    await engines.start()
    try:
        yield engines
    finally:
        await engines.close()


async def test_scene_frames_are_analysed_as_labelled(
    local_engines: EngineSet,
    platform_settings: PlatformSettings,
    provisioned: dict[str, str],
    s3_client: Any,
    sqs_client: Any,
    resolver: QueueResolver,
    shared_data: Path,
) -> None:
    scenes = shared_data / "scenes"
    labelled = sorted((scenes / "labels").glob("*.txt"))
    assert len(labelled) >= 10
    store = FrameStore(s3_client, platform_settings.frames_bucket)
    ingest = Publisher(sqs_client, resolver, producer="ingest")
    # GIVEN every labelled scene photo stored and announced on frames-received
    for label in labelled:
        data = (scenes / "images" / f"{label.stem}.jpg").read_bytes()
        await submit_frame(
            data, label.stem, store=store, publisher=ingest, required=(EquipmentType.HEAD_COVER,), min_confidence=50
        )
    settings = DetectorSettings(ppe_engine="local")
    worker_stages = ("worker:decode", "worker:ppe", "worker:labels:vest")
    before = {stage: worker_timings(stage) for stage in worker_stages}
    # WHEN the detector drains the queue
    await run(settings, until_idle=True, serve_http=False, engines=local_engines)
    # (the model worker's own timings reach the stage histogram: decode, PPE, and the fused vest model)
    for stage in worker_stages:
        assert worker_timings(stage) - before[stage] >= len(labelled), stage

    # THEN every frame has one published result, with the local models' versions and a Summary
    results = {r.context.frame_id: r for r in await published(sqs_client, resolver, "frames-analyzed-reporting")}
    assert sorted(results) == sorted(label.stem for label in labelled)
    assert await dead_letters(sqs_client, resolver) == {}
    heads = found = covered_right = 0
    torsos = vest_right = 0
    for label in labelled:
        result = results[label.stem]
        assert set(result.model_versions) == {"local", "vest"}
        assert result.ppe.Summary is not None
        summary_ids = (
            result.ppe.Summary.PersonsWithRequiredEquipment
            + result.ppe.Summary.PersonsWithoutRequiredEquipment
            + result.ppe.Summary.PersonsIndeterminate
        )
        assert sorted(summary_ids) == sorted(p.Id for p in result.ppe.Persons)
        for cls, box in yolo_boxes(label):
            person = owner(result, box)
            if cls in (HELMET, NO_HELMET):
                heads += 1
                if person is None:
                    continue
                found += 1
                head = next((bp for bp in person.BodyParts if bp.Name == BodyPartName.HEAD), None)
                covered = head is not None and any(
                    d.Type == EquipmentType.HEAD_COVER and d.CoversBodyPart.Value for d in head.EquipmentDetections
                )
                covered_right += covered == (cls == HELMET)
            else:
                torsos += 1
                if person is None:
                    continue
                names = {a.label.Name for a in result.custom_labels if a.person_id == person.Id}
                vest_right += ("hi_vis_vest" if cls == WEAR else "no_hi_vis_vest") in names
    print(
        f"heads {heads}, in a person box {found}, HEAD_COVER right {covered_right}; "
        f"torsos {torsos}, vest right {vest_right}"
    )
    assert found / heads >= MIN_HEAD_RECALL
    assert covered_right / found >= MIN_HEAD_COVER_AGREEMENT
    assert vest_right / torsos >= MIN_VEST_AGREEMENT


async def test_fixture_photos_through_the_queue_say_who_wears_a_mask_or_gloves(
    local_engines: EngineSet,
    platform_settings: PlatformSettings,
    provisioned: dict[str, str],
    s3_client: Any,
    sqs_client: Any,
    resolver: QueueResolver,
) -> None:
    """Runs on every clone (tests/fixtures, no ../shared/data): the same plumbing on mask and glove photos."""
    frames = {
        "masked": (masked_close_ups()[0], EquipmentType.FACE_COVER),
        "bare": (bare_close_ups()[0], EquipmentType.FACE_COVER),
        "gloved": (hand_photos("gloved_hand")[0], EquipmentType.HAND_COVER),
    }
    store = FrameStore(s3_client, platform_settings.frames_bucket)
    ingest = Publisher(sqs_client, resolver, producer="ingest")
    # GIVEN three photos stored and announced, each camera requiring the equipment the photo is about
    for frame_id, (photo, required) in frames.items():
        await submit_frame(photo.read_bytes(), frame_id, store=store, publisher=ingest, required=(required,))
    # WHEN the detector drains the queue
    await run(DetectorSettings(ppe_engine="local"), until_idle=True, serve_http=False, engines=local_engines)
    # THEN the masked face is compliant, the bare face is not, and the gloved hand carries a HAND_COVER
    results = {r.context.frame_id: r for r in await published(sqs_client, resolver, "frames-analyzed-reporting")}
    assert sorted(results) == sorted(frames) and await dead_letters(sqs_client, resolver) == {}
    summaries = {frame_id: result.ppe.Summary for frame_id, result in results.items()}
    assert all(summary is not None for summary in summaries.values())
    assert summaries["masked"].PersonsWithRequiredEquipment  # type: ignore[union-attr]
    assert summaries["bare"].PersonsWithoutRequiredEquipment  # type: ignore[union-attr]
    gloves = [
        d
        for person in results["gloved"].ppe.Persons
        for part in person.BodyParts
        if part.Name in (BodyPartName.LEFT_HAND, BodyPartName.RIGHT_HAND)
        for d in part.EquipmentDetections
        if d.Type == EquipmentType.HAND_COVER and d.CoversBodyPart.Value
    ]
    assert gloves
