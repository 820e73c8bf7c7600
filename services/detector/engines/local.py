"""The offline engines, run in a pool of model worker processes (see local_worker).

One pool serves the PPE engine and the crop custom-label models, so every worker holds each model once.
Backpressure comes from the consumer's concurrency cap: at most that many frames wait for a worker.
"""

import asyncio
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from services.detector.config import CustomLabelModel
from services.detector.engines import local_worker
from services.detector.engines.base import CustomLabelEngine, EngineError, EngineUnavailable, ImageInput
from services.detector.metrics import STAGE_SECONDS
from shared.logging import get_logger
from shared.rekognition import (
    BoundingBox,
    DetectCustomLabelsResponse,
    DetectProtectiveEquipmentResponse,
    SummarizationAttributes,
)

log = get_logger(__name__)
T = TypeVar("T")


def _record(result: local_worker.WorkerResult) -> local_worker.WorkerResult:
    """The worker's own timings (decode, model) as `ppe_detector_stage_seconds{stage="worker:..."}`."""
    for step, ms in result.timings_ms.items():
        STAGE_SECONDS.labels(f"worker:{step}").observe(ms / 1000)
    return result


class ModelPool:
    """A process pool whose workers load the local models once (pool initializer)."""

    def __init__(
        self, *, workers: int, model_dir: Path | None, load_ppe: bool, crop_models: dict[str, CustomLabelModel]
    ) -> None:
        self.workers = workers
        specs = {name: spec.model_dump(mode="json") for name, spec in crop_models.items()}
        self._init_args = (str(model_dir) if model_dir else None, specs, load_ppe)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = asyncio.Lock()
        self.versions: dict[str, str] = {}

    def _new_executor(self) -> ProcessPoolExecutor:
        # forkserver: never fork the event loop process with its threads and open sockets
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("forkserver"),
            initializer=local_worker.init_worker,
            initargs=self._init_args,
        )

    async def start(self) -> None:
        async with self._lock:
            if self._executor is not None:
                return
            self._executor = self._new_executor()
        # one warm-up per worker: spawns all of them and fails fast if a model is missing
        results = await asyncio.gather(*(self.run(local_worker.versions) for _ in range(self.workers)))
        self.versions = results[0]
        log.info("local model workers ready", workers=self.workers, versions=self.versions)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        executor = self._executor
        if executor is None:
            raise EngineUnavailable("model pool not started")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, function, *args)
        except BrokenProcessPool as exc:
            # A worker died (killed, out of memory, native crash): replace the pool, retry the frame later.
            async with self._lock:
                if self._executor is executor:
                    log.error("model worker died; restarting the pool", error=str(exc))
                    executor.shutdown(wait=False, cancel_futures=True)
                    self._executor = self._new_executor()
            raise EngineError(f"model worker process died: {exc}") from exc

    async def close(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)


class LocalPPEEngine:
    """`local`: services.detector.local_engine.pipeline.LocalPipeline in the model pool."""

    name = "local"

    def __init__(self, pool: ModelPool) -> None:
        self._pool = pool

    @property
    def model_version(self) -> str:
        return self._pool.versions.get("ppe", "unknown")

    async def start(self) -> None:
        await self._pool.start()

    async def close(self) -> None:
        await self._pool.close()

    async def detect_ppe(
        self, image: ImageInput, attributes: SummarizationAttributes | None
    ) -> DetectProtectiveEquipmentResponse:
        result = _record(await self._pool.run(local_worker.detect_ppe, image.data, attributes))
        if result.ppe is None:
            raise EngineError("the model worker answered no PPE response")
        return result.ppe

    def can_fuse(self, engine: CustomLabelEngine) -> bool:
        """Whether `engine` can run inside this engine's worker call (a person-crop model in the same pool)."""
        return isinstance(engine, LocalCropLabelEngine) and engine.pool is self._pool and engine.needs_persons

    async def detect_ppe_with_labels(
        self, image: ImageInput, attributes: SummarizationAttributes | None, engines: Sequence[CustomLabelEngine]
    ) -> tuple[DetectProtectiveEquipmentResponse, dict[str, DetectCustomLabelsResponse]]:
        """PPE and the person-crop models in one worker call: one decode, one round trip."""
        result = _record(
            await self._pool.run(
                local_worker.detect_ppe_and_crops, image.data, attributes, [engine.name for engine in engines]
            )
        )
        if result.ppe is None:
            raise EngineError("the model worker answered no PPE response")
        return result.ppe, result.labels


class LocalCropLabelEngine:
    """A crop classifier (services.detector.local_engine.custom_labels.CropLabeller) in the model pool.

    It classifies each person's torso (or whole box), so it runs after the PPE engine found the persons;
    with region "image" it classifies the whole frame and runs alongside the PPE engine.
    """

    def __init__(self, name: str, pool: ModelPool, *, region: str | None = None) -> None:
        self.name = name
        self.pool = pool
        self.needs_persons = region != "image"

    @property
    def model_version(self) -> str:
        return self.pool.versions.get(f"crop:{self.name}", "unknown")

    async def start(self) -> None:
        await self.pool.start()

    async def close(self) -> None:
        await self.pool.close()

    async def detect_labels(
        self,
        image: ImageInput,
        *,
        persons: Sequence[BoundingBox] | None = None,
        min_confidence: float | None = None,
        max_results: int | None = None,
    ) -> DetectCustomLabelsResponse:
        if self.needs_persons and not persons:
            return DetectCustomLabelsResponse()
        result = await self.pool.run(
            local_worker.detect_crop_labels,
            self.name,
            image.data,
            list(persons) if self.needs_persons and persons else None,
            min_confidence,
        )
        response = _record(result).labels[self.name]
        if max_results is not None:
            response = DetectCustomLabelsResponse(CustomLabels=response.CustomLabels[:max_results])
        return response
