"""Build `nanodet-parts-int8.onnx`: the int8 NanoDet graph with the trained part head grafted onto its FPN.

Deterministic (graph surgery on the two protos, no optimiser pass), so the result is pinned by sha256 in
models.lock.json like the other built files. The persons' six outputs are untouched; the head's three outputs
are appended.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from model_workshop.parts_detector.features import HEAD_INPUTS, fpn_feature_names


def graft_part_head(nanodet: onnx.ModelProto, head: onnx.ModelProto) -> onnx.ModelProto:
    features = fpn_feature_names(nanodet)
    rename = dict(zip(HEAD_INPUTS, features, strict=True))
    taken = {n.name for n in nanodet.graph.node} | {i.name for i in nanodet.graph.initializer}
    clash = taken & ({n.name for n in head.graph.node} | {i.name for i in head.graph.initializer})
    if clash:
        raise ValueError(f"part head names clash with NanoDet's: {sorted(clash)[:5]}")
    combined = onnx.ModelProto()
    combined.CopyFrom(nanodet)
    graph = combined.graph
    for node in head.graph.node:
        copy = graph.node.add()
        copy.CopyFrom(node)
        for k, name in enumerate(copy.input):
            copy.input[k] = rename.get(name, name)
    graph.initializer.extend(head.graph.initializer)
    graph.output.extend(head.graph.output)
    onnx.checker.check_model(combined)
    return combined


def build(nanodet_int8: Path, head_path: Path, target: Path) -> None:
    onnx.save(graft_part_head(onnx.load(str(nanodet_int8)), onnx.load(str(head_path))), target)
