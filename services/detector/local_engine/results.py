"""What the local engine finds in one image, before it becomes a Rekognition response.

`LocalPipeline.analyse` returns `PersonResult`s with their `PartResult`s; `respond` (response.py) turns them into
the response. `person_confidence` is the NanoDet person score's calibrated confidence when no calibration
file curve is shipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from services.detector.local_engine.bodyparts import PartBox


@dataclass
class PartResult:
    part: PartBox
    p_covered: float | None  # P(equipment covers the part), None when not judged
    # "detector": found by a detector on a person box; "lone": a detected part that made its own person;
    # "face": a HEAD derived from a detected face; "pose": placed by keypoints (the fallback)
    source: str = "pose"


@dataclass
class PersonResult:
    box: np.ndarray  # x1, y1, x2, y2 pixels
    score: float  # 0..1
    keypoints: np.ndarray  # [17, 3] x, y, score in pixels (all zero for a person made from parts)
    parts: list[PartResult] = field(default_factory=list)
    evidence: float = 0.0  # 0..100: confidence that this is a person from its detected parts (calibrated)
    # True for a person box whose pose was not run (its keypoints change nothing in the response: see
    # `PartFinding._pose_needed`); its keypoints are all zero until a torso asks for them.
    pose_skipped: bool = False


# NanoDet person score -> share of returned persons that are real persons, on the helmet_vest TRAIN split at
# input side 576 (5029 boxes; docs/local-engine.md "Person confidence"). Share holding a labelled head/torso
# (a lower bound): 0.25-0.3: 0.37, 0.3-0.4: 0.54, 0.4-0.5: 0.71, 0.5-0.6: 0.82, 0.6-0.7: 0.93, >= 0.7: 0.97;
# an audit of 48 unlabelled low-score boxes found 0.375 of them to be real (unlabelled) persons, giving
# about 0.61, 0.71, 0.82, 0.89, 0.95, 0.98. The table takes the lower of that estimate and the earlier one.
PERSON_CALIBRATION = ((0.25, 53.0), (0.35, 60.0), (0.45, 76.0), (0.55, 89.0), (0.7, 96.0), (1.0, 98.5))


def person_confidence(score: float) -> float:
    """NanoDet person score (0..1) -> calibrated 0..100 (piecewise linear through the measured points)."""
    xs, ys = zip(*PERSON_CALIBRATION, strict=True)
    return float(np.interp(score, xs, ys, left=0.0, right=ys[-1]))
