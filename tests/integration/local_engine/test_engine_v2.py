"""Engine v2 on real photos, scored from the Rekognition JSON the way a user reads it (model_workshop.strict_eval).

A face close-up with a mask gets a person with FACE and a FACE_COVER over it; a gloved hand gets HAND_COVER; two
workers side by side each get their own HEAD verdict. Images come from the held-back side of the split files,
never used to train or tune.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from model_workshop import strict_eval as se
from services.detector.local_engine.model_files import WEIGHTS_DIR
from services.detector.local_engine.pipeline import LocalPipeline
from shared.rekognition import EquipmentType, SummarizationAttributes

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def data(shared_data: Path) -> Path:
    """The shared photos (the `shared_data` fixture skips, saying why, where the folder is absent)."""
    return shared_data


def _held_back(split: str, data: Path) -> list[Path]:
    return [data / rel for rel in json.loads((WEIGHTS_DIR / f"{split}.split.json").read_text())["test"]]


def _respond(engine: LocalPipeline, path: Path, required: EquipmentType, min_confidence: float = 50) -> dict:  # type: ignore[type-arg]
    image = cv2.imread(str(path))
    assert image is not None, path
    attributes = SummarizationAttributes(MinConfidence=min_confidence, RequiredEquipmentTypes=[required])
    return json.loads(engine.detect(image, attributes).model_dump_json())


def test_masked_close_ups_get_a_person_with_face_and_face_cover_over_it(engine: LocalPipeline, data: Path) -> None:
    # GIVEN tight masked-face crops (the face fills the frame, no body in view)
    close_ups = [
        p
        for p in _held_back("face_cover", data)
        if p.parent.name == "with_mask" and min(cv2.imread(str(p)).shape[:2]) >= 128
    ][:12]
    assert len(close_ups) >= 10
    covered = 0
    for path in close_ups:
        response = _respond(engine, path, EquipmentType.FACE_COVER)
        faces = [(part, person) for person in response["Persons"] for part in person["BodyParts"] if part["Name"] == "FACE"]
        if not faces:
            continue
        part, person = max(faces, key=lambda fp: fp[0]["Confidence"])
        masks = se._equipment(part, "FACE_COVER")
        if masks:
            # THEN the mask box lies on the face, in the lower part of the frame's person
            (box, _conf) = masks[0]
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            assert 0.0 <= centre[0] <= 1.0 and 0.0 <= centre[1] <= 1.0
            assert person["Id"] in response["Summary"]["PersonsWithRequiredEquipment"] + response["Summary"][
                "PersonsIndeterminate"
            ]
            covered += 1
    assert covered >= 0.8 * len(close_ups), f"only {covered} of {len(close_ups)} masked close-ups got FACE + FACE_COVER"


def test_gloved_hands_get_hand_cover_and_bare_hands_mostly_do_not(engine: LocalPipeline, data: Path) -> None:
    images = [p for p in _held_back("hand_cover", data) if "/images/" in p.as_posix()][:30]
    counts = se.Counts()
    for path in images:
        labels = se.read_yolo_boxes(path.parent.parent / "labels" / f"{path.stem}.txt", se.GLOVE_NAMES)
        se.score_hands(_respond(engine, path, EquipmentType.HAND_COVER), labels, counts)
    gloved, bare = counts.ratio(se.GLOVED_COVERED), counts.ratio(se.BARE_GLOVED)
    assert gloved is not None and gloved >= 0.6, f"gloved hands covered: {gloved}"
    assert bare is None or bare <= 0.25, f"bare hands gloved: {bare}"


def _side_by_side(labels: list[se.LabelledBox]) -> list[tuple[se.LabelledBox, se.LabelledBox]]:
    heads = [lab for lab in labels if lab.cls in ("helmet", "no_helmet")]
    pairs = []
    for i, a in enumerate(heads):
        for b in heads[i + 1 :]:
            wa = a.xyxy[2] - a.xyxy[0]
            gap = max(b.xyxy[0] - a.xyxy[2], a.xyxy[0] - b.xyxy[2])
            same_row = abs((a.xyxy[1] + a.xyxy[3]) / 2 - (b.xyxy[1] + b.xyxy[3]) / 2) < 0.5 * wa
            if 0 <= gap < 1.5 * wa and same_row and wa > 0.03:
                pairs.append((a, b))
    return pairs


def test_two_workers_side_by_side_each_get_their_own_head_verdict(engine: LocalPipeline, data: Path) -> None:
    # GIVEN the labelled scene photos' pairs of neighbouring heads (head gap under 1.5 head widths, same row)
    scored = right = 0
    for label in sorted((data / "scenes" / "labels").glob("*.txt")):
        labels = se.read_yolo_boxes(label, se.HELMET_VEST_NAMES)
        pairs = _side_by_side(labels)
        if not pairs:
            continue
        response = _respond(engine, data / "scenes" / "images" / f"{label.stem}.jpg", EquipmentType.HEAD_COVER)
        for a, b in pairs:
            counts = se.Counts()
            se.score_heads(response, [a, b], counts, 50.0)
            scored += 1
            right += counts.n[se.HEAD_RIGHT] == 2  # both neighbours right, each with a person of their own
    assert scored >= 5
    assert right >= 0.8 * scored, f"{right} of {scored} neighbouring pairs both right"


def test_a_blank_frame_has_no_persons(engine: LocalPipeline) -> None:
    frame = np.full((720, 1280, 3), 128, np.uint8)
    assert engine.detect(frame).Persons == []


# TRAIN-side photos (the part detector's validation slice) where v2.1 made a person of a "hand" box lying on a
# helmet or a torso beside confidently found workers (docs/local-engine.md "Engine v2.2").
FALSE_LONE_HANDS = ("panly_000112.jpg", "panly_000460.jpg", "panly_000867.jpg")


def _hand_only_persons(engine: LocalPipeline, data: Path) -> int:
    count = 0
    for name in FALSE_LONE_HANDS:
        response = _respond(engine, data / "helmet_vest" / "images" / name, EquipmentType.HEAD_COVER)
        for person in response["Persons"]:
            parts = {part["Name"] for part in person["BodyParts"]}
            count += bool(parts) and parts <= {"LEFT_HAND", "RIGHT_HAND"}
    return count


def test_a_scene_with_confident_workers_gets_no_person_made_of_a_lone_hand(
    engine: LocalPipeline, model_dir: Path, data: Path
) -> None:
    # GIVEN site photos whose part head reads a helmet or a torso as a big hand that no person box holds
    # WHEN the engine answers with the scene rule off (v2.1) and on (the default)
    weights = os.environ.get("PPE_WEIGHTS_DIR")
    v21 = LocalPipeline(
        model_dir,
        weights_dir=Path(weights) if weights else None,
        settings=replace(engine.settings, scene_person_confidence=0.0),
    )
    # THEN only v2.1 returns persons made of such hands alone
    assert _hand_only_persons(v21, data) >= 2
    assert _hand_only_persons(engine, data) == 0
