"""The video command on a short real clip built from scene photos, through the real local engine."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.conftest import REPO_ROOT

SIZE = (960, 540)
FPS = 5
# Two shots of one second each. Their YOLO labels (scenes/labels, helmet_vest ids) say:
CROWD_WITHOUT_HELMETS = "scene_panly_000538"  # 1 helmet, 5 no_helmet heads
ALL_HELMETED = "scene_panly_000217"  # 5 helmet heads, no bare head


def head_labels(shared_data: Path, name: str) -> list[int]:
    rows = (shared_data / "scenes" / "labels" / f"{name}.txt").read_text().split("\n")
    return [int(row.split()[0]) for row in rows if row.strip() and int(row.split()[0]) in (0, 1)]


@pytest.fixture(scope="module")
def clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert head_labels(shared_data, CROWD_WITHOUT_HELMETS).count(1) == 5
    assert 1 not in head_labels(shared_data, ALL_HELMETED)
    path = tmp_path_factory.mktemp("video") / "site.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, SIZE)
    for name in (CROWD_WITHOUT_HELMETS, ALL_HELMETED):
        image = cv2.resize(cv2.imread(str(shared_data / "scenes" / "images" / f"{name}.jpg")), SIZE)
        for _ in range(FPS):
            writer.write(image)
    writer.release()
    return path


def labelled_head_centres(shared_data: Path, name: str) -> list[tuple[float, float]]:
    rows = (shared_data / "scenes" / "labels" / f"{name}.txt").read_text().split("\n")
    return [
        (float(row.split()[1]), float(row.split()[2]))
        for row in rows
        if row.strip() and int(row.split()[0]) in (0, 1)
    ]


def contains(box: dict[str, float], point: tuple[float, float]) -> bool:
    x, y = point
    return box["Left"] <= x <= box["Left"] + box["Width"] and box["Top"] <= y <= box["Top"] + box["Height"]


def test_timeline_and_annotated_video(clip: Path, tmp_path: Path, shared_data: Path) -> None:
    timeline_path = tmp_path / "timeline.json"
    annotated = tmp_path / "annotated.mp4"
    result = subprocess.run(
        [sys.executable, "-m", "clients.video", str(clip), "--fps", "1", "--timeline", str(timeline_path),
         "--annotated", str(annotated), "--required", "HEAD_COVER", "--min-confidence", "60"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "analysing site.mp4" in result.stderr  # the progress bar
    timeline = json.loads(timeline_path.read_text())

    assert [frame["timestamp_ms"] for frame in timeline["frames"]] == [0, 1000]
    crowd, helmeted = timeline["frames"]
    # The crowd shot: most of its bare heads are reported without the required hard hat.
    assert len(crowd["persons"]) >= 4
    assert len(crowd["summary"]["PersonsWithoutRequiredEquipment"]) >= 3
    # The helmeted shot: helmets found and covering heads, and no labelled (helmeted) worker is reported
    # without one. Tiny unlabelled people far in the background may be: the labels say nothing about them.
    assert len(helmeted["summary"]["PersonsWithRequiredEquipment"]) >= 3
    by_id = {person["Id"]: person for person in helmeted["persons"]}
    helmeted_heads = labelled_head_centres(shared_data, ALL_HELMETED)
    for person_id in helmeted["summary"]["PersonsWithoutRequiredEquipment"]:
        box = by_id[person_id]["BoundingBox"]
        assert not any(contains(box, head) for head in helmeted_heads), f"helmeted worker {person_id} reported bare"
    covered_heads = [
        detection
        for person in helmeted["persons"]
        for part in person["BodyParts"]
        if part["Name"] == "HEAD"
        for detection in part["EquipmentDetections"]
        if detection["Type"] == "HEAD_COVER" and detection["CoversBodyPart"]["Value"]
    ]
    assert len(covered_heads) >= 3

    capture = cv2.VideoCapture(str(annotated))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 2 and frames[0].shape[:2] == (SIZE[1], SIZE[0])


def test_a_file_that_is_not_a_video_is_refused_clearly(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video")
    result = subprocess.run([sys.executable, "-m", "clients.video", str(bogus)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "error:" in result.stderr and "notes.mp4" in result.stderr


async def test_a_video_in_s3_is_analysed(
    clip: Path, tmp_path: Path, s3_client: object, provisioned: dict[str, str], platform_settings: object
) -> None:
    bucket = platform_settings.frames_bucket  # type: ignore[attr-defined]
    await s3_client.put_object(Bucket=bucket, Key="videos/site.mp4", Body=clip.read_bytes())  # type: ignore[attr-defined]
    timeline_path = tmp_path / "timeline.json"
    env = {**os.environ, "AWS_ENDPOINT_URL": platform_settings.aws_endpoint_url}  # type: ignore[attr-defined]
    result = subprocess.run(
        [sys.executable, "-m", "clients.video", f"s3://{bucket}/videos/site.mp4", "--fps", "0.5",
         "--timeline", str(timeline_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.returncode == 0, result.stderr
    timeline = json.loads(timeline_path.read_text())
    assert [frame["timestamp_ms"] for frame in timeline["frames"]] == [0]
    assert len(timeline["frames"][0]["persons"]) >= 4
