"""Importer ops the face detectors need (Shape, StridedSlice, DepthToSpace) and the older signature layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.unit.local_engine.test_tfjs_import import RNG, _s, build, run


def test_shape_strided_slice_pack_reshape_keeps_a_dynamic_batch(tmp_path: Path) -> None:
    # GIVEN facemesh-detection's head: reshape [B, H, W, C] to [B, H*W*C/k, k] with B read from the shape
    nodes = [
        {"name": "sh", "op": "Shape", "input": ["x"], "attr": {"out_type": {"type": "DT_INT32"}}},
        {
            "name": "b",
            "op": "StridedSlice",
            "input": ["sh", "begin", "end", "step"],
            "attr": {"shrink_axis_mask": {"i": "1"}, "begin_mask": {"i": "0"}, "end_mask": {"i": "0"}},
        },
        {"name": "shape", "op": "Pack", "input": ["b", "n", "k"], "attr": {"axis": {"i": "0"}}},
        {"name": "y", "op": "Reshape", "input": ["x", "shape"]},
    ]
    consts = {
        "begin": np.array([0], np.int32),
        "end": np.array([1], np.int32),
        "step": np.array([1], np.int32),
        "n": np.array(8, np.int32),
        "k": np.array(3, np.int32),
    }
    path = build(tmp_path, nodes, consts, {"x": ([-1, 2, 4, 3], "DT_FLOAT")}, ["sh", "y"])
    # WHEN two different batch sizes run THEN both reshape like numpy
    for batch in (1, 3):
        x = RNG.normal(size=(batch, 2, 4, 3)).astype(np.float32)
        sh, y = run(path, {"x": x})
        assert sh.dtype == np.int32
        np.testing.assert_array_equal(sh, [batch, 2, 4, 3])
        np.testing.assert_array_equal(y, x.reshape(batch, 8, 3))


@pytest.mark.parametrize(
    ("begin", "end", "step", "masks", "expected"),
    [
        ([1, 0], [3, 4], [1, 2], {}, np.s_[1:3, 0:4:2]),
        ([0, 1], [0, 0], [1, 1], {"begin_mask": 1, "end_mask": 3}, np.s_[:, 1:]),
        ([-1, 0], [0, 0], [1, 1], {"shrink_axis_mask": 1, "end_mask": 2}, np.s_[-1, :]),
        ([0, -1], [0, 0], [1, -1], {"begin_mask": 3, "end_mask": 3}, np.s_[:, ::-1]),
    ],
)
def test_strided_slice_matches_numpy(
    tmp_path: Path, begin: list[int], end: list[int], step: list[int], masks: dict[str, int], expected: object
) -> None:
    attr = {key: {"i": str(value)} for key, value in masks.items()}
    nodes = [{"name": "y", "op": "StridedSlice", "input": ["x", "b", "e", "s"], "attr": attr}]
    consts = {"b": np.array(begin, np.int32), "e": np.array(end, np.int32), "s": np.array(step, np.int32)}
    path = build(tmp_path, nodes, consts, {"x": ([4, 5], "DT_FLOAT")}, ["y"])
    x = RNG.normal(size=(4, 5)).astype(np.float32)
    (y,) = run(path, {"x": x})
    np.testing.assert_array_equal(y, x[expected])  # type: ignore[index]


def test_depth_to_space_nhwc_uses_tf_order(tmp_path: Path) -> None:
    attr = {"block_size": {"i": "2"}, "data_format": _s("NHWC")}
    nodes = [{"name": "y", "op": "DepthToSpace", "input": ["x"], "attr": attr}]
    path = build(tmp_path, nodes, {}, {"x": ([1, 3, 2, 8], "DT_FLOAT")}, ["y"])
    x = RNG.normal(size=(1, 3, 2, 8)).astype(np.float32)
    (y,) = run(path, {"x": x})
    # TF: out[b, h*2+i, w*2+j, c] = in[b, h, w, (i*2+j)*C + c]
    reference = x.reshape(1, 3, 2, 2, 2, 2).transpose(0, 1, 3, 2, 4, 5).reshape(1, 6, 4, 2)
    np.testing.assert_array_equal(y, reference)


def test_signature_under_user_metadata_and_aliased_outputs(tmp_path: Path) -> None:
    # GIVEN blazeface's layout (signature inside userDefinedMetadata) and facemesh's alias key ("objects")
    nodes = [
        {"name": "a", "op": "Sigmoid", "input": ["x"]},
        {"name": "b", "op": "Relu", "input": ["x"]},
    ]
    path = build(tmp_path, nodes, {}, {"x": ([3], "DT_FLOAT")}, ["a"])
    model = json.loads(path.read_text())
    del model["signature"]
    model["userDefinedMetadata"] = {"signature": {"outputs": {"objects": {"name": "a:0"}, "b:0": {"name": "b:0"}}}}
    path.write_text(json.dumps(model))
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    # WHEN converted THEN both outputs come out, under their tensor names
    a, b = run(path, {"x": x})
    np.testing.assert_allclose(a, 1 / (1 + np.exp(-x)), rtol=1e-6)
    np.testing.assert_array_equal(b, np.maximum(x, 0))
