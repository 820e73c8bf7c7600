"""TensorFlow.js graph model (model.json + .bin) -> ONNX, in plain numpy and the `onnx` helper API.

One function per TF op, NHWC kept as in the source: convolutions, pooling and resizes are wrapped in
NHWC<->NCHW transposes (onnxruntime folds the adjacent pairs). Only the ops used by the models we ship
(nanodet, movenet-lightning, the face detector) are covered; anything else raises `UnsupportedOpError` naming the op.

Here: the weights and the walk over the TF graph; the builder: tfjs_graph.py; the per-op converters: tfjs_ops.py;
the passes applied after the import (models.lock.json names them): tfjs_passes.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from model_workshop.tfjs_graph import (
    OPSET,
    TF_DTYPES,
    GraphBuilder,
    TfjsImportError,
    UnsupportedOpError,
    attr,
    tensor_name,
)
from model_workshop.tfjs_ops import CONVERTERS


def load_weights(model_json: dict[str, Any], model_dir: Path) -> dict[str, np.ndarray]:
    """Decode the weight shards: float16 is upcast to float32, uint8 is dequantized (q * scale + min)."""
    weights: dict[str, np.ndarray] = {}
    for group in model_json["weightsManifest"]:
        blob = b"".join((model_dir / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(d) for d in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            dtype = np.dtype(spec["dtype"]) if spec["dtype"] != "bool" else np.dtype(np.bool_)
            if quant is not None:
                qdtype = np.dtype(quant["dtype"])
                raw = np.frombuffer(blob, dtype=qdtype, count=count, offset=offset)
                offset += count * qdtype.itemsize
                if qdtype == np.float16:
                    arr = raw.astype(np.float32)
                else:
                    arr = raw.astype(np.float32) * float(quant["scale"]) + float(quant["min"])
                arr = arr.astype(dtype)
            else:
                arr = np.frombuffer(blob, dtype=dtype, count=count, offset=offset).copy()
                offset += count * dtype.itemsize
            weights[spec["name"]] = arr.reshape(shape)
    return weights


def _dims(shape: dict[str, Any]) -> list[int | str]:
    return [int(d["size"]) if int(d.get("size", -1)) >= 0 else f"d{i}" for i, d in enumerate(shape.get("dim", []))]


def convert(model_json_path: Path, *, dynamic_hw: tuple[int, int] | None = None) -> onnx.ModelProto:
    """Convert one TFJS graph model to an ONNX model whose inputs / outputs keep the TFJS names (no ":0").

    dynamic_hw: the input's (H, W) axes to make dynamic. Constant resize sizes inside the graph (FPN
    up/down-sampling) are then scaled with the input, which is exact for sides that are multiples of the
    largest stride (32 for nanodet).
    """
    try:
        model_json = json.loads(model_json_path.read_text())
        topology = model_json["modelTopology"]
    except (OSError, ValueError, KeyError) as exc:
        raise TfjsImportError(f"{model_json_path}: not a TFJS graph model ({exc})") from exc
    weights = load_weights(model_json, model_json_path.parent)
    b = GraphBuilder(consts={})
    graph_inputs: list[onnx.ValueInfoProto] = []
    for node in topology["node"]:
        op, name = node["op"], node["name"]
        if op == "Const":
            if name in weights:
                b.consts[name] = weights[name]
            else:
                dtype = TF_DTYPES[attr(node, "dtype", "type", "DT_FLOAT")]
                b.consts[name] = np.zeros(
                    [
                        max(int(d.get("size", 0)), 0)
                        for d in node["attr"]["value"]["tensor"].get("tensorShape", {}).get("dim", [])
                    ],
                    dtype=dtype,
                )
            continue
        if op == "Placeholder":
            dtype = TF_DTYPES[attr(node, "dtype", "type", "DT_FLOAT")]
            shape = _dims(node["attr"].get("shape", {}).get("shape", {}))
            if dynamic_hw is not None:
                declared = [int(shape[a]) for a in dynamic_hw]
                b.dynamic_hw = (name, list(dynamic_hw), declared)
                shape = [
                    f"{('height', 'width')[dynamic_hw.index(i)]}" if i in dynamic_hw else d for i, d in enumerate(shape)
                ]
            graph_inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(dtype), shape))
            b.dtypes[name] = dtype
            continue
        converter = CONVERTERS.get(op)
        if converter is None:
            raise UnsupportedOpError(f"{name}: TF op {op!r} is not supported by this importer")
        converter(b, node, [tensor_name(i) for i in node.get("input", []) if not i.startswith("^")])

    # Older converters put the signature inside userDefinedMetadata (blazeface).
    signature = model_json.get("signature") or model_json.get("userDefinedMetadata", {}).get("signature", {})
    outputs_sig = signature.get("outputs", {})
    # A signature key may be an alias ("objects"); the tensor is its "name".
    output_names = [tensor_name(v.get("name", k)) for k, v in outputs_sig.items()] or [topology["node"][-1]["name"]]
    shapes = {
        tensor_name(v.get("name", k)): _dims(v["tensorShape"]) for k, v in outputs_sig.items() if "tensorShape" in v
    }
    if dynamic_hw is not None:
        shapes = {k: [d if i != 1 else f"cells{i}" for i, d in enumerate(v)] for k, v in shapes.items()}
    graph_outputs = [
        helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(b.dtypes[o]), shapes.get(o))
        for o in output_names
    ]
    graph = helper.make_graph(
        b.nodes, model_json_path.stem, graph_inputs, graph_outputs, initializer=list(b.initializers.values())
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ppe-tfjs-import")
    model.ir_version = 8
    if any(o not in shapes for o in output_names):  # the checker wants a shape on every graph output
        model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    return model


__all__ = ["OPSET", "TfjsImportError", "UnsupportedOpError", "convert", "load_weights"]
