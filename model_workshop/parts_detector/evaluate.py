"""Measure the part detector end to end (image -> nanodet-parts-int8 graph -> decode), and the engine's
pose-based HEAD / hand boxes beside it.

    python -m model_workshop.parts_detector.evaluate --data ../shared/data --side val    # choosing / tuning
    python -m model_workshop.parts_detector.evaluate --data ../shared/data --side test   # held back: report only
    python -m model_workshop.parts_detector.evaluate --data ../shared/data --side test --baseline

`val` is the validation slice of the train side recorded in part_head.data.csv; `test` is the held-back side of
the split files. The combined graph is built from --weights (part_head.onnx) onto the store's nanodet-int8.onnx.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from model_workshop.parts_detector.data import SPLITS_DIR, Sample, default_sources, load_samples
from model_workshop.parts_detector.graft import build
from model_workshop.parts_detector.metrics import PartScore, part_scores
from services.detector.local_engine.model_files import default_model_dir
from services.detector.local_engine.parts import PARTS, PartBoxes, PartDetector
from services.detector.local_engine.persons import letterbox, session


def samples_for(data: Path, side: str, weights: Path) -> list[Sample]:
    if side == "test":
        return [s for src in default_sources(data) for s in load_samples(src, data, "test")]
    with (weights / "part_head.data.csv").open() as fh:
        val = {row["file"] for row in csv.DictReader(fh) if row["side"] == "val"}
    return [s for src in default_sources(data) for s in load_samples(src, data, "train")
            if str(s.image.relative_to(data)) in val]


def score(
    samples: list[Sample],
    predict: dict[str, PartBoxes],
    sizes: dict[str, tuple[int, int]],
    thresholds: dict[str, float],
    cover_at: dict[str, float] | None = None,
) -> dict[str, PartScore]:
    scores = part_scores()
    for s in samples:
        pred = predict[str(s.image)]
        h, w = sizes[str(s.image)]
        boxes = s.boxes * np.array([w, h, w, h], np.float32)
        for p, name in enumerate(PARTS):
            if p in s.parts_labelled:
                sel = s.part == p
                scores[name].add(pred.of(name), boxes[sel], s.covered[sel], min_score=thresholds[name],
                                 cover_at=(cover_at or {}).get(name, 0.5))
    return scores


def baseline_parts(samples: list[Sample], model_dir: Path, threads: int) -> dict[str, PartBoxes]:
    """The current engine's HEAD and hand boxes (pose on person crops), with HEAD_COVER / HAND_COVER verdicts."""
    from services.detector.local_engine.pipeline import LocalPipeline
    from shared.rekognition import BodyPartName, EquipmentType

    engine = LocalPipeline(model_dir, intra_op_threads=threads)
    names = {BodyPartName.HEAD: "HEAD", BodyPartName.LEFT_HAND: "HAND", BodyPartName.RIGHT_HAND: "HAND"}
    cover = {"HEAD": EquipmentType.HEAD_COVER, "HAND": EquipmentType.HAND_COVER}
    out: dict[str, PartBoxes] = {}
    for s in samples:
        image = cv2.imread(str(s.image))
        h, w = image.shape[:2]
        analysed = engine.analyse(image)
        response = engine.respond(analysed, w, h)
        boxes, labels, covered = [], [], []
        for person, rek in zip(analysed, response.Persons, strict=True):
            for part, bp in zip(person.parts, rek.BodyParts, strict=False):
                if part.part.name not in names:
                    continue
                label = names[part.part.name]
                boxes.append(part.part.box)
                labels.append(label)
                covered.append(float(any(d.Type == cover[label] and d.CoversBodyPart.Value
                                         for d in bp.EquipmentDetections)))
        n = len(boxes)
        out[str(s.image)] = PartBoxes(np.asarray(boxes, np.float32).reshape(-1, 4), np.ones(n, np.float32),
                                      np.asarray(labels, "<U4"), np.asarray(covered, np.float32),
                                      np.full(n, 100.0, np.float32))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_workshop.parts_detector.evaluate", description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--side", choices=["val", "test"], required=True)
    parser.add_argument("--weights", type=Path, default=SPLITS_DIR, help="folder with part_head.onnx / .json")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--baseline", action="store_true", help="also score the current engine's pose parts")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sweep", action="store_true", help="print a score / cover threshold grid (use on val only)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    data = args.data.resolve()
    model_dir = args.model_dir or default_model_dir()
    samples = samples_for(data, args.side, args.weights)
    print(f"{args.side}: {len(samples)} images")
    with tempfile.TemporaryDirectory() as tmp:
        combined = Path(tmp) / "nanodet-parts-int8.onnx"
        build(model_dir / "nanodet-int8.onnx", args.weights / "part_head.onnx", combined)
        detector = PartDetector(combined, config_path=args.weights / "part_head.json", threads=args.threads)
        plain = session(model_dir / "nanodet-int8.onnx", args.threads)
        predictions: dict[str, PartBoxes] = {}
        sizes: dict[str, tuple[int, int]] = {}
        ms_parts, ms_plain = [], []
        for s in samples:
            image = cv2.imread(str(s.image))
            sizes[str(s.image)] = image.shape[:2]
            # both timings include the letterbox, so their difference is what the part head adds
            t0 = time.perf_counter()
            outputs, tensor_hw, scale = detector.run(image)
            predictions[str(s.image)] = detector.decode(outputs, tensor_hw, scale, image.shape[:2], min_score=0.05)
            t1 = time.perf_counter()
            tensor, _ = letterbox(image, detector.input_side, detector.enlarge_to)
            plain.run(None, {plain.get_inputs()[0].name: tensor})
            t2 = time.perf_counter()
            ms_parts.append((t1 - t0) * 1000)
            ms_plain.append((t2 - t1) * 1000)
    if args.sweep:
        for t in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45):
            for c in (0.5, 0.7, 0.8, 0.9):
                r = {n: x.summary() for n, x in score(samples, predictions, sizes, dict.fromkeys(PARTS, t),
                                                        dict.fromkeys(PARTS, c)).items()}
                print(f"score {t} cover {c} " + " ".join(
                    f"{n} R20 {r[n]['recall_iou20']:.3f} R50 {r[n]['recall_iou50']:.3f} P {r[n]['precision_iou20']:.3f}"
                    f" false/img {r[n]['false_per_image']:.2f} covered-right {r[n]['covered_right_verdict']:.3f}"
                    f" bare-as-covered {r[n]['bare_with_covered_box']:.3f}" for n in PARTS))
    result: dict[str, object] = {"side": args.side, "images": len(samples)}
    figures = {n: sc.summary() for n, sc in
               score(samples, predictions, sizes, detector.thresholds, detector.cover_thresholds).items()}
    result["part_detector"] = figures
    result["thresholds"] = detector.thresholds
    result["cover_thresholds"] = detector.cover_thresholds
    result["ms_per_image"] = {
        "nanodet_int8_median": round(float(np.median(ms_plain)), 2),
        "nanodet_plus_parts_median": round(float(np.median(ms_parts)), 2),
        "added_median": round(float(np.median(np.array(ms_parts) - np.array(ms_plain))), 2),
        "threads": args.threads,
    }
    if args.baseline:
        base = baseline_parts(samples, model_dir, args.threads)
        result["engine_pose_parts"] = {n: sc.summary() for n, sc in
                                       score(samples, base, sizes, {p: 0.5 for p in PARTS}).items()}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
