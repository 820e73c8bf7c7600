"""The graph builder of the TFJS importer: TF node attributes, constants, and the ONNX nodes written so far.

The per-op converters (tfjs_ops.py) write into a `GraphBuilder`; `tfjs_import.convert` walks the TF graph.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 17

TF_DTYPES: dict[str, np.dtype[Any]] = {
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


def attr_ints(node: dict[str, Any], key: str) -> list[int]:
    return [int(i) for i in node.get("attr", {}).get(key, {}).get("list", {}).get("i", [])]


def attr_str(node: dict[str, Any], key: str, default: str = "") -> str:
    value = node.get("attr", {}).get(key, {}).get("s")
    return base64.b64decode(value).decode() if value else default


def attr_strs(node: dict[str, Any], key: str) -> list[str]:
    return [base64.b64decode(s).decode() for s in node.get("attr", {}).get(key, {}).get("list", {}).get("s", [])]


def attr(node: dict[str, Any], key: str, kind: str, default: Any) -> Any:
    return node.get("attr", {}).get(key, {}).get(kind, default)


@dataclass
class GraphBuilder:
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


def tensor_name(name: str) -> str:
    """TF input reference -> tensor name ("node:0" and "node" are the same tensor)."""
    return name[:-2] if name.endswith(":0") else name


Converter = Callable[[GraphBuilder, dict[str, Any], list[str]], None]
