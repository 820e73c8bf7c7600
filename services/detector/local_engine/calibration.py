"""Confidence calibration: raw model scores -> Rekognition-style confidences (0..100) that mean what they say.

A confidence c is meant as "about c % of such answers are right", measured on a slice of the train side held
apart from training (`python -m model_workshop.calibrate` fits the curves and writes weights/calibration.json;
docs/local-engine.md, "Calibration", shows them). The engine only reads the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CALIBRATION_FILE = "calibration.json"


class CalibrationFileError(ValueError):
    """The calibration file is malformed (not monotone, out of range, or missing a curve)."""


@dataclass(frozen=True)
class Curve:
    """Piecewise-linear, non-decreasing map from a raw 0..1 score to a 0..100 confidence."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.xs) != len(self.ys) or len(self.xs) < 2:
            raise CalibrationFileError("a curve needs at least two points and as many x as y values")
        if any(b < a for a, b in zip(self.xs, self.xs[1:], strict=False)) or any(
            b < a for a, b in zip(self.ys, self.ys[1:], strict=False)
        ):
            raise CalibrationFileError("a calibration curve must be non-decreasing")
        if not all(0.0 <= y <= 100.0 for y in self.ys):
            raise CalibrationFileError("confidences must lie in 0..100")

    def __call__(self, score: float) -> float:
        return float(np.interp(score, self.xs, self.ys))


@dataclass(frozen=True)
class Calibration:
    curves: dict[str, Curve]
    version: str

    @staticmethod
    def load(path: Path) -> Calibration:
        try:
            raw = json.loads(path.read_text())
            curves = {name: Curve(tuple(c["x"]), tuple(c["y"])) for name, c in raw["curves"].items()}
        except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise CalibrationFileError(f"{path}: {exc}") from exc
        return Calibration(curves=curves, version=str(raw.get("version", "unversioned")))

    def require(self, *names: str) -> None:
        missing = [n for n in names if n not in self.curves]
        if missing:
            raise CalibrationFileError(
                f"calibration lacks curves {missing}; rerun `python -m model_workshop.calibrate`"
            )

    def __getitem__(self, name: str) -> Curve:
        return self.curves[name]
