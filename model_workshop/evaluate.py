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
import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from model_workshop import strict_eval
from model_workshop.scores import f1, precision, recall
from model_workshop.settings import shared_data_dir
from services.detector.local_engine.pipeline import WEIGHTS_DIR, EngineSettings, LocalPipeline, PersonResult
from shared.boxes import Box, iou
from shared.rekognition import (
    BodyPartName,
    CustomLabel,
    EquipmentType,
    SummarizationAttributes,
    person_verdict,
)

YOLO_CLASSES = ("helmet", "no_helmet", "no_wear", "wear")


def held_back(
    split_name: str, data_root: Path, weights_dir: Path = WEIGHTS_DIR, side: str = "test"
) -> list[Path] | None:
    """One side ("test" = held back, "train" = for tuning) of a model's split file; None when it is absent."""
    path = weights_dir / f"{split_name}.split.json"
    if not path.is_file():
        return None
    split = json.loads(path.read_text())
    if side == "val":
        return validation_slice(split_name, data_root, weights_dir, split["train"])
    return [data_root / rel for rel in split[side]]


VAL_SOURCES = {"head_cover": "helmet_vest/", "hand_cover": "gloves/"}  # split file -> part detector source


def validation_slice(split_name: str, data_root: Path, weights_dir: Path, train: list[str]) -> list[Path]:
    """TRAIN-side files for tuning the engine: the part detector's validation slice (part_head.data.csv, side
    "val": not trained on, the calibration slice) for helmet_vest and gloves; every 6th TRAIN-side file otherwise
    (masks: the face detector and the FACE_COVER classifier have no slice of their own)."""
    prefix = VAL_SOURCES.get(split_name)
    manifest = weights_dir / "part_head.data.csv"
    if prefix is None or not manifest.is_file():
        return [data_root / rel for rel in train[::6]]
    rows = [line.split(",") for line in manifest.read_text().splitlines()[1:]]
    return [data_root / row[0] for row in rows if row[0].startswith(prefix) and row[2] == "val"]


@dataclass(frozen=True)
class Labelled:
    cls: str
    box: np.ndarray  # x1, y1, x2, y2 pixels


def read_yolo(label_path: Path, width: int, height: int) -> list[Labelled]:
    rows: list[Labelled] = []
    if not label_path.is_file():
        return rows
    for line in label_path.read_text().splitlines():
        if not line.strip():
            continue
        c, cx, cy, w, h = line.split()[:5]
        x, y, bw, bh = float(cx) * width, float(cy) * height, float(w) * width, float(h) * height
        rows.append(Labelled(YOLO_CLASSES[int(c)], np.array([x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2])))
    return rows


@dataclass
class Tally:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)

    def table(self, classes: tuple[str, ...]) -> list[str]:
        lines = ["| class | precision | recall | F1 | labelled |", "|---|---|---|---|---|"]
        for c in classes:
            tp, fp, fn = self.tp[c], self.fp[c], self.fn[c]
            lines.append(
                f"| {c} | {precision(tp, fp):.3f} | {recall(tp, fn):.3f} | {f1(tp, fp, fn):.3f} | {tp + fn} |"
            )
        return lines


def _ratio(n: int, d: int) -> str:
    return f"{n / d:.3f} ({n}/{d})" if d else "n/a (0)"


def _head_of(person: PersonResult) -> tuple[np.ndarray, float | None, float] | None:
    for r in person.parts:
        if r.part.name == BodyPartName.HEAD:
            return np.asarray(r.part.box), r.p_covered, r.part.score
    return None


# Why a labelled head got no engine HEAD (docs/local-engine.md, "Heads"), in the order they are tested.
MISS_NO_PERSON = "no returned person box holds it, fewer than 15 persons returned (detector miss)"
MISS_CAP = "no returned person box holds it, 15 persons returned (Rekognition's cap)"
MISS_SHARED = "every person box holding it gave its HEAD to another labelled head (two heads, one box)"
MISS_ELSEWHERE = "a person box holding it has a free HEAD elsewhere (IoU <= 0.15: pose on someone else / wrong size)"
MISS_CAUSES = (MISS_NO_PERSON, MISS_CAP, MISS_SHARED, MISS_ELSEWHERE)


def head_miss_cause(lab: Labelled, boxes: list[np.ndarray], head_owner: dict[int, int], max_persons: int) -> str:
    """The cause of one unlocated labelled head; `head_owner` maps person index -> index of the label its HEAD
    was matched to."""
    holders = [i for i, b in enumerate(boxes) if Box.of(b).holds(Box.of(lab.box).centre)]
    if not holders:
        return MISS_CAP if len(boxes) >= max_persons else MISS_NO_PERSON
    if all(i in head_owner for i in holders):
        return MISS_SHARED
    return MISS_ELSEWHERE


def evaluate_yolo(engine: LocalPipeline, images: list[Path], min_confidence: float, weights_dir: Path) -> list[str]:
    from services.detector.local_engine.custom_labels import CropLabeller

    # The torso region comes from the engine's keypoints (shoulders..hips), so the vest model sees the torso
    # it was trained on; region="person" makes the label engine classify exactly that box.
    vest = CropLabeller(
        weights_dir / "vest.onnx", region="person", label_names={"wear": "wear", "no_wear": "no_wear"}
    )
    head_threshold = engine._classifiers[EquipmentType.HEAD_COVER].threshold
    tally = Tally()
    persons_found = persons_total = 0
    head_ok = head_found = head_total = 0
    head_found_iou = 0  # located by IoU > 0.15 alone (without the centre-inside rule)
    misses: Counter[str] = Counter()
    crowded_misses = 0  # unlocated heads in images with more than 15 labelled heads
    vest_ok = vest_found = vest_total = 0
    summary_ok = 0
    attrs = SummarizationAttributes(MinConfidence=min_confidence, RequiredEquipmentTypes=[EquipmentType.HEAD_COVER])
    for image_path in tqdm(images, desc="helmet_vest", unit="img", mininterval=10):
        image = cv2.imread(str(image_path))
        if image is None:
            continue
        h, w = image.shape[:2]
        labels = read_yolo(image_path.parent.parent / "labels" / f"{image_path.stem}.txt", w, h)
        persons = engine.analyse(image)
        response = engine.respond(persons, w, h, attrs)
        boxes = [p.box for p in persons]
        for lab in labels:
            persons_total += 1
            persons_found += any(Box.of(b).holds(Box.of(lab.box).centre) for b in boxes)
        # HEAD_COVER: match each labelled head to the engine's HEAD box with the best IoU.
        heads = [(i, hd) for i, p in enumerate(persons) if (hd := _head_of(p)) is not None]
        used: set[int] = set()
        head_labels = [lab for lab in labels if lab.cls in ("helmet", "no_helmet")]
        head_owner: dict[int, int] = {}
        unlocated: list[Labelled] = []
        for k, lab in enumerate(head_labels):
            head_total += 1
            tally.counts[lab.cls] += 1
            best, best_iou = None, 0.15
            for i, (box, _p, _s) in heads:
                if i in used:
                    continue
                overlap = iou(lab.box, box)
                if overlap > best_iou or (best is None and Box.of(box).holds(Box.of(lab.box).centre)):
                    best, best_iou = i, max(overlap, best_iou)
            if best is None:
                tally.fn[lab.cls] += 1
                unlocated.append(lab)
                continue
            used.add(best)
            head_owner[best] = k
            head_found += 1
            head_found_iou += best_iou > 0.15
            _box, p, _score = next(hd for i, hd in heads if i == best)
            predicted = "helmet" if p is not None and p >= head_threshold else "no_helmet"
            if predicted == lab.cls:
                tally.tp[lab.cls] += 1
                head_ok += 1
            else:
                tally.fn[lab.cls] += 1
                tally.fp[predicted] += 1
            verdict = (
                person_verdict(response.Persons[best], attrs.RequiredEquipmentTypes, min_confidence)
                if best < len(response.Persons)
                else "indeterminate"
            )
            summary_ok += verdict == ("with" if lab.cls == "helmet" else "without")
        for lab in unlocated:
            misses[head_miss_cause(lab, boxes, head_owner, engine.settings.max_persons)] += 1
            crowded_misses += len(head_labels) > engine.settings.max_persons
        for i, _ in heads:  # engine heads with no label: false positives of their class
            if i not in used:
                p = _head_of(persons[i])[1]  # type: ignore[index]
                tally.fp["helmet" if p is not None and p >= head_threshold else "no_helmet"] += 1
        # Vest: the custom-label engine on the engine's person boxes; a torso label goes to the person
        # box that contains its centre (the smallest such box).
        torsos = [lab for lab in labels if lab.cls in ("wear", "no_wear")]
        if torsos:
            for lab in torsos:
                vest_total += 1
                tally.counts[lab.cls] += 1
                holders = [
                    i
                    for i, p in enumerate(response.Persons)
                    if Box(
                        p.BoundingBox.Left * w,
                        p.BoundingBox.Top * h,
                        (p.BoundingBox.Left + p.BoundingBox.Width) * w,
                        (p.BoundingBox.Top + p.BoundingBox.Height) * h,
                    ).holds(Box.of(lab.box).centre)
                ]
                if not holders:
                    tally.fn[lab.cls] += 1
                    continue
                vest_found += 1
                i = min(
                    holders,
                    key=lambda k: response.Persons[k].BoundingBox.Width * response.Persons[k].BoundingBox.Height,
                )
                torso = engine.torso_regions([persons[i]], w, h)
                vest_predicted = _vest_label(vest.detect(image, torso))
                if vest_predicted == lab.cls:
                    tally.tp[lab.cls] += 1
                    vest_ok += 1
                else:
                    tally.fn[lab.cls] += 1
                    if vest_predicted is not None:
                        tally.fp[vest_predicted] += 1
    return [
        f"images: {len(images)}",
        "",
        *tally.table(YOLO_CLASSES),
        "",
        "| measure | value |",
        "|---|---|",
        "| person recall (labelled head/torso centres inside a detected person box) | "
        f"{_ratio(persons_found, persons_total)} |",
        f"| HEAD located (labelled head matched to an engine HEAD) | {_ratio(head_found, head_total)} |",
        f"| HEAD located with IoU > 0.15 (not by the centre-inside rule) | {_ratio(head_found_iou, head_total)} |",
        f"| HEAD_COVER per-person accuracy (all labelled heads; missed = wrong) | {_ratio(head_ok, head_total)} |",
        f"| HEAD_COVER accuracy on located heads | {_ratio(head_ok, head_found)} |",
        f"| Summary accuracy, HEAD_COVER required, MinConfidence {min_confidence:g} "
        f"(missed/indeterminate = wrong) | {_ratio(summary_ok, head_total)} |",
        f"| vest accuracy (all labelled torsos; missed = wrong) | {_ratio(vest_ok, vest_total)} |",
        f"| vest accuracy on torsos inside a detected person | {_ratio(vest_ok, vest_found)} |",
        "",
        f"Unlocated labelled heads: {head_total - head_found}, of them {crowded_misses} in images with more than "
        f"{engine.settings.max_persons} labelled heads",
        "",
        "| why a labelled head got no HEAD | heads |",
        "|---|---|",
        *(f"| {cause} | {misses[cause]} |" for cause in MISS_CAUSES),
    ]


def _vest_label(labels: list[CustomLabel]) -> str | None:
    """The class the vest engine gave one person (None when it returned nothing at >= 50)."""
    if not labels:
        return None
    return str(labels[0].Name)


def evaluate_masks(engine: LocalPipeline, images: list[tuple[Path, bool]]) -> list[str]:
    face = engine._classifiers[EquipmentType.FACE_COVER]
    e2e_ok = e2e_found = crop_ok = 0
    confusion: Counter[tuple[str, str]] = Counter()
    for path, masked in tqdm(images, desc="masks", unit="img", mininterval=10):
        image = cv2.imread(str(path))
        if image is None:
            continue
        truth = "with_mask" if masked else "without_mask"
        # Crop mode: the file is a face crop, so the whole image is the face box.
        h, w = image.shape[:2]
        p = float(face.classify(image, [(0.0, 0.0, float(w), float(h))])[0, face.positive_index])
        crop_ok += (p >= face.threshold) == masked
        # End to end: the most confident FACE the engine finds in the image.
        small = image if min(h, w) >= 64 else cv2.resize(image, (max(64, w), max(64, h)))
        faces = [
            (r.part.score, r.p_covered)
            for person in engine.analyse(small)
            for r in person.parts
            if r.part.name == BodyPartName.FACE and r.p_covered is not None
        ]
        if not faces:
            confusion[(truth, "no face found")] += 1
            continue
        e2e_found += 1
        _score, p_face = max(faces)
        predicted = "with_mask" if p_face is not None and p_face >= face.threshold else "without_mask"
        confusion[(truth, predicted)] += 1
        e2e_ok += predicted == truth
    n = len(images)
    return [
        f"images: {n} ({sum(m for _, m in images)} with_mask)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| FACE_COVER accuracy, face-crop mode (image = face box) | {_ratio(crop_ok, n)} |",
        f"| FACE_COVER accuracy end to end (person -> pose -> FACE; no face = wrong) | {_ratio(e2e_ok, n)} |",
        f"| FACE found end to end | {_ratio(e2e_found, n)} |",
        f"| FACE_COVER accuracy end to end on found faces | {_ratio(e2e_ok, e2e_found)} |",
        "",
        "end-to-end confusion (truth -> predicted): "
        + ", ".join(f"{t}->{p}: {c}" for (t, p), c in sorted(confusion.items())),
    ]


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
