"""Evaluate the local engine on labelled data and print the tables that go into docs/local-engine.md.

    python -m model_workshop.evaluate                      # held-back split of ../shared/data
    python -m model_workshop.evaluate --yolo DIR --masks DIR --gloves DIR --all   # your own folders
    python -m model_workshop.evaluate --against http://127.0.0.1:8081   # any Rekognition-compatible endpoint

The strict table comes first (model_workshop/strict_eval.py: scored from the API's JSON only, a missed head,
face or hand is a wrong verdict); the lenient tables of the engine's internals (located parts only, face
crops classified alone) follow for the local engine.

YOLO folder: `images/*.jpg` + `labels/*.txt` with classes helmet, no_helmet, no_wear, wear (helmet_vest
order, boxes on heads and torsos). Masks folder: `with_mask/`, `without_mask/` (one face per image).
By default only the files in the classifiers' held-back lists (`weights/<name>.split.json`, "test") are
used, so nothing the classifiers trained on is scored.
"""


from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

from model_workshop import strict_eval
from model_workshop.eval_data import held_back
from model_workshop.lenient_eval import evaluate_masks, evaluate_yolo
from model_workshop.settings import shared_data_dir
from services.detector.local_engine.pipeline import WEIGHTS_DIR, EngineSettings, LocalPipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate the local PPE engine on labelled folders.")
    parser.add_argument("--data", type=Path, default=None, help="shared data root (default ../shared/data)")
    parser.add_argument("--yolo", type=Path, default=None, help="YOLO folder (default <data>/helmet_vest)")
    parser.add_argument("--masks", type=Path, default=None, help="masks folder (default <data>/masks)")
    parser.add_argument("--gloves", type=Path, default=None, help="YOLO hands folder (default <data>/gloves)")
    parser.add_argument(
        "--against",
        metavar="URL",
        default=None,
        help="score this Rekognition-compatible endpoint through boto3 (credentials: the first DETECTOR_API_KEYS "
        "pair when set, as `make run` writes it to var/secrets.env, else the usual AWS settings; "
        "'aws' = the real service) instead of the local engine in process",
    )
    parser.add_argument(
        "--vest-arn",
        default="arn:aws:rekognition:local:000000000000:project/vest/version/local/1",
        help="ProjectVersionArn of the hi-vis vest model for DetectCustomLabels with --against",
    )
    parser.add_argument("--strict-min-confidence", type=float, default=80.0, help="MinConfidence of the strict table")
    parser.add_argument("--strict-only", action="store_true", help="print only the strict table")
    parser.add_argument(
        "--engine",
        choices=["v2", "v1"],
        default="v2",
        help="v2: part and face detectors with calibrated confidences (default); v1: the session-3 engine "
        "(parts from the pose only, uncalibrated), for side-by-side figures",
    )
    parser.add_argument("--all", action="store_true", help="score every file, not just the held-back split")
    parser.add_argument(
        "--split",
        choices=["test", "train", "val"],
        default="test",
        help="which side of the split files to score: test = held back (default), train = for tuning settings, "
        "val = the part detector's validation slice (helmet_vest, gloves) and every 6th TRAIN-side mask",
    )
    parser.add_argument("--input-side", type=int, default=None, help="override NanoDet's letterbox long side")
    parser.add_argument("--enlarge-to", type=int, default=None, help="override the long side small images grow to")
    parser.add_argument(
        "--person-precision", choices=["int8", "fp32"], default=None, help="override the NanoDet build used"
    )
    parser.add_argument("--person-min-score", type=float, default=None, help="override the NanoDet score kept")
    parser.add_argument("--person-nms-iou", type=float, default=None, help="override the person NMS IoU")
    parser.add_argument(
        "--person-candidates", type=int, default=None, help="override the boxes posed before de-duplication"
    )
    parser.add_argument("--limit", type=int, default=0, help="score at most N files per set (0 = all)")
    parser.add_argument("--min-confidence", type=float, default=50.0, help="MinConfidence for the Summary")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR, help="classifier weights and split files")
    parser.add_argument("--skip", choices=["yolo", "masks", "gloves"], action="append", default=[])
    args = parser.parse_args(argv)

    data = args.data or shared_data_dir()
    yolo = args.yolo or data / "helmet_vest"
    masks = args.masks or data / "masks"
    overrides = {
        "input_side": args.input_side,
        "enlarge_to": args.enlarge_to,
        "person_min_score": args.person_min_score,
        "person_precision": args.person_precision,
        "person_nms_iou": args.person_nms_iou,
        "person_candidates": args.person_candidates,
        **({"part_detector": False, "face_detector": False, "calibrated": False} if args.engine == "v1" else {}),
    }
    settings = replace(EngineSettings(), **{k: v for k, v in overrides.items() if v is not None})
    gloves = args.gloves or data / "gloves"
    split_side = "all files" if args.all else args.split

    def files(split_name: str, fallback: list[Path]) -> list[Path]:
        chosen = None if args.all else held_back(split_name, data, args.weights_dir, args.split)
        chosen = fallback if chosen is None else chosen
        chosen = [p for p in chosen if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
        return chosen[: args.limit] if args.limit else chosen

    yolo_images = [] if "yolo" in args.skip else files("head_cover", sorted((yolo / "images").glob("*.jpg")))
    mask_items = (
        []
        if "masks" in args.skip
        else [
            (p, p.parent.name == "with_mask")
            for p in files("face_cover", sorted(masks.glob("*/*.jpg")))
            if p.parent.name in ("with_mask", "without_mask")
        ]
    )
    glove_images = (
        [] if "gloves" in args.skip else files("hand_cover", sorted((gloves / "images").glob("*.jpg")))
    )
    glove_images = [p for p in glove_images if "/images/" in p.as_posix()]
    endpoint: strict_eval.Endpoint
    if args.against:
        url = None if args.against == "aws" else args.against
        pairs = os.environ.get("DETECTOR_API_KEYS", "").split(",")[0].strip()
        credentials = tuple(pairs.split(":", 1)) if url and ":" in pairs else None
        endpoint = strict_eval.Boto3Endpoint(url, vest_arn=args.vest_arn, credentials=credentials)  # type: ignore[arg-type]
    else:
        endpoint = strict_eval.LocalEndpoint(engine_settings={k: v for k, v in overrides.items() if v is not None})
    print(f"endpoint: {endpoint.name}; split side: {split_side}")
    print(
        f"files: {len(yolo_images)} helmet_vest, {len(mask_items)} masks, {len(glove_images)} gloves; "
        f"MinConfidence {args.strict_min_confidence:g}\n"
    )
    counts = strict_eval.run(
        endpoint,
        helmet_vest=yolo_images,
        masks=mask_items,
        gloves=glove_images,
        min_confidence=args.strict_min_confidence,
    )
    print("\n".join(counts.rows(strict_eval.TARGETS)))
    if args.against or args.strict_only:
        return 0
    print("\n# Lenient figures (engine internals: located parts only, face crops classified alone)")
    engine = LocalPipeline(intra_op_threads=args.threads, weights_dir=args.weights_dir, settings=settings)
    print(f"engine: {engine.model_version}")

    if yolo_images:
        print(f"\n## {yolo} (split side: {split_side})\n")
        print("\n".join(evaluate_yolo(engine, yolo_images, args.min_confidence, args.weights_dir)))
    if mask_items:
        print(f"\n## {masks} (split side: {split_side})\n")
        print("\n".join(evaluate_masks(engine, mask_items)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
