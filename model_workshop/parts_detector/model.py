"""The part head (torch, train time) and its export to a small ONNX graph over the three FPN feature maps."""

from __future__ import annotations

import math

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from model_workshop.parts_detector.features import HEAD_INPUTS
from services.detector.local_engine.parts import PART_CHANNELS, PARTS

N_PARTS = len(PARTS)
LEAKY = 0.1  # NanoDet's own activation slope
HEAD_OUTPUTS = ("parts_s8", "parts_s16", "parts_s32")
OPSET = 17


class ConvBN(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.LeakyReLU(LEAKY)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def fused(self) -> tuple[np.ndarray, np.ndarray]:
        """Weight and bias with the batch norm folded in (eval statistics)."""
        bn = self.bn
        factor = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
        weight = self.conv.weight.detach() * factor[:, None, None, None]
        bias = (bn.bias - bn.running_mean * factor).detach()
        return weight.numpy().astype(np.float32), bias.numpy().astype(np.float32)


class LevelTower(nn.Module):
    """1x1 reduction, then `blocks` depthwise-separable 3x3 blocks, then one 1x1 output conv (8 channels)."""

    def __init__(self, cin: int, width: int, blocks: int) -> None:
        super().__init__()
        layers: list[ConvBN] = [ConvBN(cin, width, 1)]
        for _ in range(blocks):
            layers += [ConvBN(width, width, 3, groups=width), ConvBN(width, width, 1)]
        self.layers = nn.ModuleList(layers)
        self.out = nn.Conv2d(width, PART_CHANNELS, 1)
        with torch.no_grad():
            self.out.weight.normal_(0, 0.01)
            self.out.bias.zero_()
            self.out.bias[:N_PARTS] = -math.log(99.0)  # prior 1 % part score
            self.out.bias[2 * N_PARTS :] = math.log(math.e**2 - 1)  # softplus -> 2 strides

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.out(x)


class PartHead(nn.Module):
    """One tower per FPN level (the levels' statistics differ; each tower is ~20k parameters).

    Raw output per level [B, 8, h, w]: part logits, covered logits, box distances before softplus.
    """

    def __init__(self, cin: int = 128, width: int = 64, blocks: int = 2) -> None:
        super().__init__()
        self.config = {"cin": cin, "width": width, "blocks": blocks}
        self.towers = nn.ModuleList(LevelTower(cin, width, blocks) for _ in HEAD_INPUTS)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        return [tower(f) for tower, f in zip(self.towers, features, strict=True)]


def export_onnx(head: PartHead) -> onnx.ModelProto:
    """The head as a plain ONNX graph (batch norm folded), outputs [1, cells, 8] per level with the scores and
    covered probabilities through a sigmoid and the distances through a softplus (units of the stride).

    Written node by node rather than through torch.onnx so the file is byte-for-byte a function of the weights.
    """
    head = head.eval()
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = [
        numpy_helper.from_array(np.array([0, -1, PART_CHANNELS], np.int64), "parts/shape"),
        numpy_helper.from_array(np.array([2 * N_PARTS, 4], np.int64), "parts/split"),
    ]
    for level, (tower, src, dst) in enumerate(zip(head.towers, HEAD_INPUTS, HEAD_OUTPUTS, strict=True)):
        x = src
        for i, layer in enumerate(tower.layers):
            p = f"parts/l{level}/c{i}"
            weight, bias = layer.fused()
            inits += [numpy_helper.from_array(weight, f"{p}/w"), numpy_helper.from_array(bias, f"{p}/b")]
            k = weight.shape[-1]
            nodes.append(helper.make_node("Conv", [x, f"{p}/w", f"{p}/b"], [f"{p}/conv"], name=f"{p}/Conv",
                                          group=layer.conv.groups, kernel_shape=[k, k], pads=[k // 2] * 4))
            nodes.append(helper.make_node("LeakyRelu", [f"{p}/conv"], [f"{p}/act"], name=f"{p}/LeakyRelu",
                                          alpha=LEAKY))
            x = f"{p}/act"
        p = f"parts/l{level}"
        inits += [numpy_helper.from_array(tower.out.weight.detach().numpy().astype(np.float32), f"{p}/out/w"),
                  numpy_helper.from_array(tower.out.bias.detach().numpy().astype(np.float32), f"{p}/out/b")]
        nodes += [
            helper.make_node("Conv", [x, f"{p}/out/w", f"{p}/out/b"], [f"{p}/raw"], name=f"{p}/out/Conv",
                             kernel_shape=[1, 1]),
            helper.make_node("Split", [f"{p}/raw", "parts/split"], [f"{p}/logits", f"{p}/dist"], name=f"{p}/Split",
                             axis=1),
            helper.make_node("Sigmoid", [f"{p}/logits"], [f"{p}/prob"], name=f"{p}/Sigmoid"),
            helper.make_node("Softplus", [f"{p}/dist"], [f"{p}/ltrb"], name=f"{p}/Softplus"),
            helper.make_node("Concat", [f"{p}/prob", f"{p}/ltrb"], [f"{p}/nchw"], name=f"{p}/Concat", axis=1),
            helper.make_node("Transpose", [f"{p}/nchw"], [f"{p}/nhwc"], name=f"{p}/Transpose", perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [f"{p}/nhwc", "parts/shape"], [dst], name=f"{p}/Reshape"),
        ]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, head.config["cin"], f"h{i}", f"w{i}"])
              for i, n in enumerate(HEAD_INPUTS)]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, f"cells{i}", PART_CHANNELS])
               for i, n in enumerate(HEAD_OUTPUTS)]
    graph = helper.make_graph(nodes, "part_head", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ppe-parts")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
