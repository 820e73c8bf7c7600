"""Graph passes applied to an imported model after `tfjs_import.convert`, named in models.lock.json."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import onnx
from onnx import helper, numpy_helper

from model_workshop.tfjs_graph import TfjsImportError

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
