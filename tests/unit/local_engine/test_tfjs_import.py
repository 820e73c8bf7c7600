"""The TFJS -> ONNX importer, op by op, on tiny hand-built graphs checked against numpy references."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from model_workshop.tfjs_import import (
    TfjsImportError,
    UnsupportedOpError,
    convert,
    load_weights,
)
from model_workshop.tfjs_passes import hoist_input_transpose

RNG = np.random.default_rng(0)


def _s(text: str) -> dict[str, str]:
    return {"s": base64.b64encode(text.encode()).decode()}


def _dtype(arr: np.ndarray) -> str:
    return {np.float32: "DT_FLOAT", np.int32: "DT_INT32", np.int64: "DT_INT64"}[arr.dtype.type]


def build(
    tmp_path: Path,
    nodes: list[dict[str, Any]],
    consts: dict[str, np.ndarray],
    inputs: dict[str, tuple[list[int], str]],
    outputs: list[str],
    *,
    float16: bool = True,
) -> Path:
    """Write a TFJS graph model: `consts` become Const nodes with weights (float32 stored as float16)."""
    topology: list[dict[str, Any]] = []
    specs, blobs = [], []
    for name, (shape, dtype) in inputs.items():
        topology.append(
            {
                "name": name,
                "op": "Placeholder",
                "attr": {"dtype": {"type": dtype}, "shape": {"shape": {"dim": [{"size": str(d)} for d in shape]}}},
            }
        )
    for name, value in consts.items():
        topology.append(
            {"name": name, "op": "Const", "attr": {"dtype": {"type": _dtype(value)}, "value": {"tensor": {}}}}
        )
        spec: dict[str, Any] = {"name": name, "shape": list(value.shape), "dtype": str(value.dtype)}
        if value.dtype == np.float32 and float16:
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            blobs.append(value.astype(np.float16).tobytes())
        else:
            blobs.append(value.astype(np.int32 if value.dtype == np.int64 else value.dtype).tobytes())
            spec["dtype"] = "int32" if value.dtype == np.int64 else str(value.dtype)
        specs.append(spec)
    topology.extend(nodes)
    (tmp_path / "m.bin").write_bytes(b"".join(blobs))
    model = {
        "format": "graph-model",
        "modelTopology": {"node": topology},
        "weightsManifest": [{"paths": ["m.bin"], "weights": specs}],
        "signature": {"outputs": {f"{o}:0": {"name": f"{o}:0"} for o in outputs}},
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model))
    return path


def run(path: Path, feeds: dict[str, np.ndarray], **kwargs: Any) -> list[np.ndarray]:
    session = ort.InferenceSession(convert(path, **kwargs).SerializeToString(), providers=["CPUExecutionProvider"])
    return list(session.run(None, feeds))


def f16(a: np.ndarray) -> np.ndarray:
    """What the importer sees of a float32 weight stored as float16."""
    return a.astype(np.float16).astype(np.float32)


def conv_nhwc(x: np.ndarray, w: np.ndarray, stride: int, padding: str) -> np.ndarray:
    """TF Conv2D reference (NHWC, HWIO), with TF's SAME rule (extra padding at the end)."""
    n, h, wd, _ = x.shape
    kh, kw, _, o = w.shape
    if padding == "SAME":
        oh, ow = -(-h // stride), -(-wd // stride)
        ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    oh, ow = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((n, oh, ow, o), np.float32)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, w)
    return out


def test_fused_conv_same_stride2_bias_relu6(tmp_path: Path) -> None:
    w = RNG.normal(size=(3, 3, 4, 5)).astype(np.float32)
    bias = RNG.normal(size=(5,)).astype(np.float32)
    node = {
        "name": "y",
        "op": "_FusedConv2D",
        "input": ["x", "w", "b"],
        "attr": {
            "strides": {"list": {"i": ["1", "2", "2", "1"]}},
            "padding": _s("SAME"),
            "data_format": _s("NHWC"),
            "fused_ops": {"list": {"s": [base64.b64encode(b"BiasAdd").decode(), base64.b64encode(b"Relu6").decode()]}},
            "dilations": {"list": {"i": ["1", "1", "1", "1"]}},
        },
    }
    path = build(tmp_path, [node], {"w": w, "b": bias}, {"x": ([1, 7, 8, 4], "DT_FLOAT")}, ["y"])
    x = RNG.normal(size=(1, 7, 8, 4)).astype(np.float32) * 3
    (y,) = run(path, {"x": x})
    expected = np.clip(conv_nhwc(x, f16(w), 2, "SAME") + f16(bias), 0, 6)
    assert y.shape == (1, 4, 4, 5)
    np.testing.assert_allclose(y, expected, atol=1e-4)


def test_depthwise_valid_with_multiplier(tmp_path: Path) -> None:
    w = RNG.normal(size=(3, 3, 3, 2)).astype(np.float32)  # [H, W, C, M]
    node = {
        "name": "y",
        "op": "DepthwiseConv2dNative",
        "input": ["x", "w"],
        "attr": {"strides": {"list": {"i": ["1", "1", "1", "1"]}}, "padding": _s("VALID"), "data_format": _s("NHWC")},
    }
    path = build(tmp_path, [node], {"w": w}, {"x": ([1, 5, 5, 3], "DT_FLOAT")}, ["y"])
    x = RNG.normal(size=(1, 5, 5, 3)).astype(np.float32)
    (y,) = run(path, {"x": x})
    wf = f16(w)
    expected = np.concatenate(
        [conv_nhwc(x[..., c : c + 1], wf[:, :, c : c + 1, :], 1, "VALID") for c in range(3)], axis=3
    )  # TF orders output channels c * M + m
    np.testing.assert_allclose(y, expected, atol=1e-4)


def test_padv2_minus_inf_then_maxpool(tmp_path: Path) -> None:
    pads = np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)
    nodes = [
        {"name": "p", "op": "PadV2", "input": ["x", "pads", "v"]},
        {
            "name": "y",
            "op": "MaxPool",
            "input": ["p"],
            "attr": {
                "ksize": {"list": {"i": ["1", "3", "3", "1"]}},
                "strides": {"list": {"i": ["1", "2", "2", "1"]}},
                "padding": _s("VALID"),
                "data_format": _s("NHWC"),
            },
        },
    ]
    path = build(
        tmp_path,
        nodes,
        {"pads": pads, "v": np.array(-np.inf, np.float32)},
        {"x": ([1, 4, 4, 2], "DT_FLOAT")},
        ["y"],
        float16=False,
    )
    x = -np.abs(RNG.normal(size=(1, 4, 4, 2)).astype(np.float32)) - 1  # all negative: a zero pad would win
    (y,) = run(path, {"x": x})
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    expected = np.stack(
        [[xp[0, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].max(axis=(0, 1)) for j in range(2)] for i in range(2)]
    )[None]
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize(("attr", "alpha"), [({}, 0.2), ({"alpha": {"f": 0.1}}, 0.1)])
def test_leaky_relu_alpha_defaults_to_tf(tmp_path: Path, attr: dict[str, Any], alpha: float) -> None:
    path = build(
        tmp_path, [{"name": "y", "op": "LeakyRelu", "input": ["x"], "attr": attr}], {}, {"x": ([4], "DT_FLOAT")}, ["y"]
    )
    x = np.array([-2.0, -1.0, 0.0, 3.0], np.float32)
    (y,) = run(path, {"x": x})
    np.testing.assert_allclose(y, np.where(x > 0, x, alpha * x), rtol=1e-6)


def tf_resize_half_pixel(x: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """TF ResizeBilinear(half_pixel_centers=True) reference."""
    _, h, w, _ = x.shape
    out = np.zeros((1, oh, ow, x.shape[3]), np.float32)
    for i in range(oh):
        fy = (i + 0.5) * h / oh - 0.5
        y0 = int(np.floor(fy))
        dy = fy - y0
        ya, yb = min(max(y0, 0), h - 1), min(max(y0 + 1, 0), h - 1)
        for j in range(ow):
            fx = (j + 0.5) * w / ow - 0.5
            x0 = int(np.floor(fx))
            dx = fx - x0
            xa, xb = min(max(x0, 0), w - 1), min(max(x0 + 1, 0), w - 1)
            top = x[0, ya, xa] * (1 - dx) + x[0, ya, xb] * dx
            bottom = x[0, yb, xa] * (1 - dx) + x[0, yb, xb] * dx
            out[0, i, j] = top * (1 - dy) + bottom * dy
    return out


def test_resize_bilinear_half_pixel_and_dynamic_hw(tmp_path: Path) -> None:
    node = {
        "name": "y",
        "op": "ResizeBilinear",
        "input": ["x", "size"],
        "attr": {"half_pixel_centers": {"b": True}, "align_corners": {"b": False}},
    }
    path = build(tmp_path, [node], {"size": np.array([8, 8], np.int32)}, {"x": ([1, 4, 4, 3], "DT_FLOAT")}, ["y"])
    x = RNG.normal(size=(1, 4, 4, 3)).astype(np.float32)
    (y,) = run(path, {"x": x})
    np.testing.assert_allclose(y, tf_resize_half_pixel(x, 8, 8), atol=1e-5)
    # With dynamic H/W the constant size follows the input: 4x6 in -> 8x12 out.
    x2 = RNG.normal(size=(1, 4, 6, 3)).astype(np.float32)
    (y2,) = run(path, {"x": x2}, dynamic_hw=(1, 2))
    np.testing.assert_allclose(y2, tf_resize_half_pixel(x2, 8, 12), atol=1e-5)


def test_floor_div_floors_negative_integers(tmp_path: Path) -> None:
    path = build(
        tmp_path,
        [{"name": "y", "op": "FloorDiv", "input": ["x", "d"]}],
        {"d": np.array(2, np.int32)},
        {"x": ([4], "DT_INT32")},
        ["y"],
    )
    x = np.array([-7, -1, 0, 7], np.int32)
    (y,) = run(path, {"x": x})
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, x // 2)


def test_splitv_sigmoid_unpack_pack_expand_squeeze(tmp_path: Path) -> None:
    nodes = [
        {"name": "s", "op": "SplitV", "input": ["x", "sizes", "axis"]},
        {"name": "sig", "op": "Sigmoid", "input": ["s"]},
        {"name": "u", "op": "Unpack", "input": ["s:1"], "attr": {"num": {"i": "2"}, "axis": {"i": "1"}}},
        {"name": "p", "op": "Pack", "input": ["u:1", "u"], "attr": {"axis": {"i": "1"}}},
        {"name": "e", "op": "ExpandDims", "input": ["p", "dim"]},
        {"name": "q", "op": "Squeeze", "input": ["e"], "attr": {"squeeze_dims": {"list": {"i": ["0"]}}}},
    ]
    consts = {"sizes": np.array([3, 2], np.int32), "axis": np.array(1, np.int32), "dim": np.array(0, np.int32)}
    path = build(tmp_path, nodes, consts, {"x": ([2, 5], "DT_FLOAT")}, ["sig", "q"])
    x = RNG.normal(size=(2, 5)).astype(np.float32)
    sig, q = run(path, {"x": x})
    np.testing.assert_allclose(sig, 1 / (1 + np.exp(-x[:, :3])), rtol=1e-5)
    np.testing.assert_array_equal(q, x[:, [4, 3]])


def test_argmax_int32_and_gather_nd(tmp_path: Path) -> None:
    nodes = [
        {"name": "a", "op": "ArgMax", "input": ["x", "axis"], "attr": {"output_type": {"type": "DT_INT32"}}},
        {"name": "g", "op": "GatherNd", "input": ["x", "idx"]},
    ]
    consts = {"axis": np.array(1, np.int32), "idx": np.array([[1, 2], [0, 0]], np.int32)}
    path = build(tmp_path, nodes, consts, {"x": ([2, 3], "DT_FLOAT")}, ["a", "g"])
    x = np.array([[0.1, 0.9, 0.3], [0.8, 0.2, 0.5]], np.float32)
    a, g = run(path, {"x": x})
    assert a.dtype == np.int32
    np.testing.assert_array_equal(a, [1, 0])
    np.testing.assert_array_equal(g, x[[1, 0], [2, 0]])


def test_uint8_quantized_weights_are_dequantized(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(np.array([0, 128, 255], np.uint8).tobytes() + np.array([7], np.int32).tobytes())
    model = {
        "weightsManifest": [
            {
                "paths": ["w.bin"],
                "weights": [
                    {
                        "name": "q",
                        "shape": [3],
                        "dtype": "float32",
                        "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0},
                    },
                    {"name": "i", "shape": [], "dtype": "int32"},
                ],
            }
        ]
    }
    weights = load_weights(model, tmp_path)
    np.testing.assert_allclose(weights["q"], [-1.0, 63.0, 126.5])
    assert int(weights["i"]) == 7


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    path = build(
        tmp_path, [{"name": "y", "op": "NonMaxSuppressionV5", "input": ["x"]}], {}, {"x": ([4], "DT_FLOAT")}, ["y"]
    )
    with pytest.raises(UnsupportedOpError, match="NonMaxSuppressionV5"):
        convert(path)


def _normalise_then_transpose(unstack: bool) -> onnx.ModelProto:
    """A TFJS-style image input: int32 NHWC -> float -> (x - mean) * scale - 1 -> NCHW -> 1x1 conv."""

    nodes = [helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT)]
    x = "f"
    if unstack:  # the batch-of-one unstack / stack TFJS emits around an image resize
        nodes += [
            helper.make_node("Split", ["f"], ["s"], axis=0),
            helper.make_node("Squeeze", ["s", "ax0"], ["q"]),
            helper.make_node("Unsqueeze", ["q", "ax0"], ["u"]),
        ]
        x = "u"
    nodes += [
        helper.make_node("Sub", [x, "mean"], ["a"]),
        helper.make_node("Mul", ["a", "scale"], ["b"]),
        helper.make_node("Sub", ["b", "one"], ["c"]),
        helper.make_node("Transpose", ["c"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w"], ["out"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "ax0"),
        numpy_helper.from_array(RNG.uniform(0, 128, (1, 1, 1, 3)).astype(np.float32), "mean"),
        numpy_helper.from_array(RNG.uniform(0.005, 0.02, (1, 1, 1, 3)).astype(np.float32), "scale"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(RNG.normal(size=(4, 3, 1, 1)).astype(np.float32), "w"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("image", TensorProto.INT32, [1, 6, 5, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 6, 5])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("unstack", [False, True])
def test_hoisting_the_input_transpose_keeps_the_outputs_identical(unstack: bool) -> None:
    model = _normalise_then_transpose(unstack)
    image = RNG.integers(0, 256, (1, 6, 5, 3)).astype(np.int32)
    before = ort.InferenceSession(model.SerializeToString()).run(None, {"image": image})[0]
    hoisted = hoist_input_transpose(model)
    ops = [node.op_type for node in hoisted.graph.node]
    assert ops == ["Cast", "Transpose", "Sub", "Mul", "Sub", "Conv"]
    after = ort.InferenceSession(hoisted.SerializeToString()).run(None, {"image": image})[0]
    np.testing.assert_array_equal(after, before)


def test_hoisting_without_the_pattern_is_an_error() -> None:

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2, 3])],
    )
    with pytest.raises(TfjsImportError, match="pattern"):
        hoist_input_transpose(helper.make_model(graph))
