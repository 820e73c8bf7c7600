"""Merging engine outputs into one FrameAnalyzed: custom labels attached to the persons they belong to.

No I/O here. Boxes are Rekognition ratios of the image size.
"""

from collections.abc import Mapping, Sequence

from shared.contracts import AttributedCustomLabel, FrameAnalyzed, FrameReceived
from shared.rekognition import (
    BoundingBox,
    CustomLabel,
    DetectCustomLabelsResponse,
    DetectProtectiveEquipmentResponse,
    ProtectiveEquipmentPerson,
)

# A label belongs to a person when at least this share of the label's box lies inside the person's box.
MIN_LABEL_OVERLAP = 0.5


def _area(box: BoundingBox) -> float:
    return max(0.0, box.Width) * max(0.0, box.Height)


def intersection(a: BoundingBox, b: BoundingBox) -> float:
    width = min(a.Left + a.Width, b.Left + b.Width) - max(a.Left, b.Left)
    height = min(a.Top + a.Height, b.Top + b.Height) - max(a.Top, b.Top)
    return max(0.0, width) * max(0.0, height)


def owner_of(label_box: BoundingBox, persons: Sequence[ProtectiveEquipmentPerson]) -> int | None:
    """Id of the person whose box holds most of the label box (>= MIN_LABEL_OVERLAP of it), else None.

    Where people overlap (one behind another) and both hold the label equally, the smaller person box wins:
    a vest fills more of the nearer, tighter box it was cut from.
    """
    label_area = _area(label_box)
    if label_area <= 0:
        return None
    best: tuple[float, float, int] | None = None  # (overlap share, -person area, id)
    for person in persons:
        share = intersection(label_box, person.BoundingBox) / label_area
        if share < MIN_LABEL_OVERLAP:
            continue
        candidate = (round(share, 6), -_area(person.BoundingBox), person.Id)
        if best is None or candidate > best:
            best = candidate
    return best[2] if best is not None else None


def attach_labels(
    engine: str, labels: Sequence[CustomLabel], persons: Sequence[ProtectiveEquipmentPerson]
) -> list[AttributedCustomLabel]:
    attributed = []
    for label in labels:
        box = label.Geometry.BoundingBox if label.Geometry is not None else None
        person_id = owner_of(box, persons) if box is not None else None
        attributed.append(AttributedCustomLabel(engine=engine, person_id=person_id, label=label))
    return attributed


def merge(
    received: FrameReceived,
    *,
    ppe: DetectProtectiveEquipmentResponse,
    custom_labels: Mapping[str, DetectCustomLabelsResponse],
    model_versions: Mapping[str, str],
    timings_ms: Mapping[str, float],
) -> FrameAnalyzed:
    """The one result published for a frame."""
    attributed = [
        label
        for engine in sorted(custom_labels)
        for label in attach_labels(engine, custom_labels[engine].CustomLabels, ppe.Persons)
    ]
    return FrameAnalyzed(
        context=received.context,
        frame=received.frame,
        summarization=received.summarization,
        custom_equipment=received.custom_equipment,
        zones=received.zones,  # applied by the consumers (shared.verdicts), see docs/notifier.md#zones
        ppe=ppe,
        custom_labels=attributed,
        model_versions=dict(model_versions),
        timings_ms={name: round(value, 3) for name, value in timings_ms.items()},
    )
