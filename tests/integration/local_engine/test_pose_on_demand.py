"""Engine v2.3: MoveNet runs only for person boxes whose keypoints can change the response
(`EngineSettings.pose_when_needed`), and a torso asked for afterwards gets its pose then. Counted through
`LocalPipeline.poses_run`, compared with the same engine posing every person box, on committed fixture photos."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from services.detector.local_engine.pipeline import EngineSettings, LocalPipeline
from shared.rekognition import EquipmentType, SummarizationAttributes

pytestmark = pytest.mark.models

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "masks"
# Masked workers whose parts the part and face detectors find; no box shares a hand or lies in another.
DECIDED_BY_PARTS = FIXTURES / "scene_aizoo_demo2.jpg"
# Six persons close together: hands within reach of several boxes, boxes inside boxes.
CROWD = FIXTURES / "scene_fmd_pic2.jpg"
ATTRIBUTES = SummarizationAttributes(MinConfidence=80, RequiredEquipmentTypes=[EquipmentType.FACE_COVER])


@pytest.fixture(scope="module")
def engines(engine: LocalPipeline, model_dir: Path) -> tuple[LocalPipeline, LocalPipeline]:
    """The session's engine (pose where needed) and one that poses every person box, otherwise alike."""
    every_box = LocalPipeline(model_dir, weights_dir=None, settings=replace(engine.settings, pose_when_needed=False))
    assert engine.settings.pose_when_needed and engine.settings == EngineSettings()
    return engine, every_box


def _image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


Run = tuple[str, int, list[object]]  # the response as JSON (no model version), MoveNet runs, torsos


def _run(engine: LocalPipeline, image: np.ndarray, torsos: bool) -> Run:
    before = engine.poses_run
    if torsos:
        response, regions = engine.detect_with_torsos(image, ATTRIBUTES)
    else:
        response, regions = engine.detect(image, ATTRIBUTES), []
    return response.model_dump_json(exclude={"ProtectiveEquipmentModelVersion"}), engine.poses_run - before, regions


def _both(engines: tuple[LocalPipeline, LocalPipeline], photo: Path, *, torsos: bool = False) -> tuple[Run, Run]:
    """The same photo through the engine that poses where needed, then through the one posing every box."""
    image = _image(photo)
    return _run(engines[0], image, torsos), _run(engines[1], image, torsos)


def test_persons_whose_parts_decide_get_no_pose_and_the_same_answer(
    engines: tuple[LocalPipeline, LocalPipeline],
) -> None:
    # WHEN a frame whose parts the detectors decide is analysed without a torso request
    (answer, poses, _), (reference, reference_poses, _) = _both(engines, DECIDED_BY_PARTS)
    # THEN no person box was posed (every box got one before), and the response is the same
    assert reference_poses >= 1
    assert poses == 0
    assert answer == reference


def test_a_torso_request_poses_the_returned_persons_and_gets_the_same_torsos(
    engines: tuple[LocalPipeline, LocalPipeline],
) -> None:
    # WHEN the fused call asks for each returned person's torso (the vest model's region)
    (answer, poses, torsos), (reference, reference_poses, reference_torsos) = _both(
        engines, DECIDED_BY_PARTS, torsos=True
    )
    # THEN the returned persons were posed then, and the torsos are the ones every-box posing gives
    assert 0 < poses <= reference_poses
    assert poses <= len(torsos)  # a person made from a face has no box to pose
    assert (answer, torsos) == (reference, reference_torsos)


def test_a_crowd_keeps_the_pose_where_boxes_and_hands_are_ambiguous(
    engines: tuple[LocalPipeline, LocalPipeline],
) -> None:
    # WHEN six persons close together are analysed
    (answer, poses, _), (reference, reference_poses, _) = _both(engines, CROWD)
    # THEN the boxes nearly inside others and those sharing hands were posed, with the same response
    assert 4 <= poses <= reference_poses
    assert answer == reference
