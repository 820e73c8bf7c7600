"""TensorFlow.js graph model (model.json + .bin) -> ONNX, in plain numpy and the `onnx` helper API.

One function per TF op, NHWC kept as in the source: convolutions, pooling and resizes are wrapped in
NHWC<->NCHW transposes (onnxruntime folds the adjacent pairs). Only the ops used by the models we ship
(nanodet, movenet-lightning, the face detector) are covered; anything else raises `UnsupportedOpError` naming the op.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17

_TF_DTYPES: dict[str, np.dtype[Any]] = {
    "DT_FLOAT": np.dtype(np.float32),
    "DT_INT32": np.dtype(np.int32),
    "DT_INT64": np.dtype(np.int64),
    "DT_BOOL": np.dtype(np.bool_),
}
_NHWC_TO_NCHW = [0, 3, 1, 2]
_NCHW_TO_NHWC = [0, 2, 3, 1]


class TfjsImportError(ValueError):
    """The TFJS graph cannot be converted (bad files or an unsupported construct)."""


class UnsupportedOpError(TfjsImportError):
    pass


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


def _attr_ints(node: dict[str, Any], key: str) -> list[int]:
    return [int(i) for i in node.get("attr", {}).get(key, {}).get("list", {}).get("i", [])]


def _attr_str(node: dict[str, Any], key: str, default: str = "") -> str:
    value = node.get("attr", {}).get(key, {}).get("s")
    return base64.b64decode(value).decode() if value else default


def _attr_strs(node: dict[str, Any], key: str) -> list[str]:
    return [base64.b64decode(s).decode() for s in node.get("attr", {}).get(key, {}).get("list", {}).get("s", [])]


def _attr(node: dict[str, Any], key: str, kind: str, default: Any) -> Any:
    return node.get("attr", {}).get(key, {}).get(kind, default)


@dataclass
class _Builder:
    consts: dict[str, np.ndarray]
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: dict[str, onnx.TensorProto] = field(default_factory=dict)
    dtypes: dict[str, np.dtype[Any]] = field(default_factory=dict)
    counter: int = 0
    # Set when the input's H and W are made dynamic: (input name, [H axis, W axis], declared [H, W]).
    dynamic_hw: tuple[str, list[int], list[int]] | None = None

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}__{self.counter}"

    def const(self, name: str) -> np.ndarray:
        if name not in self.consts:
            raise TfjsImportError(f"{name!r} must be a constant for this converter")
        return self.consts[name]

    def tensor(self, name: str) -> str:
        """Name usable as an ONNX input; constants become initializers on first use."""
        if name in self.consts and name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(self.consts[name], name)
            self.dtypes[name] = self.consts[name].dtype
        return name

    def literal(self, value: np.ndarray, base: str) -> str:
        name = self.fresh(base)
        self.initializers[name] = numpy_helper.from_array(value, name)
        self.dtypes[name] = value.dtype
        return name

    def add(self, op: str, inputs: list[str], output: str, dtype: np.dtype[Any], **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=self.fresh(op), **attrs))
        self.dtypes[output] = dtype
        return output

    def nchw(self, x: str, op: str, output: str, dtype: np.dtype[Any], extra: list[str], **attrs: Any) -> str:
        """Run an NCHW ONNX op on an NHWC tensor."""
        t = self.add("Transpose", [x], self.fresh(x + "_nchw"), self.dtypes[x], perm=_NHWC_TO_NCHW)
        y = self.add(op, [t, *extra], self.fresh(output + "_nchw"), dtype, **attrs)
        return self.add("Transpose", [y], output, dtype, perm=_NCHW_TO_NHWC)


def _src(name: str) -> str:
    """TF input reference -> tensor name ("node:0" and "node" are the same tensor)."""
    return name[:-2] if name.endswith(":0") else name


def _conv(b: _Builder, node: dict[str, Any], x: str, w: np.ndarray, depthwise: bool) -> str:
    if _attr_str(node, "data_format", "NHWC") != "NHWC":
        raise UnsupportedOpError(f"{node['name']}: only NHWC convolutions are supported")
    strides = _attr_ints(node, "strides")[1:3] or [1, 1]
    dilations = _attr_ints(node, "dilations")[1:3] or [1, 1]
    padding = _attr_str(node, "padding", "VALID")
    attrs: dict[str, Any] = {"strides": strides, "dilations": dilations, "kernel_shape": list(w.shape[:2])}
    if padding == "SAME":
        attrs["auto_pad"] = "SAME_UPPER"
    elif padding == "EXPLICIT":
        p = _attr_ints(node, "explicit_paddings")
        attrs["pads"] = [p[2], p[4], p[3], p[5]]
    if depthwise:  # [H, W, C, M] -> [C*M, 1, H, W], one group per input channel
        h, wd, c, m = w.shape
        kernel = w.reshape(h, wd, c * m).transpose(2, 0, 1)[:, None, :, :]
        attrs["group"] = c
    else:  # HWIO -> OIHW
        kernel = w.transpose(3, 2, 0, 1)
    inputs = [b.literal(np.ascontiguousarray(kernel, dtype=np.float32), node["name"] + "_w")]
    return b.nchw(x, "Conv", b.fresh(node["name"] + "_conv"), np.dtype(np.float32), inputs, **attrs)


def _activation(b: _Builder, node: dict[str, Any], op: str, x: str, out: str) -> str:
    f32 = np.dtype(np.float32)
    if op == "Relu":
        return b.add("Relu", [x], out, f32)
    if op == "Relu6":
        lo, hi = b.literal(np.array(0, np.float32), "zero"), b.literal(np.array(6, np.float32), "six")
        return b.add("Clip", [x, lo, hi], out, f32)
    if op == "LeakyRelu":
        return b.add("LeakyRelu", [x], out, f32, alpha=float(_attr(node, "leakyrelu_alpha", "f", 0.2)))
    if op == "Sigmoid":
        return b.add("Sigmoid", [x], out, f32)
    raise UnsupportedOpError(f"{node['name']}: fused activation {op}")


def _fused_conv(b: _Builder, node: dict[str, Any], depthwise: bool) -> str:
    inputs = [_src(i) for i in node["input"] if not i.startswith("^")]
    fused = _attr_strs(node, "fused_ops")
    y = _conv(b, node, b.tensor(inputs[0]), b.const(inputs[1]), depthwise)
    rest = list(fused)
    if rest and rest[0] == "BiasAdd":
        y = b.add("Add", [y, b.tensor(inputs[2])], b.fresh(node["name"] + "_bias"), np.dtype(np.float32))
        rest = rest[1:]
    if len(rest) > 1:
        raise UnsupportedOpError(f"{node['name']}: fused ops {fused}")
    if rest:
        return _activation(b, node, rest[0], y, node["name"])
    return b.add("Identity", [y], node["name"], np.dtype(np.float32))


def _int64(b: _Builder, name: str) -> str:
    """An int64 version of an integer tensor (ONNX wants int64 for shapes, axes and indices)."""
    if name in b.consts:
        return b.literal(b.consts[name].astype(np.int64), name + "_i64")
    name = b.tensor(name)
    if b.dtypes.get(name) == np.int64:
        return name
    return b.add("Cast", [name], b.fresh(name + "_i64"), np.dtype(np.int64), to=TensorProto.INT64)


def _axes(b: _Builder, values: list[int], base: str) -> str:
    return b.literal(np.array(values, dtype=np.int64), base + "_axes")


Converter = Callable[[_Builder, dict[str, Any], list[str]], None]


def _binary(op: str) -> Converter:
    def convert(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
        x, y = b.tensor(inp[0]), b.tensor(inp[1])
        b.add(op, [x, y], node["name"], b.dtypes[x])

    return convert


def _unary(op: str) -> Converter:
    def convert(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
        x = b.tensor(inp[0])
        b.add(op, [x], node["name"], b.dtypes[x])

    return convert


def _squared_difference(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    x, y = b.tensor(inp[0]), b.tensor(inp[1])
    d = b.add("Sub", [x, y], b.fresh(node["name"] + "_d"), b.dtypes[x])
    b.add("Mul", [d, d], node["name"], b.dtypes[x])


def _floor_div(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    # TF floors; ONNX integer Div truncates toward zero, so divide in float and floor.
    x, y = b.tensor(inp[0]), b.tensor(inp[1])
    dtype = b.dtypes[x]
    f32 = np.dtype(np.float32)
    if dtype != f32:
        x = b.add("Cast", [x], b.fresh(x + "_f"), f32, to=TensorProto.FLOAT)
        y = b.add("Cast", [y], b.fresh(y + "_f"), f32, to=TensorProto.FLOAT)
    q = b.add("Div", [x, y], b.fresh(node["name"] + "_q"), f32)
    if dtype == f32:
        b.add("Floor", [q], node["name"], f32)
        return
    fl = b.add("Floor", [q], b.fresh(node["name"] + "_fl"), f32)
    b.add("Cast", [fl], node["name"], dtype, to=helper.np_dtype_to_tensor_dtype(dtype))


def _leaky_relu(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    # TF's default alpha is 0.2, ONNX's 0.01: always write it.
    b.add(
        "LeakyRelu", [b.tensor(inp[0])], node["name"], np.dtype(np.float32), alpha=float(_attr(node, "alpha", "f", 0.2))
    )


def _transpose(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    b.add("Transpose", [x], node["name"], b.dtypes[x], perm=[int(p) for p in b.const(inp[1])])


def _pad(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    pads = b.const(inp[1]).astype(np.int64)  # [rank, 2] -> [begins..., ends...]
    extra = [b.literal(pads.T.reshape(-1), node["name"] + "_pads")]
    if node["op"] == "PadV2":
        extra.append(b.literal(b.const(inp[2]).astype(b.dtypes[x]).reshape(()), node["name"] + "_value"))
    b.add("Pad", [x, *extra], node["name"], b.dtypes[x], mode="constant")


def _conv2d(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    y = _conv(b, node, b.tensor(inp[0]), b.const(inp[1]), depthwise=node["op"] == "DepthwiseConv2dNative")
    b.add("Identity", [y], node["name"], np.dtype(np.float32))


def _max_pool(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    attrs: dict[str, Any] = {
        "kernel_shape": _attr_ints(node, "ksize")[1:3],
        "strides": _attr_ints(node, "strides")[1:3],
    }
    if _attr_str(node, "padding", "VALID") == "SAME":
        attrs["auto_pad"] = "SAME_UPPER"
    b.nchw(b.tensor(inp[0]), "MaxPool", node["name"], np.dtype(np.float32), [], **attrs)


def _concat(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    values = [b.tensor(i) for i in inp[:-1]]
    b.add("Concat", values, node["name"], b.dtypes[values[0]], axis=int(b.const(inp[-1])))


def _sparse_to_dense(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    indices = b.const(inp[0])
    if indices.size:
        raise UnsupportedOpError(f"{node['name']}: SparseToDense with non-empty indices")
    default = b.const(inp[3])
    b.consts[node["name"]] = np.full(b.const(inp[1]).astype(np.int64), default, dtype=default.dtype)


def _reshape(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    b.add("Reshape", [x, _int64(b, inp[1])], node["name"], b.dtypes[x])


def _resize_bilinear(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    if _attr(node, "align_corners", "b", False):
        mode = "align_corners"
    elif _attr(node, "half_pixel_centers", "b", False):
        mode = "half_pixel"
    else:
        mode = "asymmetric"
    shape = b.add("Shape", [x], b.fresh(x + "_shape"), np.dtype(np.int64))
    gather_nc = b.literal(np.array([0, 3], dtype=np.int64), "nc")
    nc = b.add("Gather", [shape, gather_nc], b.fresh(x + "_nc"), np.dtype(np.int64), axis=0)
    if b.dynamic_hw is not None and inp[1] in b.consts:
        size = _scaled_size(b, b.consts[inp[1]], node["name"])
    else:
        size = _int64(b, inp[1])
    sizes = b.add("Concat", [nc, size], b.fresh(node["name"] + "_sizes"), np.dtype(np.int64), axis=0)
    b.nchw(
        x,
        "Resize",
        node["name"],
        np.dtype(np.float32),
        ["", "", sizes],
        mode="linear",
        coordinate_transformation_mode=mode,
    )


def _scaled_size(b: _Builder, declared: np.ndarray, base: str) -> str:
    """A resize size fixed for the declared input, scaled to the actual input: round(size * actual / declared)."""
    assert b.dynamic_hw is not None
    name, axes, declared_hw = b.dynamic_hw
    i64, f32 = np.dtype(np.int64), np.dtype(np.float32)
    shape = b.add("Shape", [name], b.fresh(base + "_in_shape"), i64)
    hw = b.add("Gather", [shape, b.literal(np.array(axes, np.int64), "hw")], b.fresh(base + "_hw"), i64, axis=0)
    hw_f = b.add("Cast", [hw], b.fresh(base + "_hw_f"), f32, to=TensorProto.FLOAT)
    ratio = np.asarray(declared, np.float32) / np.asarray(declared_hw, np.float32)
    scaled = b.add("Mul", [hw_f, b.literal(ratio, "ratio")], b.fresh(base + "_scaled"), f32)
    rounded = b.add("Round", [scaled], b.fresh(base + "_round"), f32)
    return b.add("Cast", [rounded], b.fresh(base + "_size"), i64, to=TensorProto.INT64)


def _split_v(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    sizes = b.const(inp[1]).astype(np.int64)
    axis = int(b.const(inp[2]))
    outputs = [node["name"]] + [f"{node['name']}:{i}" for i in range(1, len(sizes))]
    if (sizes < 0).any():
        raise UnsupportedOpError(f"{node['name']}: SplitV with -1 size needs a static shape")
    b.nodes.append(helper.make_node("Split", [x, b.literal(sizes, "split")], outputs, name=b.fresh("Split"), axis=axis))
    for o in outputs:
        b.dtypes[o] = b.dtypes[x]


def _unpack(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    num, axis = int(_attr(node, "num", "i", 0)), int(_attr(node, "axis", "i", 0))
    parts = [b.fresh(node["name"] + "_part") for _ in range(num)]
    b.nodes.append(
        helper.make_node("Split", [x], parts, name=b.fresh("Split"), axis=axis, num_outputs=num)
        if OPSET >= 18
        else helper.make_node("Split", [x], parts, name=b.fresh("Split"), axis=axis)
    )
    for i, part in enumerate(parts):
        out = node["name"] if i == 0 else f"{node['name']}:{i}"
        b.add("Squeeze", [part, _axes(b, [axis], out)], out, b.dtypes[x])


def _pack(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    axis = int(_attr(node, "axis", "i", 0))
    values = [b.tensor(i) for i in inp]
    expanded = [b.add("Unsqueeze", [v, _axes(b, [axis], v)], b.fresh(v + "_x"), b.dtypes[v]) for v in values]
    b.add("Concat", expanded, node["name"], b.dtypes[values[0]], axis=axis)


def _expand_dims(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    b.add("Unsqueeze", [x, _axes(b, [int(b.const(inp[1]))], node["name"])], node["name"], b.dtypes[x])


def _squeeze(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    dims = _attr_ints(node, "squeeze_dims")
    extra = [_axes(b, dims, node["name"])] if dims else []
    b.add("Squeeze", [x, *extra], node["name"], b.dtypes[x])


def _cast(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    dtype = _TF_DTYPES[_attr(node, "DstT", "type", "DT_FLOAT")]
    b.add("Cast", [b.tensor(inp[0])], node["name"], dtype, to=helper.np_dtype_to_tensor_dtype(dtype))


def _arg_max(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    dtype = _TF_DTYPES[_attr(node, "output_type", "type", "DT_INT64")]
    i64 = b.add(
        "ArgMax",
        [b.tensor(inp[0])],
        b.fresh(node["name"] + "_i64"),
        np.dtype(np.int64),
        axis=int(b.const(inp[1])),
        keepdims=0,
    )
    b.add("Cast", [i64], node["name"], dtype, to=helper.np_dtype_to_tensor_dtype(dtype))


def _gather_nd(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    params = b.tensor(inp[0])
    b.add("GatherND", [params, _int64(b, inp[1])], node["name"], b.dtypes[params])


def _shape(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    dtype = _TF_DTYPES[_attr(node, "out_type", "type", "DT_INT32")]
    i64 = b.add("Shape", [b.tensor(inp[0])], b.fresh(node["name"] + "_i64"), np.dtype(np.int64))
    b.add("Cast", [i64], node["name"], dtype, to=helper.np_dtype_to_tensor_dtype(dtype))


def _strided_slice(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    """TF StridedSlice with constant begin / end / strides: ONNX Slice, then Squeeze for shrink_axis_mask."""
    if int(_attr(node, "ellipsis_mask", "i", 0)) or int(_attr(node, "new_axis_mask", "i", 0)):
        raise UnsupportedOpError(f"{node['name']}: StridedSlice with ellipsis_mask / new_axis_mask")
    x = b.tensor(inp[0])
    begin, end, strides = (b.const(i).astype(np.int64) for i in inp[1:4])
    begin_mask, end_mask = int(_attr(node, "begin_mask", "i", 0)), int(_attr(node, "end_mask", "i", 0))
    shrink = int(_attr(node, "shrink_axis_mask", "i", 0))
    big = np.iinfo(np.int64).max
    starts, ends = begin.copy(), end.copy()
    for axis in range(begin.size):
        if begin_mask >> axis & 1:
            starts[axis] = 0 if strides[axis] > 0 else big
        if end_mask >> axis & 1:
            ends[axis] = big if strides[axis] > 0 else -big
        if shrink >> axis & 1:  # a single index; -1 must end at the last element, not before it
            ends[axis] = starts[axis] + 1 if starts[axis] != -1 else big
            strides[axis] = 1
    axes = np.arange(begin.size, dtype=np.int64)
    extra = [b.literal(v, node["name"] + k) for k, v in (("_starts", starts), ("_ends", ends), ("_axes", axes))]
    extra.append(b.literal(strides, node["name"] + "_steps"))
    squeezed = [axis for axis in range(begin.size) if shrink >> axis & 1]
    out = b.fresh(node["name"] + "_slice") if squeezed else node["name"]
    b.add("Slice", [x, *extra], out, b.dtypes[x])
    if squeezed:
        b.add("Squeeze", [out, _axes(b, squeezed, node["name"])], node["name"], b.dtypes[x])


def _depth_to_space(b: _Builder, node: dict[str, Any], inp: list[str]) -> None:
    # TF orders the depth as (block row, block column, channel): ONNX's DCR mode.
    if _attr_str(node, "data_format", "NHWC") != "NHWC":
        raise UnsupportedOpError(f"{node['name']}: only NHWC DepthToSpace is supported")
    x = b.tensor(inp[0])
    block = int(_attr(node, "block_size", "i", 2))
    b.nchw(x, "DepthToSpace", node["name"], b.dtypes[x], [], blocksize=block, mode="DCR")


_CONVERTERS: dict[str, Converter] = {
    "Identity": _unary("Identity"),
    "Sigmoid": _unary("Sigmoid"),
    "Sqrt": _unary("Sqrt"),
    "Relu": _unary("Relu"),
    "Add": _binary("Add"),
    "AddV2": _binary("Add"),
    "Sub": _binary("Sub"),
    "Mul": _binary("Mul"),
    "RealDiv": _binary("Div"),
    "SquaredDifference": _squared_difference,
    "FloorDiv": _floor_div,
    "LeakyRelu": _leaky_relu,
    "Transpose": _transpose,
    "Pad": _pad,
    "PadV2": _pad,
    "Conv2D": _conv2d,
    "DepthwiseConv2dNative": _conv2d,
    "_FusedConv2D": lambda b, n, i: _named(b, n, _fused_conv(b, n, depthwise=False)),
    "FusedDepthwiseConv2dNative": lambda b, n, i: _named(b, n, _fused_conv(b, n, depthwise=True)),
    "MaxPool": _max_pool,
    "ConcatV2": _concat,
    "SparseToDense": _sparse_to_dense,
    "Reshape": _reshape,
    "ResizeBilinear": _resize_bilinear,
    "SplitV": _split_v,
    "Unpack": _unpack,
    "Pack": _pack,
    "ExpandDims": _expand_dims,
    "Squeeze": _squeeze,
    "Cast": _cast,
    "ArgMax": _arg_max,
    "GatherNd": _gather_nd,
    "Shape": _shape,
    "StridedSlice": _strided_slice,
    "DepthToSpace": _depth_to_space,
}


def _named(b: _Builder, node: dict[str, Any], out: str) -> None:
    assert out == node["name"], out


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
    b = _Builder(consts={})
    graph_inputs: list[onnx.ValueInfoProto] = []
    for node in topology["node"]:
        op, name = node["op"], node["name"]
        if op == "Const":
            if name in weights:
                b.consts[name] = weights[name]
            else:
                dtype = _TF_DTYPES[_attr(node, "dtype", "type", "DT_FLOAT")]
                b.consts[name] = np.zeros(
                    [
                        max(int(d.get("size", 0)), 0)
                        for d in node["attr"]["value"]["tensor"].get("tensorShape", {}).get("dim", [])
                    ],
                    dtype=dtype,
                )
            continue
        if op == "Placeholder":
            dtype = _TF_DTYPES[_attr(node, "dtype", "type", "DT_FLOAT")]
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
        converter = _CONVERTERS.get(op)
        if converter is None:
            raise UnsupportedOpError(f"{name}: TF op {op!r} is not supported by this importer")
        converter(b, node, [_src(i) for i in node.get("input", []) if not i.startswith("^")])

    # Older converters put the signature inside userDefinedMetadata (blazeface).
    signature = model_json.get("signature") or model_json.get("userDefinedMetadata", {}).get("signature", {})
    outputs_sig = signature.get("outputs", {})
    # A signature key may be an alias ("objects"); the tensor is its "name".
    output_names = [_src(v.get("name", k)) for k, v in outputs_sig.items()] or [topology["node"][-1]["name"]]
    shapes = {_src(v.get("name", k)): _dims(v["tensorShape"]) for k, v in outputs_sig.items() if "tensorShape" in v}
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


_ELEMENTWISE = {"Sub", "Mul", "Add", "Div"}
_BATCH_NO_OPS = {"Split", "Squeeze", "Unsqueeze"}  # TFJS unstack / expand_dims / stack of a batch of one


def hoist_input_transpose(model: onnx.ModelProto) -> onnx.ModelProto:
    """Move the NHWC -> NCHW transpose of an image input above its per-channel normalisation.

    TFJS graphs normalise the NHWC image (`(x - mean) * scale - 1`) and only then transpose it for the first
    convolution. onnxruntime broadcasts a [1, 1, 1, C] constant over NHWC one pixel at a time, which cost
    MoveNet 11-13 % of its run time; over NCHW with [1, C, 1, 1] constants it streams whole planes. The same
    float operations run on the same values, so the outputs are identical. The batch-of-one unstack / stack
    no-ops (Split, Squeeze, Unsqueeze) between the input and the normalisation are dropped. Raises
    TfjsImportError when the graph has no such pattern.
    """
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    uses = Counter(name for node in graph.node for name in node.input)
    inits = {init.name: init for init in graph.initializer}
    input_names = {value.name for value in graph.input}
    for transpose in graph.node:
        perm = [list(a.ints) for a in transpose.attribute if a.name == "perm"]
        if transpose.op_type != "Transpose" or perm != [[0, 3, 1, 2]]:
            continue
        chain: list[onnx.NodeProto] = []  # from the transpose upwards
        tensor = transpose.input[0]
        while tensor in producer and uses[tensor] == 1:
            node = producer[tensor]
            if node.op_type in _ELEMENTWISE and len(node.input) == 2 and node.input[1] in inits:
                chain.append(node)
            elif node.op_type in _BATCH_NO_OPS and _on_batch_axis(node, inits):
                chain.append(node)
            elif node.op_type == "Cast":
                chain.append(node)
            else:
                break
            tensor = node.input[0]
        if tensor not in input_names or not any(n.op_type in _ELEMENTWISE for n in chain):
            continue
        source = next(value for value in graph.input if value.name == tensor)
        dims = source.type.tensor_type.shape.dim
        if len(dims) != 4 or dims[0].dim_value != 1:
            raise TfjsImportError(f"{tensor}: expected a [1, H, W, C] input, got {dims}")
        return _rebuild_input(model, transpose, list(reversed(chain)), tensor, inits)
    raise TfjsImportError("no input -> per-channel normalisation -> NHWC-to-NCHW transpose pattern found")


def _rebuild_input(
    model: onnx.ModelProto,
    transpose: onnx.NodeProto,
    chain: list[onnx.NodeProto],
    graph_input: str,
    inits: dict[str, onnx.TensorProto],
) -> onnx.ModelProto:
    graph = model.graph
    removed = {id(node) for node in chain} | {id(transpose)}
    new_nodes: list[onnx.NodeProto] = []
    current = graph_input
    for node in (n for n in chain if n.op_type == "Cast"):  # the dtype cast stays first
        new_nodes.append(helper.make_node("Cast", [current], [node.output[0]], name=node.name, to=_cast_to(node)))
        current = node.output[0]
    new_nodes.append(helper.make_node("Transpose", [current], [f"{graph_input}_nchw"], perm=[0, 3, 1, 2]))
    current = f"{graph_input}_nchw"
    new_inits: list[onnx.TensorProto] = []
    elementwise = [n for n in chain if n.op_type in _ELEMENTWISE]
    for i, node in enumerate(elementwise):
        constant = numpy_helper.to_array(inits[node.input[1]])
        if constant.ndim == 4:  # [1, 1, 1, C] (NHWC) -> [1, C, 1, 1]
            constant = constant.transpose(0, 3, 1, 2)
        elif constant.ndim > 1:
            raise TfjsImportError(f"{node.name}: constant of shape {constant.shape} is not per-channel")
        const_name = f"{node.output[0]}_nchw_const"
        new_inits.append(numpy_helper.from_array(constant, const_name))
        out = transpose.output[0] if i == len(elementwise) - 1 else f"{node.output[0]}_nchw"
        new_nodes.append(helper.make_node(node.op_type, [current, const_name], [out], name=f"{node.output[0]}_nchw"))
        current = out
    kept = [node for node in graph.node if id(node) not in removed]
    del graph.node[:]
    graph.node.extend(new_nodes + kept)
    graph.initializer.extend(new_inits)
    used = {name for node in graph.node for name in node.input}
    alive = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(alive)
    onnx.checker.check_model(model)
    return model


def _on_batch_axis(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> bool:
    """A single-output Split, or a Squeeze / Unsqueeze, along axis 0 only."""
    if node.op_type == "Split":
        axis = next((int(a.i) for a in node.attribute if a.name == "axis"), 0)
        return axis == 0 and len(node.output) == 1
    axes = node.input[1] if len(node.input) > 1 else ""
    return axes in inits and numpy_helper.to_array(inits[axes]).tolist() == [0]


def _cast_to(node: onnx.NodeProto) -> int:
    return next(int(a.i) for a in node.attribute if a.name == "to")


GRAPH_PASSES: dict[str, Callable[[onnx.ModelProto], onnx.ModelProto]] = {
    "hoist_input_transpose": hoist_input_transpose,
}
