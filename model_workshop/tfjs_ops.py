"""One converter per TF op of the models we ship (nanodet, movenet-lightning, the face detector), NHWC kept as in
the source: convolutions, pooling and resizes are wrapped in NHWC<->NCHW transposes (onnxruntime folds the
adjacent pairs)."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper

from model_workshop.tfjs_graph import (
    OPSET,
    TF_DTYPES,
    Converter,
    GraphBuilder,
    UnsupportedOpError,
    attr,
    attr_ints,
    attr_str,
    attr_strs,
    tensor_name,
)


def _conv(b: GraphBuilder, node: dict[str, Any], x: str, w: np.ndarray, depthwise: bool) -> str:
    if attr_str(node, "data_format", "NHWC") != "NHWC":
        raise UnsupportedOpError(f"{node['name']}: only NHWC convolutions are supported")
    strides = attr_ints(node, "strides")[1:3] or [1, 1]
    dilations = attr_ints(node, "dilations")[1:3] or [1, 1]
    padding = attr_str(node, "padding", "VALID")
    attrs: dict[str, Any] = {"strides": strides, "dilations": dilations, "kernel_shape": list(w.shape[:2])}
    if padding == "SAME":
        attrs["auto_pad"] = "SAME_UPPER"
    elif padding == "EXPLICIT":
        p = attr_ints(node, "explicit_paddings")
        attrs["pads"] = [p[2], p[4], p[3], p[5]]
    if depthwise:  # [H, W, C, M] -> [C*M, 1, H, W], one group per input channel
        h, wd, c, m = w.shape
        kernel = w.reshape(h, wd, c * m).transpose(2, 0, 1)[:, None, :, :]
        attrs["group"] = c
    else:  # HWIO -> OIHW
        kernel = w.transpose(3, 2, 0, 1)
    inputs = [b.literal(np.ascontiguousarray(kernel, dtype=np.float32), node["name"] + "_w")]
    return b.nchw(x, "Conv", b.fresh(node["name"] + "_conv"), np.dtype(np.float32), inputs, **attrs)


def _activation(b: GraphBuilder, node: dict[str, Any], op: str, x: str, out: str) -> str:
    f32 = np.dtype(np.float32)
    if op == "Relu":
        return b.add("Relu", [x], out, f32)
    if op == "Relu6":
        lo, hi = b.literal(np.array(0, np.float32), "zero"), b.literal(np.array(6, np.float32), "six")
        return b.add("Clip", [x, lo, hi], out, f32)
    if op == "LeakyRelu":
        return b.add("LeakyRelu", [x], out, f32, alpha=float(attr(node, "leakyrelu_alpha", "f", 0.2)))
    if op == "Sigmoid":
        return b.add("Sigmoid", [x], out, f32)
    raise UnsupportedOpError(f"{node['name']}: fused activation {op}")


def _fused_conv(b: GraphBuilder, node: dict[str, Any], depthwise: bool) -> str:
    inputs = [tensor_name(i) for i in node["input"] if not i.startswith("^")]
    fused = attr_strs(node, "fused_ops")
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


def _int64(b: GraphBuilder, name: str) -> str:
    """An int64 version of an integer tensor (ONNX wants int64 for shapes, axes and indices)."""
    if name in b.consts:
        return b.literal(b.consts[name].astype(np.int64), name + "_i64")
    name = b.tensor(name)
    if b.dtypes.get(name) == np.int64:
        return name
    return b.add("Cast", [name], b.fresh(name + "_i64"), np.dtype(np.int64), to=TensorProto.INT64)


def _axes(b: GraphBuilder, values: list[int], base: str) -> str:
    return b.literal(np.array(values, dtype=np.int64), base + "_axes")




def _binary(op: str) -> Converter:
    def convert(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
        x, y = b.tensor(inp[0]), b.tensor(inp[1])
        b.add(op, [x, y], node["name"], b.dtypes[x])

    return convert


def _unary(op: str) -> Converter:
    def convert(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
        x = b.tensor(inp[0])
        b.add(op, [x], node["name"], b.dtypes[x])

    return convert


def _squared_difference(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    x, y = b.tensor(inp[0]), b.tensor(inp[1])
    d = b.add("Sub", [x, y], b.fresh(node["name"] + "_d"), b.dtypes[x])
    b.add("Mul", [d, d], node["name"], b.dtypes[x])


def _floor_div(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
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


def _leaky_relu(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    # TF's default alpha is 0.2, ONNX's 0.01: always write it.
    b.add(
        "LeakyRelu", [b.tensor(inp[0])], node["name"], np.dtype(np.float32), alpha=float(attr(node, "alpha", "f", 0.2))
    )


def _transpose(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    b.add("Transpose", [x], node["name"], b.dtypes[x], perm=[int(p) for p in b.const(inp[1])])


def _pad(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    pads = b.const(inp[1]).astype(np.int64)  # [rank, 2] -> [begins..., ends...]
    extra = [b.literal(pads.T.reshape(-1), node["name"] + "_pads")]
    if node["op"] == "PadV2":
        extra.append(b.literal(b.const(inp[2]).astype(b.dtypes[x]).reshape(()), node["name"] + "_value"))
    b.add("Pad", [x, *extra], node["name"], b.dtypes[x], mode="constant")


def _conv2d(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    y = _conv(b, node, b.tensor(inp[0]), b.const(inp[1]), depthwise=node["op"] == "DepthwiseConv2dNative")
    b.add("Identity", [y], node["name"], np.dtype(np.float32))


def _max_pool(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    attrs: dict[str, Any] = {
        "kernel_shape": attr_ints(node, "ksize")[1:3],
        "strides": attr_ints(node, "strides")[1:3],
    }
    if attr_str(node, "padding", "VALID") == "SAME":
        attrs["auto_pad"] = "SAME_UPPER"
    b.nchw(b.tensor(inp[0]), "MaxPool", node["name"], np.dtype(np.float32), [], **attrs)


def _concat(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    values = [b.tensor(i) for i in inp[:-1]]
    b.add("Concat", values, node["name"], b.dtypes[values[0]], axis=int(b.const(inp[-1])))


def _sparse_to_dense(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    indices = b.const(inp[0])
    if indices.size:
        raise UnsupportedOpError(f"{node['name']}: SparseToDense with non-empty indices")
    default = b.const(inp[3])
    b.consts[node["name"]] = np.full(b.const(inp[1]).astype(np.int64), default, dtype=default.dtype)


def _reshape(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    b.add("Reshape", [x, _int64(b, inp[1])], node["name"], b.dtypes[x])


def _resize_bilinear(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    if attr(node, "align_corners", "b", False):
        mode = "align_corners"
    elif attr(node, "half_pixel_centers", "b", False):
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


def _scaled_size(b: GraphBuilder, declared: np.ndarray, base: str) -> str:
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


def _split_v(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    sizes = b.const(inp[1]).astype(np.int64)
    axis = int(b.const(inp[2]))
    outputs = [node["name"]] + [f"{node['name']}:{i}" for i in range(1, len(sizes))]
    if (sizes < 0).any():
        raise UnsupportedOpError(f"{node['name']}: SplitV with -1 size needs a static shape")
    b.nodes.append(helper.make_node("Split", [x, b.literal(sizes, "split")], outputs, name=b.fresh("Split"), axis=axis))
    for o in outputs:
        b.dtypes[o] = b.dtypes[x]


def _unpack(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    num, axis = int(attr(node, "num", "i", 0)), int(attr(node, "axis", "i", 0))
    parts = [b.fresh(node["name"] + "_part") for _ in range(num)]
    b.nodes.append(
        helper.make_node("Split", [x], parts, name=b.fresh("Split"), axis=axis, num_outputs=num)
        if OPSET >= 18
        else helper.make_node("Split", [x], parts, name=b.fresh("Split"), axis=axis)
    )
    for i, part in enumerate(parts):
        out = node["name"] if i == 0 else f"{node['name']}:{i}"
        b.add("Squeeze", [part, _axes(b, [axis], out)], out, b.dtypes[x])


def _pack(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    axis = int(attr(node, "axis", "i", 0))
    values = [b.tensor(i) for i in inp]
    expanded = [b.add("Unsqueeze", [v, _axes(b, [axis], v)], b.fresh(v + "_x"), b.dtypes[v]) for v in values]
    b.add("Concat", expanded, node["name"], b.dtypes[values[0]], axis=axis)


def _expand_dims(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    b.add("Unsqueeze", [x, _axes(b, [int(b.const(inp[1]))], node["name"])], node["name"], b.dtypes[x])


def _squeeze(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    x = b.tensor(inp[0])
    dims = attr_ints(node, "squeeze_dims")
    extra = [_axes(b, dims, node["name"])] if dims else []
    b.add("Squeeze", [x, *extra], node["name"], b.dtypes[x])


def _cast(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    dtype = TF_DTYPES[attr(node, "DstT", "type", "DT_FLOAT")]
    b.add("Cast", [b.tensor(inp[0])], node["name"], dtype, to=helper.np_dtype_to_tensor_dtype(dtype))


def _arg_max(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    dtype = TF_DTYPES[attr(node, "output_type", "type", "DT_INT64")]
    i64 = b.add(
        "ArgMax",
        [b.tensor(inp[0])],
        b.fresh(node["name"] + "_i64"),
        np.dtype(np.int64),
        axis=int(b.const(inp[1])),
        keepdims=0,
    )
    b.add("Cast", [i64], node["name"], dtype, to=helper.np_dtype_to_tensor_dtype(dtype))


def _gather_nd(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    params = b.tensor(inp[0])
    b.add("GatherND", [params, _int64(b, inp[1])], node["name"], b.dtypes[params])


def _shape(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    dtype = TF_DTYPES[attr(node, "out_type", "type", "DT_INT32")]
    i64 = b.add("Shape", [b.tensor(inp[0])], b.fresh(node["name"] + "_i64"), np.dtype(np.int64))
    b.add("Cast", [i64], node["name"], dtype, to=helper.np_dtype_to_tensor_dtype(dtype))


def _strided_slice(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    """TF StridedSlice with constant begin / end / strides: ONNX Slice, then Squeeze for shrink_axis_mask."""
    if int(attr(node, "ellipsis_mask", "i", 0)) or int(attr(node, "new_axis_mask", "i", 0)):
        raise UnsupportedOpError(f"{node['name']}: StridedSlice with ellipsis_mask / new_axis_mask")
    x = b.tensor(inp[0])
    begin, end, strides = (b.const(i).astype(np.int64) for i in inp[1:4])
    begin_mask, end_mask = int(attr(node, "begin_mask", "i", 0)), int(attr(node, "end_mask", "i", 0))
    shrink = int(attr(node, "shrink_axis_mask", "i", 0))
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


def _depth_to_space(b: GraphBuilder, node: dict[str, Any], inp: list[str]) -> None:
    # TF orders the depth as (block row, block column, channel): ONNX's DCR mode.
    if attr_str(node, "data_format", "NHWC") != "NHWC":
        raise UnsupportedOpError(f"{node['name']}: only NHWC DepthToSpace is supported")
    x = b.tensor(inp[0])
    block = int(attr(node, "block_size", "i", 2))
    b.nchw(x, "DepthToSpace", node["name"], b.dtypes[x], [], blocksize=block, mode="DCR")


CONVERTERS: dict[str, Converter] = {
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


def _named(b: GraphBuilder, node: dict[str, Any], out: str) -> None:
    assert out == node["name"], out


