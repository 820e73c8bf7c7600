"""The lenient figures of the local engine's internals: located parts only, face crops classified alone. They are
printed beside the strict table (strict_eval.py), never instead of it; `head_miss_cause` says why a labelled
head got no HEAD."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from model_workshop.eval_data import YOLO_CLASSES, Labelled, read_yolo
from model_workshop.scores import f1, precision, recall
from services.detector.local_engine.pipeline import LocalPipeline, PersonResult
from shared.boxes import Box, iou
from shared.rekognition import (
    BodyPartName,
    CustomLabel,
    EquipmentType,
    SummarizationAttributes,
    person_verdict,
)


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

