"""Measure the face detector (services/detector/local_engine/faces.py) on one side of the shared data.

    python -m model_workshop.face_eval                 # train side: recall, false faces, ms, calibration table
    python -m model_workshop.face_eval --side test     # the held-back side, once, after tuning

Close-ups: masks/ images (face_cover.split.json); an image counts as found when a box scores >= the threshold.
Scenes: helmet_vest/ images (head_cover.split.json). They box heads, not faces, and a helmet box often stops
at the brow, so a face counts as "at a head" when its centre lies in the head box widened by a quarter of its
width each side and lengthened by its height downwards. A face box elsewhere counts as false. Head recall is a
lower bound: heads seen from behind have no face. Calibration pools both sets: on masks every image holds a
face, so its best box counts as real and its other boxes are left out (web photos hold several people); on
helmet_vest the head-region rule decides.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from model_workshop.eval_data import held_back, read_yolo
from model_workshop.settings import shared_data_dir
from services.detector.local_engine.faces import DEFAULT_CANVASES, DEFAULT_MIN_SCORE, MODEL_NAME, FaceDetector
from services.detector.local_engine.model_files import default_model_dir, require_models

THRESHOLDS = (0.5, 0.6, 0.7, 0.8)
HEAD_BINS = ((0, 32), (32, 64), (64, 128), (128, 100_000))
CALIBRATION_EDGES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)


def at_heads(boxes: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """[N faces, M heads] True where the face centre lies in the head's face region (see the module doc)."""
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    hw, hh = heads[:, 2] - heads[:, 0], heads[:, 3] - heads[:, 1]
    x1, x2 = heads[:, 0] - hw / 4, heads[:, 2] + hw / 4
    y1, y2 = heads[:, 1] - hh / 4, heads[:, 3] + hh
    return (
        (cx[:, None] >= x1[None])
        & (cx[:, None] <= x2[None])
        & (cy[:, None] >= y1[None])
        & (cy[:, None] <= y2[None])
    )


def _split(name: str, data: Path, side: str) -> list[Path]:
    paths = held_back(name, data, side=side)
    if paths is None:
        raise SystemExit(f"{name}.split.json not found beside the weights")
    return paths


def run(detector: FaceDetector, data: Path, side: str, limit: int | None, min_score: float) -> int:
    masks, scenes = _split("face_cover", data, side), _split("head_cover", data, side)
    if limit:  # spread over the sorted lists: both classes of masks
        masks, scenes = masks[:: max(len(masks) // limit, 1)], scenes[:: max(len(scenes) // limit, 1)]
    times: list[float] = []
    calib: list[tuple[float, bool]] = []

    best: dict[str, list[float]] = {"with_mask": [], "without_mask": []}
    for path in masks:
        image = cv2.imread(str(path))
        start = time.perf_counter()
        faces = detector.detect(image)
        times.append(time.perf_counter() - start)
        best[path.parent.name].append(float(faces.scores.max(initial=0.0)))
        if len(faces):
            calib.append((float(faces.scores[0]), True))

    found: list[bool] = []
    sizes: list[float] = []
    false_at: dict[float, int] = dict.fromkeys(THRESHOLDS, 0)
    for path in scenes:
        image = cv2.imread(str(path))
        h, w = image.shape[:2]
        labels = read_yolo(path.parent.parent / "labels" / f"{path.stem}.txt", w, h)
        heads = np.array([lab.box for lab in labels if lab.cls in ("helmet", "no_helmet")]).reshape(-1, 4)
        start = time.perf_counter()
        faces = detector.detect(image)
        times.append(time.perf_counter() - start)
        hits = at_heads(faces.boxes, heads)
        real = hits.any(axis=1)
        calib.extend(zip(faces.scores.tolist(), real.tolist(), strict=True))
        for t in THRESHOLDS:
            false_at[t] += int((~real & (faces.scores >= t)).sum())
        keep = faces.scores >= min_score
        found.extend(hits[keep].any(axis=0).tolist())
        sizes.extend(np.maximum(heads[:, 2] - heads[:, 0], heads[:, 3] - heads[:, 1]).tolist())

    print(f"side={side} model={MODEL_NAME} canvases={detector.canvases} detector run at score >= {detector.min_score}")
    print(f"close-ups (masks, {len(masks)} images): share with a face box scoring >= t")
    for key, scores in best.items():
        arr = np.array(scores)
        row = "  ".join(f"t{t:.1f} {(arr >= t).mean():.3f}" for t in THRESHOLDS)
        print(f"  {key:<13} n={arr.size:<5} {row}")
    print(f"scenes (helmet_vest, {len(scenes)} images): false faces per image")
    print("  " + "  ".join(f"t{t:.1f} {false_at[t] / max(len(scenes), 1):.3f}" for t in THRESHOLDS))
    found_arr, size_arr = np.array(found, dtype=bool), np.array(sizes)
    print(f"  heads with a face box (score >= {min_score}; lower bound, backs of heads count as missed):")
    for lo, hi in HEAD_BINS:
        sel = (size_arr >= lo) & (size_arr < hi)
        share = found_arr[sel].mean() if sel.any() else float("nan")
        print(f"    head {lo}-{hi if hi < 100_000 else 'max'} px: {share:.3f} (n={int(sel.sum())})")
    ms = np.array(times) * 1000
    print(f"ms per image (detect only, 1 thread): median {np.median(ms):.1f}, p90 {np.percentile(ms, 90):.1f}")
    print("calibration (score bin -> share of boxes that are real faces):")
    scores_arr = np.array([s for s, _ in calib])
    real_arr = np.array([r for _, r in calib], dtype=bool)
    for lo, hi in zip(CALIBRATION_EDGES[:-1], CALIBRATION_EDGES[1:], strict=True):
        sel = (scores_arr >= lo) & (scores_arr < hi)
        share = real_arr[sel].mean() if sel.any() else float("nan")
        print(f"  [{lo:.1f}, {min(hi, 1.0):.1f}) n={int(sel.sum()):<5} real {share * 100:5.1f}%")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="face_eval", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--side", choices=["train", "test"], default="train")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--canvases", type=float, nargs="+", default=list(DEFAULT_CANVASES))
    parser.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE)
    parser.add_argument("--calibration-min-score", type=float, default=0.3, help="run threshold for the table")
    parser.add_argument("--limit", type=int, default=None, help="about N images of each set, spread out (quick look)")
    args = parser.parse_args(argv)
    model = require_models(args.model_dir or default_model_dir(), [MODEL_NAME])[MODEL_NAME]
    detector = FaceDetector(model, threads=1, min_score=args.calibration_min_score, canvases=tuple(args.canvases))
    return run(detector, shared_data_dir(), args.side, args.limit, args.min_score)


if __name__ == "__main__":
    sys.exit(main())
