"""Code that runs inside a model worker process: models are loaded once by the pool initializer.

Each worker runs its models with one intra-op thread; the pool has one worker per core, so two frames are
analysed at once on a 2-core machine instead of one frame fighting itself for both cores.
"""

import os
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from services.detector.adapters.images import decode_image
from services.detector.engines.base import EngineError, EngineUnavailable, InvalidImage
from shared.rekognition import (
    BoundingBox,
    DetectCustomLabelsResponse,
    DetectProtectiveEquipmentResponse,
    SummarizationAttributes,
)

_STATE: dict[str, Any] = {}
T = TypeVar("T")


def init_worker(
    model_dir: str | None,
    crop_models: dict[str, dict[str, Any]],
    load_ppe: bool,
    engine_settings: dict[str, Any] | None = None,
) -> None:
    """Pool initializer: load every configured local model once. Failures are kept and raised per call.

    `engine_settings` overrides fields of the PPE engine's EngineSettings (the workshop's evaluation uses it)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Ctrl-C reaches the whole process group: the parent decides when workers stop (it drains first)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import cv2

    cv2.setNumThreads(1)
    try:
        if load_ppe:
            from services.detector.local_engine.pipeline import EngineSettings, LocalPipeline

            _STATE["ppe"] = LocalPipeline(
                Path(model_dir) if model_dir else None,
                intra_op_threads=1,
                settings=EngineSettings(**(engine_settings or {})),
            )
        for name, spec in crop_models.items():
            from services.detector.local_engine.custom_labels import CropLabeller

            _STATE[f"crop:{name}"] = CropLabeller(
                Path(spec["model_path"]),
                region=spec.get("region"),
                label_names=spec.get("label_names") or None,
                min_confidence=spec.get("min_confidence", 50.0),
                threads=1,
            )
    except Exception as exc:  # noqa: BLE001 - reported to the parent with its message on the first call
        _STATE["error"] = f"{type(exc).__name__}: {exc}"


def _loaded(key: str) -> Any:
    if "error" in _STATE:
        raise EngineUnavailable(f"local models could not be loaded: {_STATE['error']}")
    if key not in _STATE:
        raise EngineUnavailable(f"model {key!r} is not loaded in this worker")
    return _STATE[key]


def versions() -> dict[str, str]:
    """Model versions (also the warm-up call that proves the models loaded)."""
    time.sleep(0.2)  # keeps this worker busy so that concurrent warm-ups spawn every worker
    ppe = _loaded("ppe") if "ppe" in _STATE or "error" in _STATE else None
    result = {
        key: str(getattr(model, "model_version", "unknown"))
        for key, model in _STATE.items()
        if key == "ppe" or key.startswith("crop:")
    }
    if ppe is not None:
        result["ppe"] = str(ppe.model_version)
    return result


def _run_ppe(call: Callable[..., T], *args: Any) -> T:
    """Run the PPE engine; its errors cross the process boundary as the picklable types the parent knows."""
    try:
        return call(*args)
    except (InvalidImage, EngineUnavailable):
        raise
    except Exception as exc:  # noqa: BLE001 - crosses the process boundary as a picklable EngineError
        raise EngineError(f"local PPE model failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}") from None


@dataclass(frozen=True)
class WorkerResult:
    """What one worker call returns, pickled once across the process boundary: typed responses and timings.

    `timings_ms`: "decode", "ppe" and "labels:<model>" as measured inside the worker (the parent records them).
    """

    ppe: DetectProtectiveEquipmentResponse | None
    labels: dict[str, DetectCustomLabelsResponse] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def detect_ppe(data: bytes, attributes: SummarizationAttributes | None) -> WorkerResult:
    """Decode and run the PPE engine."""
    engine = _loaded("ppe")
    started = time.perf_counter()
    image = decode_image(data)
    decode_ms = _since(started)
    began = time.perf_counter()
    response = _run_ppe(engine.detect, image, attributes)
    return WorkerResult(ppe=response, timings_ms={"decode": decode_ms, "ppe": _since(began)})


def _crop_labels(name: str, call: Callable[[], list[Any]], min_confidence: float | None) -> list[Any]:
    try:
        labels: list[Any] = call()
    except (InvalidImage, EngineUnavailable):
        raise
    except Exception as exc:  # noqa: BLE001 - crosses the process boundary as a picklable EngineError
        raise EngineError(f"custom-label model {name} failed: {type(exc).__name__}: {exc}") from None
    if min_confidence is not None:
        labels = [label for label in labels if label.Confidence >= min_confidence]
    return labels


def detect_crop_labels(
    name: str, data: bytes, persons: list[BoundingBox] | None, min_confidence: float | None
) -> WorkerResult:
    """Decode and run one crop custom-label model on the given person boxes."""
    engine = _loaded(f"crop:{name}")
    started = time.perf_counter()
    image = decode_image(data)
    decode_ms = _since(started)
    began = time.perf_counter()
    found = _crop_labels(name, lambda: engine.detect(image, persons), min_confidence)
    return WorkerResult(
        ppe=None,
        labels={name: DetectCustomLabelsResponse(CustomLabels=found)},
        timings_ms={"decode": decode_ms, f"labels:{name}": _since(began)},
    )


def detect_ppe_and_crops(
    data: bytes, attributes: SummarizationAttributes | None, crop_names: list[str], min_confidence: float | None = None
) -> WorkerResult:
    """PPE engine, then the crop models on the persons it found, on one decode of the frame."""
    ppe = _loaded("ppe")
    started = time.perf_counter()
    image = decode_image(data)
    timings = {"decode": _since(started)}
    began = time.perf_counter()
    response, torsos = _run_ppe(ppe.detect_with_torsos, image, attributes)
    timings["ppe"] = _since(began)
    height, width = image.shape[:2]
    persons = [person.BoundingBox for person in response.Persons]
    labels: dict[str, DetectCustomLabelsResponse] = {}
    for name in crop_names:
        engine = _loaded(f"crop:{name}")
        began = time.perf_counter()

        def run(engine: Any = engine) -> list[Any]:
            if not persons:
                return []
            if engine.region == "torso":  # the torso the pose found, not body proportions of the box
                return list(engine.detect_regions(image, [_xyxy(t, width, height) for t in torsos]))
            return list(engine.detect(image, persons))

        found = _crop_labels(name, run, min_confidence)
        labels[name] = DetectCustomLabelsResponse(CustomLabels=found)
        timings[f"labels:{name}"] = _since(began)
    return WorkerResult(ppe=response, labels=labels, timings_ms=timings)


def _xyxy(box: Any, width: int, height: int) -> tuple[float, float, float, float]:
    x1, y1 = box.Left * width, box.Top * height
    return (x1, y1, x1 + box.Width * width, y1 + box.Height * height)
