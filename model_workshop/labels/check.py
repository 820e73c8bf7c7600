"""Check a dataset before training: class counts and every problem that would silently hurt a model."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from tqdm import tqdm

from model_workshop.labels.images import image_size, sha256_file
from model_workshop.labels.model import Dataset, ImageRecord

# A box may poke this many pixels past the border (annotation tools round) before it counts as outside.
EDGE_TOLERANCE_PX = 1.0


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class IssueKind(StrEnum):
    MISSING_FILE = "missing_file"
    UNREADABLE = "unreadable"
    SIZE_MISMATCH = "size_mismatch"
    OUTSIDE_IMAGE = "outside_image"
    ZERO_AREA = "zero_area"
    DUPLICATE = "duplicate"
    UNLABELLED = "unlabelled"
    FEW_EXAMPLES = "few_examples"


SEVERITY = {
    IssueKind.MISSING_FILE: Severity.ERROR,
    IssueKind.UNREADABLE: Severity.ERROR,
    IssueKind.SIZE_MISMATCH: Severity.ERROR,
    IssueKind.OUTSIDE_IMAGE: Severity.ERROR,
    IssueKind.ZERO_AREA: Severity.ERROR,
    IssueKind.DUPLICATE: Severity.ERROR,
    IssueKind.UNLABELLED: Severity.WARNING,
    IssueKind.FEW_EXAMPLES: Severity.WARNING,
}

HINTS = {
    IssueKind.MISSING_FILE: "point --images-dir at the downloaded images, or drop these lines",
    IssueKind.UNREADABLE: "replace the file with a valid JPEG/PNG or drop it",
    IssueKind.SIZE_MISMATCH: "the file was resized after labelling; use the labelled original",
    IssueKind.OUTSIDE_IMAGE: "clip or redraw these boxes in the labelling tool",
    IssueKind.ZERO_AREA: "delete these boxes (a click without a drag) in the labelling tool",
    IssueKind.DUPLICATE: "keep one copy, or the same photo can land in both the train and test split",
    IssueKind.UNLABELLED: "label them, or keep them on purpose as background images",
    IssueKind.FEW_EXAMPLES: "label more examples of these classes (aim for 50+ each)",
}


@dataclass(frozen=True)
class Issue:
    kind: IssueKind
    image: str
    detail: str

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.kind]


@dataclass
class CheckReport:
    images: int
    classes: tuple[str, ...]
    box_counts: Counter[str] = field(default_factory=Counter)
    image_counts: Counter[str] = field(default_factory=Counter)
    issues: list[Issue] = field(default_factory=list)

    def kinds(self) -> set[IssueKind]:
        return {issue.kind for issue in self.issues}

    def count(self, severity: Severity) -> int:
        return sum(1 for issue in self.issues if issue.severity == severity)

    def render(self, max_per_kind: int = 10) -> str:
        lines = [f"{self.images} images, {len(self.classes)} classes", "", f"{'class':<24}{'images':>8}{'boxes':>8}"]
        for name in self.classes:
            lines.append(f"{name:<24}{self.image_counts[name]:>8}{self.box_counts[name]:>8}")
        by_kind: dict[IssueKind, list[Issue]] = defaultdict(list)
        for issue in self.issues:
            by_kind[issue.kind].append(issue)
        for kind in IssueKind:
            found = by_kind.get(kind)
            if not found:
                continue
            lines += ["", f"{SEVERITY[kind].upper()} {kind.value}: {len(found)} (fix: {HINTS[kind]})"]
            lines += [f"  {issue.image}: {issue.detail}" for issue in found[:max_per_kind]]
            if len(found) > max_per_kind:
                lines.append(f"  ... and {len(found) - max_per_kind} more")
        lines += ["", f"{self.count(Severity.ERROR)} errors, {self.count(Severity.WARNING)} warnings"]
        return "\n".join(lines)


def _box_issues(report: CheckReport, image: ImageRecord, width: int | None, height: int | None) -> None:
    key = image.key
    for index, box in enumerate(image.boxes):
        name = f"box {index} ({box.class_name}) at left={box.left:g} top={box.top:g} w={box.width:g} h={box.height:g}"
        if box.width <= 0 or box.height <= 0:
            report.issues.append(Issue(IssueKind.ZERO_AREA, key, name))
            continue
        if width is None or height is None:
            continue
        if (
            box.left < -EDGE_TOLERANCE_PX
            or box.top < -EDGE_TOLERANCE_PX
            or box.right > width + EDGE_TOLERANCE_PX
            or box.bottom > height + EDGE_TOLERANCE_PX
        ):
            report.issues.append(Issue(IssueKind.OUTSIDE_IMAGE, key, f"{name} is outside the {width}x{height} image"))


def check_dataset(dataset: Dataset, *, min_per_class: int = 10) -> CheckReport:
    report = CheckReport(images=len(dataset.images), classes=dataset.classes)
    by_hash: dict[str, list[str]] = defaultdict(list)
    for image in tqdm(dataset.images, desc="check", unit="img", leave=False):
        for box in image.boxes:
            report.box_counts[box.class_name] += 1
        used = {box.class_name for box in image.boxes}
        if image.image_label is not None:
            used.add(image.image_label)
        report.image_counts.update(used)
        if not image.is_labelled:
            report.issues.append(Issue(IssueKind.UNLABELLED, image.key, "no boxes and no image class"))
        width, height = image.width, image.height
        if image.path is None or not Path(image.path).is_file():
            report.issues.append(
                Issue(IssueKind.MISSING_FILE, image.key, f"no local file ({image.path or image.source_ref})")
            )
        else:
            size = image_size(Path(image.path))
            if size is None:
                report.issues.append(Issue(IssueKind.UNREADABLE, image.key, f"{image.path} is not a JPEG/PNG"))
            else:
                if width is not None and height is not None and (width, height) != size:
                    report.issues.append(
                        Issue(
                            IssueKind.SIZE_MISMATCH,
                            image.key,
                            f"labelled at {width}x{height}, file is {size[0]}x{size[1]}",
                        )
                    )
                width, height = size
                by_hash[sha256_file(Path(image.path))].append(image.key)
        _box_issues(report, image, width, height)
    for digest, keys in by_hash.items():
        for key in keys[1:]:
            report.issues.append(Issue(IssueKind.DUPLICATE, key, f"same bytes as {keys[0]} (sha256 {digest[:12]})"))
    for name in dataset.classes:
        examples = report.box_counts[name] if dataset.kind == "detection" else report.image_counts[name]
        if examples < min_per_class:
            report.issues.append(
                Issue(IssueKind.FEW_EXAMPLES, f"class {name}", f"{examples} examples (< {min_per_class})")
            )
    return report
