"""Fit the engine's confidence curves on a slice held apart from training; write weights/calibration.json.

    python -m model_workshop.calibrate                  # ../shared/data, the part detector's validation slice
    python -m model_workshop.calibrate --report-only    # print the reliability tables of the shipped file

Each curve maps a raw score to the share of answers at that score that were right (a logistic fit on the score's
logit by default, `--method isotonic` for the step fit used until session 6; both never decrease), on the
validation slice of the TRAIN side that the part detector did not train on:
- head_attached / hand_attached: the part head's box given to a person box: right when it overlaps a labelled
  head / hand with IoU >= 0.2 (a weak box where a person box expects a head is right more often than a lone one);
- head_cover / hand_cover: the crop classifier's P(covered) on detected parts matched to a label: right when
  the label says covered (the confidence of the HEAD_COVER / HAND_COVER detection).
- head_lone / hand_lone: a part that made a person of its own (no person box held it), right as above. Which
  parts may do so is still decided by the part head's own curve (weights/part_head.json, >= 50); its reliability
  on these parts is printed beside (with the zoomed second look at small heads it was too confident).
The engine reads the file (services/detector/local_engine/calibration.py); nothing here runs in a service.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from model_workshop.parts_detector.data import default_sources, load_samples, split_validation
from model_workshop.settings import shared_data_dir
from services.detector.local_engine.calibration import CALIBRATION_FILE, Calibration
from services.detector.local_engine.model_files import WEIGHTS_DIR
from services.detector.local_engine.parts import calibrate as calibrate_part
from services.detector.local_engine.pipeline import EngineSettings, LocalPipeline
from shared.boxes import iou
from shared.rekognition import BodyPartName

MATCH_IOU = 0.2
GRID = np.round(np.linspace(0.0, 1.0, 21), 3)  # where each fitted curve is sampled for the file
FITTED = ("head_attached", "hand_attached", "head_lone", "hand_lone", "head_cover", "hand_cover")  # written to the file


def fit_curve(scores: np.ndarray, right: np.ndarray, method: str = "platt") -> tuple[list[float], list[float]]:
    """Fit of P(right | score), sampled on GRID, as 0..100.

    "platt": a logistic curve on the score's logit (two parameters: steady on a slice of a few hundred answers);
    "isotonic": the step fit used until session 6 (follows every 30-answer band, noise included)."""
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        model.fit(scores, right.astype(np.float64))
        ys = np.clip(model.predict(GRID), 0.0, 1.0)
    else:
        from sklearn.linear_model import LogisticRegression

        def logit(v: np.ndarray) -> np.ndarray:
            v = np.clip(v, 1e-3, 1 - 1e-3)
            return np.log(v / (1 - v)).reshape(-1, 1)

        model = LogisticRegression(C=100.0).fit(logit(scores), right.astype(int))
        ys = model.predict_proba(logit(GRID))[:, 1]
        if model.coef_[0, 0] <= 0:  # a curve that falls with the score says nothing: flat at the share right
            ys = np.full(len(GRID), right.mean())
    ys = np.maximum.accumulate(ys) * 100.0
    return [float(x) for x in GRID], [round(float(y), 2) for y in ys]


def reliability(scores: np.ndarray, right: np.ndarray, confidence: np.ndarray | None = None) -> list[str]:
    """Per score band: count, share right, and (when given) the mean calibrated confidence."""
    rows = ["| score | n | share right | mean confidence |", "|---|---|---|---|"]
    edges = [0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.01]
    for lo, hi in zip(edges, edges[1:], strict=False):
        band = (scores >= lo) & (scores < hi)
        if not band.any():
            continue
        mean = f"{confidence[band].mean():.1f}" if confidence is not None else ""
        rows.append(f"| {lo:.2f}-{min(hi, 1.0):.2f} | {int(band.sum())} | {right[band].mean():.3f} | {mean} |")
    return rows


def _labels_px(sample_boxes: np.ndarray, w: int, h: int) -> np.ndarray:
    return sample_boxes * np.array([w, h, w, h], np.float32)


def collect(engine: LocalPipeline, samples: list) -> dict[str, tuple[list[float], list[bool]]]:
    """Raw scores and whether each answer was right, per curve."""
    out: dict[str, tuple[list[float], list[bool]]] = {
        k: ([], [])
        for k in ("head_lone", "hand_lone", "head_attached", "hand_attached", "pose_head", "head_cover", "hand_cover")
    }

    def add(kind: str, score: float, right: bool) -> None:
        out[kind][0].append(score)
        out[kind][1].append(right)

    for sample in tqdm(samples, desc="calibration slice", unit="img", mininterval=10):
        image = cv2.imread(str(sample.image))
        if image is None or min(image.shape[:2]) < 64:
            continue
        h, w = image.shape[:2]
        labels = _labels_px(sample.boxes, w, h)
        for person in engine.analyse(image):
            for result in person.parts:
                part = result.part
                kind = "head" if part.name is BodyPartName.HEAD else "hand" if part.name in (
                    BodyPartName.LEFT_HAND,
                    BodyPartName.RIGHT_HAND,
                ) else None
                if kind is None:
                    continue
                wanted = 0 if kind == "head" else 1  # PARTS index of the label
                if wanted not in sample.parts_labelled:
                    continue  # this source does not box that part: nothing to score it against
                overlaps = [
                    (iou(tuple(part.box), tuple(lab)), int(cov))
                    for lab, p, cov in zip(labels, sample.part, sample.covered, strict=True)
                    if p == wanted
                ]
                best, covered = max(overlaps, default=(0.0, 0))
                hit = best >= MATCH_IOU
                sources = {"detector": f"{kind}_attached", "lone": f"{kind}_lone", "pose": f"pose_{kind}"}
                source = sources.get(result.source, "")
                if source in out:
                    add(source, result.part.score, hit)  # uncalibrated engine: the score is the raw one
                if hit and result.p_covered is not None:
                    add(f"{kind}_cover", result.p_covered, bool(covered))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=None, help="shared data root (default ../shared/data)")
    parser.add_argument("--val-fraction", type=float, default=0.15, help="the part detector's validation share")
    parser.add_argument("--seed", type=int, default=0, help="the part detector's split seed")
    parser.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--limit", type=int, default=0, help="use at most N images per source (0 = all)")
    parser.add_argument("--report-only", action="store_true", help="score the shipped file, write nothing")
    parser.add_argument("--method", choices=["platt", "isotonic"], default="platt", help="curve fitted (see fit_curve)")
    args = parser.parse_args(argv)
    data = args.data or shared_data_dir()
    samples = [s for source in default_sources(data) for s in load_samples(source, data, "train")]
    _train, val = split_validation(samples, args.val_fraction, args.seed)
    if args.limit:
        val = [s for name in sorted({s.source for s in val}) for s in [v for v in val if v.source == name][: args.limit]]
    print(f"calibration slice: {len(val)} images (validation slice of the TRAIN side, seed {args.seed})")
    raw_engine = LocalPipeline(settings=replace(EngineSettings(), calibrated=False), weights_dir=args.weights_dir)
    collected = collect(raw_engine, val)
    path = args.weights_dir / CALIBRATION_FILE
    shipped = Calibration.load(path) if path.is_file() else None
    curves: dict[str, dict[str, list[float]]] = {}
    for kind, (scores_l, right_l) in collected.items():
        scores, right = np.asarray(scores_l, np.float64), np.asarray(right_l, bool)
        if len(scores) < 20:
            print(f"\n{kind}: only {len(scores)} answers, no curve fitted")
            continue
        if kind.endswith("_lone"):  # the part head's own curve, which lone parts used before session 6
            shipped_curve = raw_engine._parts.calibration if raw_engine._parts else None
            own = calibrate_part(kind.split("_")[0].upper(), scores.astype(np.float32), shipped_curve)
            print(f"\n### {kind}: the part head's own curve ({len(scores)} answers)\n")
            print("\n".join(reliability(scores, right, own)))
        if kind not in FITTED:
            continue
        xs, ys = fit_curve(scores, right, args.method)
        curves[kind] = {"x": xs, "y": ys}
        curve = shipped.curves.get(kind) if args.report_only and shipped else None
        mapped = np.array([np.interp(v, xs, ys) for v in scores]) if curve is None else np.array([curve(v) for v in scores])
        print(f"\n### {kind} ({len(scores)} answers, {right.mean():.3f} right)\n")
        print("\n".join(reliability(scores, right, mapped)))
    if args.report_only:
        return 0
    payload = {
        "comment": f"Written by `python -m model_workshop.calibrate`; raw score -> confidence 0..100 "
        f"({args.method} fit).",
        "version": f"{dt.datetime.now(dt.UTC):%Y%m%d}.{len(val)}",
        "slice": f"part detector validation slice of the TRAIN side: {len(val)} images, fraction {args.val_fraction}, "
        f"seed {args.seed}",
        "match_iou": MATCH_IOU,
        "curves": curves,
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
