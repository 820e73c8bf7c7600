"""`labels`: get labelled images into shape and train a custom-label model from them.

Run as `python -m model_workshop.labels <command>` or `bin/labels <command>`; `<command> --help` shows an example.
Errors print one line saying what to fix and exit with status 2; `check` exits 1 when the data has errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

from model_workshop.errors import WorkshopError
from model_workshop.labels.errors import CheckFailed, LabelsError
from shared.logging import configure_logging

Handler = Callable[[argparse.Namespace], int]


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def cmd_import_gt(args: argparse.Namespace) -> int:
    from model_workshop.labels.groundtruth import import_ground_truth, read_manifest_lines
    from model_workshop.labels.manifest import download

    if args.download_to is not None:
        if args.images_dir is not None:
            raise LabelsError("give either --images-dir (images already local) or --download-to, not both")
        refs = [line["source-ref"] for manifest in args.manifests for _where, line in read_manifest_lines(manifest)]
        fetched = asyncio.run(download([r for r in refs if r.startswith("s3://")], args.download_to))
        print(f"downloaded {fetched} images to {args.download_to}")
        args.images_dir = args.download_to
    dataset = import_ground_truth(
        args.manifests, images_dir=args.images_dir, label_attributes=args.label_attribute, classes=args.classes
    )
    dataset.save(args.out)
    boxes = sum(len(image.boxes) for image in dataset.images)
    print(f"{len(dataset.images)} images, {boxes} boxes, classes {list(dataset.classes)} -> {args.out}")
    return 0


def cmd_import_yolo(args: argparse.Namespace) -> int:
    from model_workshop.labels.yolo import import_yolo

    dataset = import_yolo(args.folder, names_file=args.names)
    dataset.save(args.out)
    boxes = sum(len(image.boxes) for image in dataset.images)
    print(f"{len(dataset.images)} images, {boxes} boxes, classes {list(dataset.classes)} -> {args.out}")
    return 0


def cmd_import_folders(args: argparse.Namespace) -> int:
    from model_workshop.labels.folders import import_folders

    dataset = import_folders(args.folder)
    dataset.save(args.out)
    print(f"{len(dataset.images)} images, classes {list(dataset.classes)} -> {args.out}")
    return 0


def cmd_export_yolo(args: argparse.Namespace) -> int:
    from model_workshop.labels.sources import open_dataset
    from model_workshop.labels.yolo import export_yolo

    dataset = open_dataset(args.dataset)
    print(export_yolo(dataset, args.out, link=args.link).render(args.out))
    return 0


def cmd_export_coco(args: argparse.Namespace) -> int:
    from model_workshop.labels.coco import export_coco
    from model_workshop.labels.sources import open_dataset

    dataset = open_dataset(args.dataset)
    print(export_coco(dataset, args.out).render(args.out))
    return 0


def cmd_make_manifest(args: argparse.Namespace) -> int:
    from model_workshop.labels.manifest import make_manifest

    refs = asyncio.run(make_manifest(args.source, args.out, s3_prefix=args.s3_prefix, do_upload=args.upload))
    print(f"{len(refs)} images -> {args.out}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from model_workshop.labels.check import Severity, check_dataset
    from model_workshop.labels.sources import open_dataset

    report = check_dataset(open_dataset(args.dataset), min_per_class=args.min_per_class)
    print(report.render(max_per_kind=args.show))
    errors, warnings = report.count(Severity.ERROR), report.count(Severity.WARNING)
    if errors or (args.fail_on == "warning" and warnings):
        raise CheckFailed(
            f"check failed: {errors} errors, {warnings} warnings in {args.dataset}; fix the items listed above"
        )
    return 0


def cmd_visualize(args: argparse.Namespace) -> int:
    from model_workshop.labels.sources import open_dataset
    from model_workshop.labels.visualize import contact_sheet, visualize

    dataset = open_dataset(args.dataset)
    if args.out is None and args.contact_sheet is None:
        raise LabelsError("say where to draw: -o FOLDER for one file per image and/or --contact-sheet FILE.png")
    if args.out is not None:
        written = visualize(dataset, args.out, limit=args.limit)
        print(f"{len(written)} annotated images -> {args.out}")
    if args.contact_sheet is not None:
        sheet = contact_sheet(dataset, args.contact_sheet, limit=args.limit or 100, tile=args.tile)
        print(f"contact sheet -> {sheet}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from model_workshop.labels.sources import open_dataset
    from model_workshop.labels.train import TrainOptions, train_custom_labels

    options = TrainOptions(
        name=args.name,
        positive_class=args.positive,
        region=args.region,
        adopt_best_threshold=args.adopt_best_threshold,
        cache_dir=args.cache_dir,
        data_source=args.data_source,
        epochs=args.epochs,
        threshold=args.threshold,
        margin=args.margin,
        test_fraction=args.test_fraction,
        seed=args.seed,
        classes=args.classes,
        input_size=args.input_size,
        max_per_class=args.max_per_class,
    )
    test = open_dataset(args.test) if args.test is not None else None
    result = train_custom_labels(open_dataset(args.dataset), args.out, options=options, test=test)
    print(result.render())
    return 0


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, handler: Handler, summary: str, example: str
) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labels",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "example:\n  labels import-yolo ../shared/data/helmet_vest -o work/dataset.json\n"
            "  labels check work/dataset.json"
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    dataset_help = "a dataset.json from an import command, a YOLO folder (images/ + labels/), or a folder per class"

    p = _command(
        sub, "import-gt", cmd_import_gt,
        "Import SageMaker Ground Truth output manifests (bounding-box and image-classification jobs); "
        "several jobs are merged by class name.",
        "labels import-gt vests.manifest helmets.manifest --images-dir ./images -o work/dataset.json\n"
        "  labels import-gt output.manifest --download-to work/images -o work/dataset.json",
    )  # fmt: skip
    p.add_argument("manifests", nargs="+", type=Path, help="output.manifest files (JSON lines)")
    p.add_argument("--images-dir", type=Path, help="local copies of the images (matched by S3 key, then file name)")
    p.add_argument("--download-to", type=Path, help="download the images from S3 into this folder (by key) first")
    p.add_argument("--label-attribute", action="append", help="only this label attribute (repeatable); default: all")
    p.add_argument("--classes", type=_csv, help="class order for export, comma separated (default: first seen)")
    p.add_argument("-o", "--out", type=Path, required=True, help="dataset.json to write")

    p = _command(
        sub, "import-yolo", cmd_import_yolo, "Import a YOLO folder: images/, labels/ and data.yaml or classes.txt.",
        "labels import-yolo ../shared/data/helmet_vest -o work/dataset.json",
    )  # fmt: skip
    p.add_argument("folder", type=Path, help="folder holding images/ and labels/")
    p.add_argument("--names", type=Path, help="names file (data.yaml or one name per line); default: found in folder")
    p.add_argument("-o", "--out", type=Path, required=True, help="dataset.json to write")

    p = _command(
        sub, "import-folders", cmd_import_folders,
        "Import a folder per class (whole-image classification): ROOT/<class>/<image>.",
        "labels import-folders ../shared/data/masks -o work/masks.json",
    )  # fmt: skip
    p.add_argument("folder", type=Path, help="root folder with one subfolder per class")
    p.add_argument("-o", "--out", type=Path, required=True, help="dataset.json to write")

    p = _command(
        sub, "export-yolo", cmd_export_yolo,
        "Write a YOLO folder: labels/*.txt ('class cx cy w h', normalised), images/, classes.txt, data.yaml.",
        "labels export-yolo work/dataset.json -o work/yolo --link",
    )  # fmt: skip
    p.add_argument("dataset", type=Path, help=dataset_help)
    p.add_argument("-o", "--out", type=Path, required=True, help="folder to write")
    p.add_argument("--link", action="store_true", help="symlink images instead of copying them")

    p = _command(
        sub, "export-coco", cmd_export_coco,
        "Write COCO detection JSON (bbox [x, y, w, h] in pixels; category id = class index + 1).",
        "labels export-coco work/dataset.json -o work/coco.json",
    )  # fmt: skip
    p.add_argument("dataset", type=Path, help=dataset_help)
    p.add_argument("-o", "--out", type=Path, required=True, help="JSON file to write")

    p = _command(
        sub, "make-manifest", cmd_make_manifest,
        "Write a Ground Truth input manifest ({\"source-ref\": ...} lines) from an S3 prefix or a local folder.",
        "labels make-manifest s3://my-bucket/site-a/ -o input.manifest\n"
        "  labels make-manifest ./photos --s3-prefix s3://my-bucket/site-a/ --upload -o input.manifest",
    )  # fmt: skip
    p.add_argument("source", help="s3://bucket/prefix/ or a local folder of images")
    p.add_argument("--s3-prefix", help="for a local folder: the s3:// prefix its images live at")
    p.add_argument("--upload", action="store_true", help="for a local folder: upload the images to --s3-prefix")
    p.add_argument("-o", "--out", type=Path, required=True, help="manifest file to write")

    p = _command(
        sub, "check", cmd_check,
        "Report class counts and data errors (missing files, boxes outside the image or of zero area, duplicates, "
        "unlabelled images); exits 1 on errors.",
        "labels check work/dataset.json --min-per-class 20",
    )  # fmt: skip
    p.add_argument("dataset", type=Path, help=dataset_help)
    p.add_argument("--min-per-class", type=int, default=10, help="warn when a class has fewer examples (default 10)")
    p.add_argument("--fail-on", choices=["error", "warning"], default="error", help="what makes the exit status 1")
    p.add_argument("--show", type=int, default=10, help="examples listed per problem kind (default 10)")

    p = _command(
        sub, "visualize", cmd_visualize,
        "Draw boxes and class names on the images, and/or tile them into a contact sheet PNG.",
        "labels visualize work/dataset.json -o work/drawn --contact-sheet work/sheet.png --limit 64",
    )  # fmt: skip
    p.add_argument("dataset", type=Path, help=dataset_help)
    p.add_argument("-o", "--out", type=Path, help="folder for one annotated JPEG per image")
    p.add_argument("--contact-sheet", type=Path, help="PNG file with all (up to --limit) images as thumbnails")
    p.add_argument("--limit", type=int, help="at most this many images (contact sheet default 100)")
    p.add_argument("--tile", type=int, default=256, help="contact sheet thumbnail size in px (default 256)")

    p = _command(
        sub, "train", cmd_train,
        "Train a custom-label crop classifier (box crops, or whole images for classification data), evaluate "
        "it per class, and write model.onnx + model_card.json for the detector's custom-label engine.",
        "labels train ../shared/data/helmet_vest --classes no_wear,wear --region torso -o models/vest --epochs 8",
    )  # fmt: skip
    p.add_argument("dataset", type=Path, help=dataset_help)
    p.add_argument("-o", "--out", type=Path, required=True, help="folder for model.onnx and model_card.json")
    p.add_argument("--test", type=Path, help="held-out test dataset; default: a grouped 80/20 split of DATASET")
    p.add_argument("--classes", type=_csv, help="train only these classes, comma separated (default: all)")
    p.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    p.add_argument("--threshold", type=float, default=0.5, help="decision threshold on the top score (default 0.5)")
    p.add_argument("--margin", type=float, default=0.15, help="extra context around each box, as a fraction (0.15)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="share of images held out when no --test (0.2)")
    p.add_argument("--input-size", type=int, default=64, help="crop side in pixels fed to the model (default 64)")
    p.add_argument("--max-per-class", type=int, help="cap training crops per class (quick experiments)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the split and training")
    p.add_argument("--name", default="custom_labels", help="model name: OUT/<name>.onnx + <name>.card.json")
    p.add_argument("--positive", help="binary models: the class the threshold applies to (default: the second class)")
    p.add_argument(
        "--adopt-best-threshold", action="store_true",
        help="write the F1-maximising threshold into the card (tuned on the held-back data: optimistic)",
    )  # fmt: skip
    p.add_argument(
        "--region", choices=["torso", "person", "image"],
        help="what the engine crops from each detected person at run time (default: person = the box itself "
        "for box data, image for classification data); use torso for vests labelled on torsos",
    )  # fmt: skip
    p.add_argument("--cache-dir", type=Path, help="cache the cut crops here to speed up re-runs")
    p.add_argument("--data-source", default="", help="where the data came from and its license (goes in the card)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # a terminal tool: readable log lines by default, JSON when PPE_LOG_FORMAT=json (as the services)
    configure_logging("labels", fmt=os.environ.get("PPE_LOG_FORMAT", "console"), level="INFO")
    try:
        code: int = args.handler(args)
    except CheckFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except WorkshopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code
