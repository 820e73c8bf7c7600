"""Command line for train_crop_classifier (`python -m model_workshop.training`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model_workshop.training.data import DatasetError, Split, folder_samples, yolo_samples
from model_workshop.training.fit import TrainConfig
from model_workshop.training.trainer import train_crop_classifier
from shared.logging import configure_logging

EXAMPLE = """\
example (helmet / no helmet head crops from a YOLO folder, 80/20 split by image):
  python -m model_workshop.training \\
      --yolo ../shared/data/helmet_vest --map helmet=helmet --map no_helmet=no_helmet \\
      --classes no_helmet,helmet --positive helmet --name head_cover --out var/models --epochs 30

example (folder-per-class images):
  python -m model_workshop.training --folders ../shared/data/masks \\
      --classes without_mask,with_mask --positive with_mask --name face_cover --out var/models

All four shipped models: python -m model_workshop.training.train_all
"""


def _parse_map(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source or not target:
            raise SystemExit(f"--map expects SOURCE=LABEL (e.g. --map wear=vest), got {pair!r}")
        mapping[source] = target
    return mapping


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model_workshop.training",
        description="Train a small crop classifier (ONNX + model card) from labelled boxes or class folders.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--yolo", type=Path, help="YOLO folder: images/, labels/, data.yaml with names")
    source.add_argument("--folders", type=Path, help="folder with one sub-folder of images per class")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="SOURCE=LABEL",
        help="map a YOLO class (name or id) or sub-folder to a classifier label (repeatable)",
    )
    parser.add_argument(
        "--classes",
        help="comma-separated classifier labels in output order (default: the --map labels, or the sub-folder names)",
    )
    parser.add_argument("--positive", help="the 'covered / wearing' class (binary models)")
    parser.add_argument("--name", required=True, help="model name: writes <name>.onnx, .card.json, ...")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--test-yolo", type=Path, help="held-back YOLO folder (else an automatic split)")
    parser.add_argument("--test-folders", type=Path, help="held-back folder-per-class (else an automatic split)")
    parser.add_argument("--split", type=Path, help="reuse a split file ({'train': [...], 'test': [...]})")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--input-size", type=int, default=TrainConfig.input_size)
    parser.add_argument("--margin", type=float, default=TrainConfig.crop_margin, help="crop margin per box side")
    parser.add_argument(
        "--threshold",
        default="0.5",
        help="decision threshold on P(positive), or 'auto' to choose it on a validation slice",
    )
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument("--data-source", default="", help="where the data came from (goes into the card)")
    parser.add_argument(
        "--license",
        default="unknown: check the data's license before shipping",
        help="license status of the data (goes into the card)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("classifier-training", fmt="console")
    mapping = _parse_map(args.map)
    try:
        if args.classes:
            classes = [c.strip() for c in args.classes.split(",") if c.strip()]
        elif mapping:
            classes = list(dict.fromkeys(mapping.values()))
        elif args.folders:
            classes = sorted(p.name for p in args.folders.iterdir() if p.is_dir())
        else:
            raise DatasetError("a YOLO folder needs --map SOURCE=LABEL for the classes to train")
        if args.yolo:
            samples = yolo_samples(args.yolo, mapping, classes)
            test = yolo_samples(args.test_yolo, mapping, classes) if args.test_yolo else None
        else:
            samples = folder_samples(args.folders, classes, mapping or None)
            test = folder_samples(args.test_folders, classes, mapping or None) if args.test_folders else None
        threshold = None if args.threshold == "auto" else float(args.threshold)
        config = TrainConfig(
            epochs=args.epochs,
            input_size=args.input_size,
            crop_margin=args.margin,
            threshold=threshold,
            seed=args.seed,
            threads=args.threads,
        )
        result = train_crop_classifier(
            samples,
            classes,
            args.out,
            args.name,
            positive_class=args.positive,
            test_samples=test,
            split=Split.load(args.split) if args.split else None,
            test_fraction=args.test_fraction,
            config=config,
            data_source=args.data_source or str(args.yolo or args.folders),
            license_status=args.license,
        )
    except (DatasetError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {"model": str(result.model_path), "card": str(result.card_path), "metrics": result.metrics}, indent=1
        )
    )
    return 0
