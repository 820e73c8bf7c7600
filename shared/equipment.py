"""Required PPE beyond Rekognition's three types, and the ONE verdict per person that notifier and reporting use.

An equipment name is either a Rekognition type (FACE_COVER, HEAD_COVER, HAND_COVER), judged from the body parts
of the PPE response exactly as the Summary is (`shared.rekognition`), or a *custom equipment* (e.g.
`hi_vis_vest`), judged from the custom labels the detector attached to the person (`FrameAnalyzed.custom_labels`,
`person_id`: the label box lies mostly inside the person box, `services.detector.domain.owner_of`).

The catalogue of custom equipment is one platform setting, `PPE_CUSTOM_EQUIPMENT` (JSON), read by every
service: which label names mean "worn" and which mean "seen without". Default: the shipped vest model's
labels (`hi_vis_vest` / `no_hi_vis_vest`, `DETECTOR_CUSTOM_LABEL_MODELS`). A rule naming anything else is
refused with `UnknownEquipment`.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.rekognition import (
    MIN_RETURNED_CONFIDENCE,
    REQUIRED_PARTS,
    BodyPartName,
    EquipmentType,
    ProtectiveEquipmentPerson,
    Verdict,
    _part_verdict,
)

EquipmentName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
BUILT_IN: tuple[str, ...] = tuple(t.value for t in EquipmentType)


class UnknownEquipment(ValueError):
    """A rule names equipment that is neither a Rekognition type nor in PPE_CUSTOM_EQUIPMENT."""


class CustomEquipment(BaseModel):
    """How one custom equipment is judged from custom labels attached to a person."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    present: list[str] = Field(min_length=1, description="Label names meaning the person wears it, e.g. hi_vis_vest.")
    absent: list[str] = Field(
        default_factory=list,
        description="Label names meaning the person is seen without it, e.g. no_hi_vis_vest. When empty (a model "
        "that only finds the item), a confident person with no matching label is 'without'; otherwise a person "
        "with no label at all is 'indeterminate' (the model did not judge them).",
    )


def default_custom_equipment() -> dict[str, CustomEquipment]:
    """The shipped vest classifier's labels (services.detector.config.default_custom_label_models)."""
    return {"hi_vis_vest": CustomEquipment(present=["hi_vis_vest"], absent=["no_hi_vis_vest"])}


@dataclass(frozen=True)
class Catalogue:
    """Every equipment name a rule may require: Rekognition's types and the configured custom ones."""

    custom: Mapping[str, CustomEquipment]

    @property
    def names(self) -> tuple[str, ...]:
        return (*BUILT_IN, *sorted(self.custom))

    def check(self, names: Iterable[str], *, where: str = "required_equipment") -> list[str]:
        """The names, de-duplicated in order; raises UnknownEquipment naming every unknown one."""
        wanted = list(dict.fromkeys(str(n) for n in names))
        unknown = [n for n in wanted if n not in BUILT_IN and n not in self.custom]
        if unknown:
            raise UnknownEquipment(
                f"{where} names unknown equipment {unknown}; known: {list(self.names)} "
                "(custom equipment is configured in PPE_CUSTOM_EQUIPMENT)"
            )
        return wanted


@dataclass(frozen=True)
class PersonLabel:
    """A custom label attached to one person (the wire type is shared.contracts.AttributedCustomLabel)."""

    name: str
    confidence: float


@dataclass(frozen=True)
class TypeOutcome:
    outcome: Verdict
    confidence: float  # the weakest evidence behind the outcome, 0..100


@dataclass(frozen=True)
class PersonOutcome:
    verdict: Verdict
    per_type: dict[str, TypeOutcome]  # every required name, in the order required
    missing: tuple[str, ...]  # required names judged 'without' (only when verdict is 'without')
    confidence: float  # of the violation: min(person, evidence of each missing item); the person's otherwise


def _part_confidence(person: ProtectiveEquipmentPerson, part: BodyPartName, equipment: EquipmentType) -> float:
    """Evidence behind one part's verdict: the best matching detection, else the body part itself."""
    body_part = next((bp for bp in person.BodyParts if bp.Name == part), None)
    if body_part is None:
        return 0.0
    detections = [d for d in body_part.EquipmentDetections if d.Type == equipment]
    if not detections:
        return body_part.Confidence
    return max(min(d.Confidence, d.CoversBodyPart.Confidence) for d in detections)


def _built_in_outcome(person: ProtectiveEquipmentPerson, equipment: EquipmentType, threshold: float) -> TypeOutcome:
    parts = REQUIRED_PARTS[equipment]
    confidence = min(_part_confidence(person, part, equipment) for part in parts)
    if person.Confidence < threshold:
        return TypeOutcome("indeterminate", confidence)
    verdicts = [_part_verdict(person, part, equipment, threshold) for part in parts]
    if "without" in verdicts:
        return TypeOutcome("without", confidence)
    if "indeterminate" in verdicts:
        return TypeOutcome("indeterminate", confidence)
    return TypeOutcome("with", confidence)


def _custom_outcome(
    person: ProtectiveEquipmentPerson, spec: CustomEquipment, labels: Sequence[PersonLabel], threshold: float
) -> TypeOutcome:
    present = [label.confidence for label in labels if label.name in spec.present]
    absent = [label.confidence for label in labels if label.name in spec.absent]
    if person.Confidence < threshold:
        return TypeOutcome("indeterminate", max([*present, *absent], default=0.0))
    if any(c >= threshold for c in present):
        return TypeOutcome("with", max(present))
    if any(c >= threshold for c in absent):
        return TypeOutcome("without", max(absent))
    if not spec.absent and not present:
        return TypeOutcome("without", person.Confidence)  # a finder model: nothing found on a confident person
    return TypeOutcome("indeterminate", max([*present, *absent], default=0.0))


def judge_person(
    person: ProtectiveEquipmentPerson,
    labels: Sequence[PersonLabel],
    *,
    required: Sequence[str],
    min_confidence: float,
    catalogue: Catalogue,
) -> PersonOutcome:
    """One person's verdict over every required item, built-in and custom alike.

    Same rules as Rekognition's Summary (`shared.rekognition.person_verdict`) for the built-in types: a
    confident violation of any required item wins over an unknown one; a person below MinConfidence (floor
    50) is indeterminate; nothing required means 'with'. Names not in the catalogue raise UnknownEquipment.
    """
    threshold = max(min_confidence, MIN_RETURNED_CONFIDENCE)
    per_type: dict[str, TypeOutcome] = {}
    for name in catalogue.check(required):
        if name in BUILT_IN:
            per_type[name] = _built_in_outcome(person, EquipmentType(name), threshold)
        else:
            per_type[name] = _custom_outcome(person, catalogue.custom[name], labels, threshold)
    outcomes = [t.outcome for t in per_type.values()]
    verdict: Verdict = "with"
    if "without" in outcomes:
        verdict = "without"
    elif "indeterminate" in outcomes:
        verdict = "indeterminate"
    if verdict != "without":
        return PersonOutcome(verdict, per_type, (), person.Confidence)
    missing = tuple(name for name, t in per_type.items() if t.outcome == "without")
    evidence = [person.Confidence]
    for name in missing:
        if name in BUILT_IN:
            parts = set(REQUIRED_PARTS[EquipmentType(name)])
            evidence += [bp.Confidence for bp in person.BodyParts if bp.Name in parts]
        else:
            evidence.append(per_type[name].confidence)
    return PersonOutcome(verdict, per_type, missing, min(evidence))
