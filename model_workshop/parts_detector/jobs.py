"""Which cached letterbox variants each training image gets (cheap augmentation: flips and smaller scales)."""

from __future__ import annotations

from model_workshop.parts_detector.data import Sample
from model_workshop.parts_detector.features import Variant

RUNTIME = Variant(flip=False, input_side=576, enlarge_to=512)  # the engine's letterbox (EngineSettings)
SCENE_VARIANTS = (RUNTIME, Variant(True, 576, 512))
# Glove photos are close-ups: smaller letterboxes make their hands nearer the size of hands in site scenes.
CLOSEUP_VARIANTS = (RUNTIME, Variant(True, 576, 512), Variant(False, 320, 320), Variant(True, 256, 256),
                    Variant(False, 192, 192))
CLOSEUP_SOURCES = frozenset({"gloves"})


def variants_for(sample: Sample) -> tuple[Variant, ...]:
    return CLOSEUP_VARIANTS if sample.source in CLOSEUP_SOURCES else SCENE_VARIANTS


def jobs(samples: list[Sample]) -> list[tuple[str, Variant]]:
    return [(str(s.image), v) for s in samples for v in variants_for(s)]
