"""Int8 NanoDet: static quantization of the imported person detector with onnxruntime's own quantizer.

    python -m model_workshop.quantize calibrate     # maintainers: ranges from TRAIN images
    python -m model_workshop.model_store fetch      # everyone: builds nanodet-int8.onnx

Calibration needs labelled-data images, which a user's machine does not have; the ranges it measures are small
(one min/max per tensor) and are committed as `weights/nanodet.calibration.json` (onnxruntime's calibration cache
format) with the sha256 of every image used (`weights/nanodet.calibration.data.csv`). `model_store fetch` then
builds the int8 model from the fp32 import and that cache alone, deterministically (its sha256 is in
`models.lock.json`). Only convolutions are quantized (per channel, int8 weights, uint8 activations, QDQ format):
the graph's dynamic-size arithmetic for the FPN resizes must stay in floating point, and convolutions are
where the time goes; the three output convolutions (class scores and box distributions) stay in float.
Measured effect on speed and accuracy: docs/local-engine.md ("Int8 NanoDet").
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from services.detector.local_engine.model_files import WEIGHTS_DIR

CALIBRATION_CACHE = WEIGHTS_DIR / "nanodet.calibration.json"
CALIBRATION_MANIFEST = WEIGHTS_DIR / "nanodet.calibration.data.csv"
QUANTIZED_OPS = ["Conv"]
# (split file, images drawn from its TRAIN side): construction scenes, face close-ups, hands.
CALIBRATION_SOURCES = (("head_cover", 64), ("face_cover", 16), ("hand_cover", 16))
CALIBRATION_INPUT_SIDE = 576
CALIBRATION_ENLARGE_TO = 512


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


def _quantize(pre_processed: Path, output: Path, cache: Path, reader: object | None) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(pre_processed),
        str(output),
        reader,  # type: ignore[arg-type]  # None: the ranges come from the cache
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=QUANTIZED_OPS,
        nodes_to_exclude=output_convs(pre_processed),
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        extra_options={"CalibMovingAverage": True},
        calibration_cache_path=str(cache),
    )


def _pre_process(fp32: Path, out: Path) -> None:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # Symbolic shape inference cannot follow the converter's dynamic FPN sizes; onnx's own inference is enough.
    quant_pre_process(str(fp32), str(out), skip_symbolic_shape=True)


def build_int8(fp32: Path, output: Path, cache: Path) -> None:
    """Quantize `fp32` (the imported NanoDet) to `output` with the committed calibration ranges."""
    if not cache.is_file():
        raise FileNotFoundError(
            f"calibration cache {cache} is missing: run `python -m model_workshop.quantize calibrate`"
        )
    with tempfile.TemporaryDirectory(prefix="ppe-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        _pre_process(fp32, pre)
        logging.getLogger("onnxruntime.quantization").setLevel(logging.ERROR)
        _quantize(pre, output, cache, None)


def calibration_images(data_root: Path, weights_dir: Path = WEIGHTS_DIR, seed: int = 0) -> list[Path]:
    """A fixed draw of TRAIN-side images of the classifiers' splits (never the held-back side)."""
    from model_workshop.eval_data import held_back

    rng = random.Random(seed)
    chosen: list[Path] = []
    for split_name, count in CALIBRATION_SOURCES:
        train = held_back(split_name, data_root, weights_dir, side="train")
        if train is None:
            raise FileNotFoundError(f"{weights_dir / split_name}.split.json is missing: calibration draws from it")
        chosen += rng.sample(sorted(train), count)
    return chosen


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
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"calibration image {path} cannot be decoded")
        tensor, _ = self._detector.letterbox(image)
        return {self._detector.input_name: tensor}


def calibrate(fp32: Path, data_root: Path, cache: Path, manifest: Path) -> None:
    images = calibration_images(data_root)
    with tempfile.TemporaryDirectory(prefix="ppe-calib-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        _pre_process(fp32, pre)
        cache.unlink(missing_ok=True)
        print(f"calibrating on {len(images)} TRAIN-side images ...", flush=True)
        _quantize(pre, Path(tmp) / "int8.onnx", cache, _LetterboxReader(fp32, images))
    lines = ["file,sha256"]
    for path in images:
        lines.append(f"{path.relative_to(data_root)},{hashlib.sha256(path.read_bytes()).hexdigest()}")
    manifest.write_text("\n".join(lines) + "\n")
    print(f"wrote {cache} and {manifest}")


def main(argv: list[str] | None = None) -> int:
    from model_workshop.model_store import default_model_dir, load_lock
    from model_workshop.settings import shared_data_dir

    parser = argparse.ArgumentParser(prog="quantize", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["calibrate"])
    parser.add_argument("--data", type=Path, default=None, help="shared data root (default ../shared/data)")
    parser.add_argument("--model-dir", type=Path, default=None, help="where the fp32 nanodet.onnx was built")
    args = parser.parse_args(argv)
    _, models = load_lock()
    fp32 = (args.model_dir or default_model_dir()) / models["nanodet"].file
    if not fp32.is_file():
        fix = "python -m model_workshop.model_store fetch"
        print(f"error: {fp32} is missing: run `{fix}`", file=sys.stderr)
        return 2
    calibrate(fp32, args.data or shared_data_dir(), CALIBRATION_CACHE, CALIBRATION_MANIFEST)
    print("now rebuild: rm $PPE_MODEL_DIR/nanodet-int8.onnx; model_store fetch; update its sha256 in models.lock.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
