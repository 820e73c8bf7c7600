"""`labels train`: any labelled dataset -> the detector's crop-classifier trainer -> ONNX + model card.

There is one trainer in the project, `model_workshop.training.train_crop_classifier`; this
module only turns a `Dataset` (Ground Truth, YOLO or folder-per-class) into its samples, picks the split,
and reports per-class precision / recall / F1 at the chosen threshold plus the F1-maximising threshold,
measured through the runtime inference path on the held-back images.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from model_workshop.labels.errors import DatasetError, TrainingUnavailable
from model_workshop.labels.model import Dataset, ImageRecord
from model_workshop.labels.yolo import known_dimensions
from model_workshop.scores import THRESHOLD_GRID, ClassScores, class_scores, predictions

if TYPE_CHECKING:
    from model_workshop.training import CropSample

Region = Literal["torso", "person", "image"]


@dataclass(frozen=True)
class TrainOptions:
    name: str = "custom_labels"
    epochs: int = 8
    threshold: float = 0.5
    margin: float = 0.15
    test_fraction: float = 0.2
    seed: int = 0
    classes: list[str] | None = None
    positive_class: str | None = None
    input_size: int = 64
    max_per_class: int | None = None
    region: Region | None = None
    adopt_best_threshold: bool = False
    cache_dir: Path | None = None
    threads: int = 2
    data_source: str = ""
    license_status: str = "unknown: check the data's license before shipping a model trained on it"
    progress: bool = True


@dataclass(frozen=True)
class ThresholdReport:
    """Scores at one decision threshold.

    Binary models: the positive class when P(positive) >= threshold, else the other class (what the engine does
    with the card's `positive_class` and `threshold`). Models with more classes: the top class when its probability
    >= threshold, else no label (a miss for the true class), as a minimum confidence would do.
    """

    threshold: float
    rule: str
    per_class: dict[str, ClassScores]
    macro_f1: float
    abstained: int


@dataclass
class TrainOutcome:
    model_path: Path
    card_path: Path
    classes: list[str]
    region: str
    held_back: int
    at_threshold: ThresholdReport
    best: ThresholdReport
    card: dict[str, Any] = field(repr=False)

    def render(self) -> str:
        lines = [
            f"model  {self.model_path}",
            f"card   {self.card_path} (decision threshold {self.card['threshold']})",
            f"region {self.region}; held-back crops/images: {self.held_back}",
            f"rule   {self.at_threshold.rule}",
            "",
        ]
        for title, report in (
            (f"at the chosen threshold {self.at_threshold.threshold:.2f}", self.at_threshold),
            (f"at the F1-maximising threshold {self.best.threshold:.2f}", self.best),
        ):
            abstained = f", no label for {report.abstained}" if report.abstained else ""
            lines.append(f"{title} (macro F1 {report.macro_f1:.3f}{abstained}):")
            lines.append(f"  {'class':<24}{'precision':>10}{'recall':>8}{'F1':>8}{'support':>9}")
            for name, s in report.per_class.items():
                lines.append(f"  {name:<24}{s.precision:>10.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.support:>9}")
            lines.append("")
        return "\n".join(lines).rstrip()


def threshold_report(
    labels: np.ndarray, probs: np.ndarray, classes: Sequence[str], threshold: float, positive_index: int | None = None
) -> ThresholdReport:
    predicted = predictions(probs, positive_index, threshold, abstain=True)
    per_class = class_scores(labels, predicted, classes)
    macro = float(np.mean([s.f1 for s in per_class.values() if s.support])) if len(labels) else 0.0
    if positive_index is not None and probs.shape[1] == 2:
        positive, other = classes[positive_index], classes[1 - positive_index]
        rule = f"{positive} when P({positive}) >= threshold, else {other}"
    else:
        rule = "top class when its probability >= threshold, else no label"
    return ThresholdReport(float(threshold), rule, per_class, round(macro, 4), int(np.sum(predicted < 0)))


def best_threshold(
    labels: np.ndarray, probs: np.ndarray, classes: Sequence[str], positive_index: int | None = None
) -> ThresholdReport:
    """The threshold (0.05..0.95) with the highest macro F1; on ties the one closest to 0.5."""
    reports = [threshold_report(labels, probs, classes, float(t), positive_index) for t in THRESHOLD_GRID]
    return max(reports, key=lambda r: (r.macro_f1, -abs(r.threshold - 0.5)))


def _groups(records: Sequence[ImageRecord]) -> dict[str, str]:
    """De-duplication groups from a manifest.csv beside the data (as in shared/data), keyed by image path."""
    from model_workshop.training.data import find_manifest, read_manifest_groups

    groups: dict[str, str] = {}
    manifests: dict[Path, dict[str, str]] = {}
    for record in records:
        if record.path is None:
            continue
        manifest = find_manifest(Path(record.path).parent)
        if manifest is None:
            continue
        if manifest not in manifests:
            manifests[manifest] = read_manifest_groups(manifest)
        relative = Path(record.path).resolve().relative_to(manifest.parent.resolve()).as_posix()
        if relative in manifests[manifest]:
            groups[record.path] = manifests[manifest][relative]
    return groups


def to_samples(dataset: Dataset, classes: Sequence[str]) -> list[CropSample]:
    """One sample per box of a selected class (detection data) or per labelled image (classification data)."""
    from model_workshop.training import CropSample

    index = {name: i for i, name in enumerate(classes)}
    usable = [r for r in dataset.images if r.path is not None and Path(r.path).is_file()]
    groups = _groups(usable)
    samples: list[CropSample] = []
    for record in usable:
        assert record.path is not None
        key = record.key
        group = groups.get(record.path, key)
        if dataset.kind == "classification":
            if record.image_label in index:
                samples.append(CropSample(key, Path(record.path), None, index[record.image_label], group))
            continue
        size = known_dimensions(record)
        if size is None:
            continue
        width, height = size
        for box in record.boxes:
            if box.class_name not in index or box.width <= 0 or box.height <= 0:
                continue
            x1, y1 = max(0.0, box.left / width), max(0.0, box.top / height)
            x2, y2 = min(1.0, box.right / width), min(1.0, box.bottom / height)
            if x2 > x1 and y2 > y1:
                samples.append(CropSample(key, Path(record.path), (x1, y1, x2, y2), index[box.class_name], group))
    counts = {name: sum(1 for s in samples if s.label == i) for name, i in index.items()}
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        raise DatasetError(
            f"no usable examples of {empty} (counts {counts}); check the class names and that images have local files"
        )
    return samples


def _import_trainer() -> Any:
    try:
        from model_workshop import training
    except ImportError as exc:
        raise TrainingUnavailable(
            f"training needs torch and the crop-classifier trainer ({exc}); install the train-time extras: "
            "pip install torch==2.13.0"
        ) from exc
    return training


def train_custom_labels(
    dataset: Dataset, out: Path, *, options: TrainOptions | None = None, test: Dataset | None = None
) -> TrainOutcome:
    """Train, evaluate on held-back data (`test`, else a group-aware 80/20 split), write ONNX + card."""
    options = options or TrainOptions()
    training = _import_trainer()

    if dataset.kind == "empty":
        raise DatasetError("the dataset has no labels; import labelled data first (labels import-*)")
    classes = list(options.classes or dataset.classes)
    unknown = sorted(set(classes) - set(dataset.classes))
    if unknown:
        raise DatasetError(f"--classes names {unknown} that the dataset does not have; it has {list(dataset.classes)}")
    if len(classes) < 2:
        raise DatasetError("a custom-label model needs at least two classes (e.g. vest,no_vest)")
    region: str = options.region or ("image" if dataset.kind == "classification" else "person")
    positive = options.positive_class
    if positive is None and len(classes) == 2:
        positive = classes[1]  # binary: the threshold applies to P(second class); --positive picks another
    if positive is not None and positive not in classes:
        raise DatasetError(f"--positive {positive!r} is not one of the classes {classes}")
    samples = to_samples(dataset, classes)
    test_samples = to_samples(test, classes) if test is not None else None
    config = training.TrainConfig(
        input_size=options.input_size,
        crop_margin=options.margin,
        epochs=options.epochs,
        threshold=options.threshold,
        seed=options.seed,
        threads=options.threads,
        max_train_per_class=options.max_per_class,
    )
    result = training.train_crop_classifier(
        samples,
        classes,
        out,
        options.name,
        positive_class=positive,
        test_samples=test_samples,
        test_fraction=options.test_fraction,
        config=config,
        data_source=options.data_source,
        license_status=options.license_status,
        cache_dir=options.cache_dir,
        progress=options.progress,
        extra_card={"region": region, "kind": "custom_labels"},
    )
    # held-back crops through the runtime inference path (CropClassifier on the original images)
    labels, probs = result.held_back_labels, result.held_back_probs
    positive_index = classes.index(positive) if positive is not None and len(classes) == 2 else None
    at_threshold = threshold_report(labels, probs, classes, options.threshold, positive_index)
    best = best_threshold(labels, probs, classes, positive_index)
    card = dict(result.card)
    if options.adopt_best_threshold:
        # chosen on the held-back data itself: the reported scores at it are optimistic
        card["threshold"] = best.threshold
    card["metrics"]["custom_labels"] = {
        "rule": at_threshold.rule,
        "at_threshold": _as_dict(at_threshold),
        "f1_max": _as_dict(best),
    }
    Path(result.card_path).write_text(json.dumps(card, indent=1) + "\n")
    return TrainOutcome(result.model_path, result.card_path, classes, region, len(labels), at_threshold, best, card)


def _as_dict(report: ThresholdReport) -> dict[str, Any]:
    return {
        "threshold": report.threshold,
        "macro_f1": report.macro_f1,
        "abstained": report.abstained,
        "rule": report.rule,
        "per_class": {name: vars(scores) for name, scores in report.per_class.items()},
    }
