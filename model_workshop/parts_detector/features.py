"""NanoDet's FPN features (strides 8 / 16 / 32): where they are in the graph, and a disk cache of them.

The part head is trained on the features of the very graph it is grafted onto at run time (the int8 NanoDet),
so the training inputs are bit-for-bit what the head sees in production.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from services.detector.local_engine.persons import NANODET_STRIDES, letterbox

FEATURE_CHANNELS = 128
# the part head's graph inputs, renamed to the FPN outputs when it is grafted (no torch needed to graft)
HEAD_INPUTS = ("fpn_s8", "fpn_s16", "fpn_s32")


def fpn_feature_names(model: onnx.ModelProto) -> list[str]:
    """The FPN tensors feeding NanoDet's per-level heads, ordered stride 8, 16, 32.

    Each score output is traced back to its head's first convolution (Conv -> LeakyRelu -> Conv -> Split);
    that convolution's input is the level's FPN feature map (after DequantizeLinear in the int8 graph).
    """
    producer = {out: node for node in model.graph.node for out in node.output}
    found: list[str] = []
    for output in model.graph.output:
        node = producer[output.name]
        while node.op_type != "LeakyRelu":
            node = producer[node.input[0]]
        node = producer[node.input[0]]
        while node.op_type != "Conv":
            node = producer[node.input[0]]
        if node.input[0] not in found:
            found.append(node.input[0])
    if len(found) != len(NANODET_STRIDES):
        raise ValueError(f"expected {len(NANODET_STRIDES)} FPN levels, found {found}")
    # Order by resolution: run a dummy 64x64 input once and sort by the number of cells.
    with_outputs = expose(model, found)
    sess = ort.InferenceSession(with_outputs.SerializeToString(), providers=["CPUExecutionProvider"])
    shapes = sess.run(found, {model.graph.input[0].name: np.zeros((1, 3, 64, 64), np.float32)})
    return [name for _, name in sorted(zip((-s.shape[2] * s.shape[3] for s in shapes), found, strict=True))]


def expose(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of the model with `names` added as graph outputs."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for name in names:
        copy.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return copy


class FeatureExtractor:
    def __init__(self, nanodet_path: Path, *, threads: int = 2) -> None:
        model = onnx.load(str(nanodet_path))
        self.names = fpn_feature_names(model)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            expose(model, self.names).SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self._input = model.graph.input[0].name

    def __call__(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Per level [128, h, w] float32."""
        return [f[0] for f in self._session.run(self.names, {self._input: tensor})]


@dataclass(frozen=True)
class Variant:
    """How a training image is letterboxed before its features are cached (augmentation)."""

    flip: bool
    input_side: int
    enlarge_to: int

    @property
    def key(self) -> str:
        return f"{'f' if self.flip else 'o'}{self.input_side}-{self.enlarge_to}"


@dataclass(frozen=True)
class Entry:
    image: str
    variant: str
    scale: float
    image_hw: tuple[int, int]
    tensor_hw: tuple[int, int]
    offsets: tuple[int, int, int]  # first cell of each level in the level's flat file


class FeatureCache:
    """Per level one flat float16 file of [cells, 128] rows (memory-mapped for training) + a JSON index."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        index = json.loads((directory / "index.json").read_text())
        self.entries = [Entry(**{**e, "image_hw": tuple(e["image_hw"]), "tensor_hw": tuple(e["tensor_hw"]),
                                 "offsets": tuple(e["offsets"])}) for e in index["entries"]]
        self.levels = [
            np.memmap(directory / f"level{i}.f16", dtype=np.float16, mode="r").reshape(-1, FEATURE_CHANNELS)
            for i in range(len(NANODET_STRIDES))
        ]
        self.by_key = {(e.image, e.variant): e for e in self.entries}

    def features(self, entry: Entry) -> list[np.ndarray]:
        """Per level [128, h, w] float32."""
        out = []
        ph, pw = entry.tensor_hw
        for level, stride, offset in zip(self.levels, NANODET_STRIDES, entry.offsets, strict=True):
            gh, gw = -(-ph // stride), -(-pw // stride)
            out.append(np.asarray(level[offset : offset + gh * gw], np.float32).T.reshape(FEATURE_CHANNELS, gh, gw))
        return out


def cache_key(nanodet_path: Path, jobs: list[tuple[str, Variant]]) -> str:
    digest = hashlib.sha256(hashlib.sha256(nanodet_path.read_bytes()).hexdigest().encode())
    for image, variant in jobs:
        digest.update(f"{image}|{variant.key}\n".encode())
    return digest.hexdigest()[:16]


def build_cache(nanodet_path: Path, jobs: list[tuple[str, Variant]], root: Path, *, threads: int = 2) -> FeatureCache:
    """Run NanoDet once per (image, variant) and store the features; reused when the same jobs come again."""
    directory = root / cache_key(nanodet_path, jobs)
    if (directory / "index.json").is_file():
        print(f"features: cached in {directory} ({len(jobs)} entries)", flush=True)
        return FeatureCache(directory)
    directory.mkdir(parents=True, exist_ok=True)
    extractor = FeatureExtractor(nanodet_path, threads=threads)
    files = [(directory / f"level{i}.f16").open("wb") for i in range(len(NANODET_STRIDES))]
    counts = [0] * len(NANODET_STRIDES)
    entries = []
    start = time.monotonic()
    images: dict[str, np.ndarray] = {}
    for n, (path, variant) in enumerate(jobs):
        if path not in images:
            images.clear()
            image = cv2.imread(path)
            if image is None:
                raise FileNotFoundError(f"cannot read image {path}")
            images[path] = image
        image = images[path]
        view = image[:, ::-1] if variant.flip else image
        tensor, scale = letterbox(np.ascontiguousarray(view), variant.input_side, variant.enlarge_to)
        offsets = tuple(counts)
        for i, feature in enumerate(extractor(tensor)):
            rows = feature.reshape(FEATURE_CHANNELS, -1).T.astype(np.float16)
            files[i].write(rows.tobytes())
            counts[i] += rows.shape[0]
        entries.append({"image": path, "variant": variant.key, "scale": scale, "image_hw": list(image.shape[:2]),
                        "tensor_hw": list(tensor.shape[2:]), "offsets": list(offsets)})
        if (n + 1) % 200 == 0 or n + 1 == len(jobs):
            rate = (n + 1) / (time.monotonic() - start)
            print(f"features: {n + 1}/{len(jobs)} ({rate:.1f}/s)", flush=True)
    for f in files:
        f.close()
    (directory / "index.json").write_text(json.dumps({"nanodet": str(nanodet_path), "entries": entries}))
    return FeatureCache(directory)
