"""Explicit engine registry: configuration names an engine, this table builds it. No subclass scanning.

To add an engine: write a class that satisfies `PPEEngine` or `CustomLabelEngine` (engines.base), add a
factory below, and allow its name in `DetectorSettings`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from services.detector.config import CustomLabelModel, DetectorSettings
from services.detector.engines.base import CustomLabelEngine, EngineUnavailable, PPEEngine
from services.detector.engines.local import LocalCropLabelEngine, LocalPPEEngine, ModelPool
from services.detector.engines.rekognition import (
    RekognitionClient,
    RekognitionCustomLabelEngine,
    RekognitionPPEEngine,
)


@dataclass
class EngineSet:
    """The engines one detector process runs; `start()` them in main, `close()` on the way out."""

    ppe: PPEEngine
    custom_labels: dict[str, CustomLabelEngine] = field(default_factory=dict)
    pool: ModelPool | None = None

    async def start(self) -> None:
        await self.ppe.start()
        for engine in self.custom_labels.values():
            await engine.start()

    async def close(self) -> None:
        for engine in self.custom_labels.values():
            await engine.close()
        await self.ppe.close()

    def model_versions(self, names: list[str]) -> dict[str, str]:
        versions = {self.ppe.name: self.ppe.model_version}
        versions.update({name: self.custom_labels[name].model_version for name in names})
        return versions


def _rekognition_client(settings: DetectorSettings) -> RekognitionClient:
    return RekognitionClient(
        region=settings.aws_region,
        endpoint_url=settings.rekognition_endpoint_url,
        attempts=settings.rekognition_attempts,
    )


PPE_ENGINES: dict[str, Callable[[DetectorSettings, ModelPool | None], PPEEngine]] = {
    "local": lambda settings, pool: LocalPPEEngine(_require(pool)),
    "rekognition": lambda settings, pool: RekognitionPPEEngine(_rekognition_client(settings)),
}

CUSTOM_LABEL_ENGINES: dict[
    str, Callable[[str, CustomLabelModel, DetectorSettings, ModelPool | None], CustomLabelEngine]
] = {
    "crop": lambda name, spec, settings, pool: LocalCropLabelEngine(name, _require(pool), region=spec.region),
    "rekognition": lambda name, spec, settings, pool: RekognitionCustomLabelEngine(
        name, _rekognition_client(settings), project_version_arn=spec.project_version_arn or ""
    ),
}


def _require(pool: ModelPool | None) -> ModelPool:
    if pool is None:
        raise EngineUnavailable("a local engine was configured without a model pool")
    return pool


def build_engines(settings: DetectorSettings) -> EngineSet:
    """The engines the settings name. Nothing is loaded until `EngineSet.start()`."""
    crop_models = {name: spec for name, spec in settings.custom_label_models.items() if spec.engine == "crop"}
    needs_pool = settings.ppe_engine == "local" or bool(crop_models)
    pool = (
        ModelPool(
            workers=settings.workers,
            model_dir=settings.model_dir,
            load_ppe=settings.ppe_engine == "local",
            crop_models=crop_models,
        )
        if needs_pool
        else None
    )
    ppe = PPE_ENGINES[settings.ppe_engine](settings, pool)
    custom = {
        name: CUSTOM_LABEL_ENGINES[spec.engine](name, spec, settings, pool)
        for name, spec in settings.custom_label_models.items()
    }
    return EngineSet(ppe=ppe, custom_labels=custom, pool=pool)
