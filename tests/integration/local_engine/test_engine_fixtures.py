"""The real engine on the committed fixture photos (tests/fixtures): runs on every clone, with or without
../shared/data. A masked close-up gets a FACE with a covering FACE_COVER, a bare one a FACE without; a gloved hand
gets a HAND_COVER box on it, a bare hand none. Scored from the Rekognition JSON, as a user reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import pytest

from model_workshop import strict_eval as se
from services.detector.local_engine.pipeline import LocalPipeline
from shared.rekognition import EquipmentType, SummarizationAttributes
from tests.support.fixture_photos import bare_close_ups, glove_label, hand_photos, masked_close_ups

pytestmark = pytest.mark.models


def _respond(engine: LocalPipeline, path: Path, required: EquipmentType) -> dict[str, Any]:
    image = cv2.imread(str(path))
    assert image is not None, path
    attributes = SummarizationAttributes(MinConfidence=50, RequiredEquipmentTypes=[required])
    return json.loads(engine.detect(image, attributes).model_dump_json())


def _best_face(response: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    faces = [(part, person) for person in response["Persons"] for part in person["BodyParts"] if part["Name"] == "FACE"]
    return max(faces, key=lambda fp: fp[0]["Confidence"], default=None)


@pytest.mark.parametrize("photo", masked_close_ups(), ids=lambda p: p.stem)
def test_a_masked_close_up_gets_face_and_a_covering_face_cover(engine: LocalPipeline, photo: Path) -> None:
    # GIVEN a close-up of a face wearing a mask; WHEN analysed with FACE_COVER required
    response = _respond(engine, photo, EquipmentType.FACE_COVER)
    # THEN the most confident FACE carries a FACE_COVER that covers it, and its person is compliant
    best = _best_face(response)
    assert best is not None, f"no FACE in {photo.name}: {response}"
    face, person = best
    covers = [d for d in face["EquipmentDetections"] if d["Type"] == "FACE_COVER" and d["CoversBodyPart"]["Value"]]
    assert covers and covers[0]["Confidence"] >= 50, face
    assert person["Id"] in response["Summary"]["PersonsWithRequiredEquipment"]


@pytest.mark.parametrize("photo", bare_close_ups(), ids=lambda p: p.stem)
def test_a_bare_close_up_gets_face_without_face_cover(engine: LocalPipeline, photo: Path) -> None:
    response = _respond(engine, photo, EquipmentType.FACE_COVER)
    best = _best_face(response)
    assert best is not None, f"no FACE in {photo.name}: {response}"
    face, person = best
    assert [d for d in face["EquipmentDetections"] if d["Type"] == "FACE_COVER"] == [], face
    assert person["Id"] in response["Summary"]["PersonsWithoutRequiredEquipment"]


@pytest.mark.parametrize("photo", hand_photos("gloved_hand"), ids=lambda p: p.stem)
def test_a_gloved_hand_gets_a_hand_cover_box_on_it(engine: LocalPipeline, photo: Path) -> None:
    # GIVEN a photo with its gloved hands boxed (YOLO labels); WHEN analysed with HAND_COVER required
    counts = se.Counts()
    se.score_hands(_respond(engine, photo, EquipmentType.HAND_COVER), se.read_yolo_boxes(glove_label(photo),
                                                                                         se.GLOVE_NAMES), counts)
    # THEN every labelled gloved hand has a HAND_COVER box overlapping it (IoU >= 0.2)
    assert counts.ratio(se.GLOVED_COVERED) == 1.0, counts


@pytest.mark.parametrize("photo", hand_photos("bare_hand"), ids=lambda p: p.stem)
def test_a_bare_hand_gets_no_hand_cover(engine: LocalPipeline, photo: Path) -> None:
    response = _respond(engine, photo, EquipmentType.HAND_COVER)
    hands = [part for person in response["Persons"] for part in person["BodyParts"]
             if part["Name"] in ("LEFT_HAND", "RIGHT_HAND")]
    assert hands, f"no hand found in {photo.name}"
    assert [d for part in hands for d in part["EquipmentDetections"] if d["Type"] == "HAND_COVER"] == []
