"""Int8 builds of the imported models (NanoDet, MoveNet) with onnxruntime's own static quantizer.

    python -m services.detector.local_engine.quantize calibrate nanodet-int8   # maintainers: TRAIN images
    python -m services.detector.local_engine.model_store fetch                 # everyone: builds the int8 files

Calibration needs labelled-data images, which a user's machine does not have; the ranges it measures are small
(one min/max per tensor) and are committed as `weights/<source>.calibration.json` (onnxruntime's calibration
cache format) with the sha256 of every image used (`weights/<source>.calibration.data.csv`). `model_store fetch`
then builds each int8 model from the float import and that cache alone, deterministically (its sha256 is in
`models.lock.json`). Per channel int8 weights, uint8 activations, QDQ format; which ops are quantized and which
nodes stay float is each model's `Recipe`. Measured effect on speed and accuracy: docs/local-engine.md
("Int8 NanoDet")."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

WEIGHTS_DIR = Path(__file__).with_name("weights")
# (split file, images drawn from its TRAIN side): construction scenes, face close-ups, hands.
CALIBRATION_SOURCES = (("head_cover", 64), ("face_cover", 16), ("hand_cover", 16))
CALIBRATION_INPUT_SIDE = 576
CALIBRATION_ENLARGE_TO = 512
POSE_CROPS_PER_IMAGE = 4  # MoveNet calibration: the most confident person boxes of each image
POSE_MIN_SCORE = 0.3


def output_convs(model_path: Path) -> list[str]:
    """The last convolution before each graph output (NanoDet's class / box heads), kept in float.

    Chosen on the TRAIN split: quantizing them too cost 0.4 % of person recall, keeping them 0.1 %, at the same
    speed (docs/local-engine.md, "Int8 NanoDet").
    """
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    producer = {out: node for node in graph.node for out in node.output}
    found: set[str] = set()
    for output in graph.output:
        stack = [output.name]
        while stack:
            node = producer.get(stack.pop())
            if node is None:
                continue
            if node.op_type == "Conv":
                found.add(node.name)
            else:
                stack.extend(node.input)
    return sorted(found)


def _nothing_kept_float(model_path: Path) -> list[str]:
    return []


@dataclass(frozen=True)
class Recipe:
    """How one int8 model is made from its float import (the lock entry's `options.from`)."""

    source: str  # model-store name of the float model
    ops: tuple[str, ...]  # onnxruntime op types quantized
    keep_float: Callable[[Path], list[str]]  # node names left in float
    cache: Path  # committed calibration ranges (onnxruntime's calibration cache format)
    manifest: Path  # sha256 of every calibration image

    def reader(self, fp32: Path, images: list[Path]) -> Any:
        return _LetterboxReader(fp32, images) if self.source == "nanodet" else _PoseCropReader(fp32, images)


RECIPES: dict[str, Recipe] = {
    # Convolutions only: the converter's dynamic FPN-size arithmetic must stay float (quantizing every op made
    # one resize come out 35 rows instead of 36); quantizing LeakyRelu / Concat / Pad / Transpose too was slower.
    "nanodet-int8": Recipe(
        "nanodet",
        ("Conv",),
        output_convs,
        WEIGHTS_DIR / "nanodet.calibration.json",
        WEIGHTS_DIR / "nanodet.calibration.data.csv",
    ),
    # Conv alone gains nothing here (every ReLU6 / residual Add between two int8 convs goes back to float).
    "movenet-lightning-int8": Recipe(
        "movenet-lightning",
        ("Conv", "Clip", "Add", "Relu", "Concat", "Resize"),
        _nothing_kept_float,
        WEIGHTS_DIR / "movenet-lightning.calibration.json",
        WEIGHTS_DIR / "movenet-lightning.calibration.data.csv",
    ),
}


def _quantize(recipe: Recipe, pre_processed: Path, output: Path, reader: object | None) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(pre_processed),
        str(output),
        reader,  # type: ignore[arg-type]  # None: the ranges come from the cache
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(recipe.ops),
        nodes_to_exclude=recipe.keep_float(pre_processed),
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        extra_options={"CalibMovingAverage": True},
        calibration_cache_path=str(recipe.cache),
    )


def _pre_process(fp32: Path, out: Path) -> None:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # Symbolic shape inference cannot follow the converter's dynamic FPN sizes; onnx's own inference is enough.
    quant_pre_process(str(fp32), str(out), skip_symbolic_shape=True)


def build_int8(name: str, fp32: Path, output: Path) -> None:
    """Quantize `fp32` (the float import) to `output` with the recipe's committed calibration ranges."""
    recipe = RECIPES[name]
    if not recipe.cache.is_file():
        raise FileNotFoundError(
            f"calibration cache {recipe.cache} is missing: "
            f"run `python -m services.detector.local_engine.quantize calibrate {name}`"
        )
    with tempfile.TemporaryDirectory(prefix="ppe-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        _pre_process(fp32, pre)
        logging.getLogger("onnxruntime.quantization").setLevel(logging.ERROR)
        _quantize(recipe, pre, output, None)


def calibration_images(data_root: Path, weights_dir: Path = WEIGHTS_DIR, seed: int = 0) -> list[Path]:
    """A fixed draw of TRAIN-side images of the classifiers' splits (never the held-back side)."""
    rng = random.Random(seed)
    chosen: list[Path] = []
    for split_name, count in CALIBRATION_SOURCES:
        train = sorted(json.loads((weights_dir / f"{split_name}.split.json").read_text())["train"])
        chosen += [data_root / rel for rel in rng.sample(train, count)]
    return chosen


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"calibration image {path} cannot be decoded")
    return image


class _LetterboxReader:
    """onnxruntime CalibrationDataReader over images, preprocessed exactly as the engine's PersonDetector does."""

    def __init__(self, fp32: Path, images: list[Path]) -> None:
        from services.detector.local_engine.persons import PersonDetector

        self._detector = PersonDetector(fp32, input_side=CALIBRATION_INPUT_SIDE, enlarge_to=CALIBRATION_ENLARGE_TO)
        self._images: Iterator[Path] = iter(images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        path = next(self._images, None)
        if path is None:
            return None
        tensor, _ = self._detector.letterbox(_read(path))
        return {self._detector.input_name: tensor}


class _PoseCropReader:
    """MoveNet's input for the most confident float-NanoDet persons of each image, cut as the engine cuts them."""

    def __init__(self, fp32: Path, images: list[Path]) -> None:
        from services.detector.local_engine.model_store import load_lock
        from services.detector.local_engine.persons import PersonDetector, PoseEstimator

        nanodet = fp32.parent / load_lock()[1]["nanodet"].file
        self._detector = PersonDetector(nanodet, input_side=CALIBRATION_INPUT_SIDE, enlarge_to=CALIBRATION_ENLARGE_TO)
        self._pose = PoseEstimator(fp32)
        self._images: Iterator[Path] = iter(images)
        self._pending: list[np.ndarray] = []

    def get_next(self) -> dict[str, np.ndarray] | None:
        while not self._pending:
            path = next(self._images, None)
            if path is None:
                return None
            image = _read(path)
            boxes = self._detector.detect(image, min_score=POSE_MIN_SCORE, iou=0.65, max_persons=POSE_CROPS_PER_IMAGE)
            self._pending = [self._pose.crop_tensor(image, box) for box in boxes.boxes]
        return {self._pose.input_name: self._pending.pop(0)}


def calibrate(name: str, model_dir: Path, data_root: Path) -> None:
    from services.detector.local_engine.model_store import load_lock

    recipe = RECIPES[name]
    fp32 = model_dir / load_lock()[1][recipe.source].file
    images = calibration_images(data_root)
    with tempfile.TemporaryDirectory(prefix="ppe-calib-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        _pre_process(fp32, pre)
        recipe.cache.unlink(missing_ok=True)
        print(f"calibrating {name} on {len(images)} TRAIN-side images ...", flush=True)
        _quantize(recipe, pre, Path(tmp) / "int8.onnx", recipe.reader(fp32, images))
    lines = ["file,sha256"]
    for path in images:
        lines.append(f"{path.relative_to(data_root)},{hashlib.sha256(path.read_bytes()).hexdigest()}")
    recipe.manifest.write_text("\n".join(lines) + "\n")
    print(f"wrote {recipe.cache} and {recipe.manifest}")


def main(argv: list[str] | None = None) -> int:
    from services.detector.local_engine.evaluate import shared_data_dir
    from services.detector.local_engine.model_store import default_model_dir, load_lock

    parser = argparse.ArgumentParser(prog="quantize", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["calibrate"])
    parser.add_argument("model", choices=sorted(RECIPES), help="the int8 model whose ranges are measured")
    parser.add_argument("--data", type=Path, default=None, help="shared data root (default ../shared/data)")
    parser.add_argument("--model-dir", type=Path, default=None, help="where the float models were built")
    args = parser.parse_args(argv)
    model_dir = args.model_dir or default_model_dir()
    source = model_dir / load_lock()[1][RECIPES[args.model].source].file
    if not source.is_file():
        fix = "python -m services.detector.local_engine.model_store fetch"
        print(f"error: {source} is missing: run `{fix}`", file=sys.stderr)
        return 2
    calibrate(args.model, model_dir, args.data or shared_data_dir())
    print(f"now rebuild: rm $PPE_MODEL_DIR/{args.model}.onnx; model_store fetch; put the new sha256s in models.lock.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
