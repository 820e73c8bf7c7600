"""Code that runs inside a model worker process: models are loaded once by the pool initializer.

Each worker runs its models with one intra-op thread; the pool has one worker per core, so two frames are
analysed at once on a 2-core machine instead of one frame fighting itself for both cores.
"""

import os
import signal
import time
import traceback
from pathlib import Path
from typing import Any

from services.detector.adapters.images import decode_image
from services.detector.engines.base import EngineError, EngineUnavailable, InvalidImage

_STATE: dict[str, Any] = {}


def init_worker(model_dir: str | None, crop_models: dict[str, dict[str, Any]], load_ppe: bool) -> None:
    """Pool initializer: load every configured local model once. Failures are kept and raised per call."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Ctrl-C reaches the whole process group: the parent decides when workers stop (it drains first)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import cv2

    cv2.setNumThreads(1)
    try:
        if load_ppe:
            from services.detector.local_engine.pipeline import LocalPPEEngine

            _STATE["ppe"] = LocalPPEEngine(Path(model_dir) if model_dir else None, intra_op_threads=1)
        for name, spec in crop_models.items():
            from services.detector.local_engine.custom_labels import CropLabelEngine

            _STATE[f"crop:{name}"] = CropLabelEngine(
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


def detect_ppe(data: bytes, attributes_json: str | None) -> tuple[str, float, float]:
    """Decode and run the PPE engine. Returns (response JSON, decode ms, model ms)."""
    try:
        return _detect_ppe_decoded(data, attributes_json)
    finally:
        _STATE.pop("last_image", None)


def _detect_ppe_decoded(data: bytes, attributes_json: str | None) -> tuple[str, float, float]:
    from shared.rekognition import SummarizationAttributes

    engine = _loaded("ppe")
    started = time.perf_counter()
    image = _STATE["last_image"] = decode_image(data)
    decoded = time.perf_counter()
    attributes = SummarizationAttributes.model_validate_json(attributes_json) if attributes_json else None
    from services.detector.local_engine.pipeline import InvalidImageError

    try:
        response = engine.detect(image, attributes)
    except InvalidImageError as exc:
        raise InvalidImage(str(exc)) from None
    except (InvalidImage, EngineUnavailable):
        raise
    except Exception as exc:  # noqa: BLE001 - crosses the process boundary as a picklable EngineError
        raise EngineError(f"local PPE model failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}") from None
    done = time.perf_counter()
    return response.model_dump_json(), (decoded - started) * 1000, (done - decoded) * 1000


def detect_crop_labels(name: str, data: bytes, persons_json: str | None, min_confidence: float | None) -> str:
    """Decode and run one crop custom-label model on the given person boxes. Returns the response JSON."""
    from pydantic import TypeAdapter

    from shared.rekognition import BoundingBox, DetectCustomLabelsResponse

    engine = _loaded(f"crop:{name}")
    image = decode_image(data)
    persons = TypeAdapter(list[BoundingBox]).validate_json(persons_json) if persons_json is not None else None
    try:
        labels = engine.detect(image, persons)
    except (InvalidImage, EngineUnavailable):
        raise
    except Exception as exc:  # noqa: BLE001
        raise EngineError(f"custom-label model {name} failed: {type(exc).__name__}: {exc}") from None
    if min_confidence is not None:
        labels = [label for label in labels if label.Confidence >= min_confidence]
    return str(DetectCustomLabelsResponse(CustomLabels=labels).model_dump_json())


def detect_ppe_and_crops(
    data: bytes, attributes_json: str | None, crop_names: list[str], min_confidence: float | None = None
) -> tuple[str, dict[str, str]]:
    """PPE engine, then the crop models on the persons it found, on one decode of the frame.

    Returns (PPE response JSON, {model name: DetectCustomLabels response JSON}).
    """
    from shared.rekognition import DetectCustomLabelsResponse, DetectProtectiveEquipmentResponse

    ppe_json, _decode_ms, _model_ms = _detect_ppe_decoded(data, attributes_json)
    image = _STATE["last_image"]
    persons = [person.BoundingBox for person in DetectProtectiveEquipmentResponse.model_validate_json(ppe_json).Persons]
    labels: dict[str, str] = {}
    for name in crop_names:
        engine = _loaded(f"crop:{name}")
        try:
            found = engine.detect(image, persons) if persons else []
        except Exception as exc:  # noqa: BLE001
            raise EngineError(f"custom-label model {name} failed: {type(exc).__name__}: {exc}") from None
        if min_confidence is not None:
            found = [label for label in found if label.Confidence >= min_confidence]
        labels[name] = DetectCustomLabelsResponse(CustomLabels=found).model_dump_json()
    _STATE.pop("last_image", None)
    return ppe_json, labels
