"""The small CNN, batch augmentation on cached context crops, and ONNX export (torch: train-time only)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

ONNX_OPSET = 17


def _conv(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


class SmallCNN(nn.Module):
    """~120k parameters at width 1.0; 64x64 input -> 8x8 before global pooling."""

    def __init__(self, num_classes: int, width: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()
        c = [max(8, int(round(v * width))) for v in (24, 32, 48, 48, 88, 88)]
        self.features = nn.Sequential(
            _conv(3, c[0], 2),
            _conv(c[0], c[1], 1),
            _conv(c[1], c[2], 2),
            _conv(c[2], c[3], 1),
            _conv(c[3], c[4], 2),
            _conv(c[4], c[5], 1),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c[5], num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(self.features(x), 1)
        out: torch.Tensor = self.head(pooled)
        return out


class WithSoftmax(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@dataclass(frozen=True)
class Augment:
    """Crop jitter (as fractions of the box side) and photometric jitter, applied per sample."""

    shift: float = 0.15
    shift_y_bias: float = 0.0  # mean downward shift (e.g. head boxes from pose sit a little low)
    scale: tuple[float, float] = (0.8, 1.35)
    aspect: float = 0.15
    rotate_deg: float = 8.0
    flip: bool = True
    color: float = 0.3
    hue: float = 0.08
    gray_prob: float = 0.05
    small_prob: float = 0.2
    small_min_px: int = 12


def crop_batch(
    context: torch.Tensor,
    crop_fraction: float,
    box_fraction: float,
    out_size: int,
    augment: Augment | None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Model crops from context crops (uint8 [N, 3, C, C] RGB) -> float [N, 3, S, S] in 0..1.

    crop_fraction: the model crop's side as a fraction of the context side (no jitter);
    box_fraction: the labelled box's side as a fraction of the context side (for shifts).
    """
    n = context.shape[0]
    images = context.float() / 255.0
    theta = torch.zeros(n, 2, 3)
    if augment is None:
        theta[:, 0, 0] = crop_fraction
        theta[:, 1, 1] = crop_fraction
    else:

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(n, generator=generator)

        scale = torch.exp(uniform(math.log(augment.scale[0]), math.log(augment.scale[1])))
        aspect = torch.exp(uniform(-augment.aspect, augment.aspect))
        angle = uniform(-augment.rotate_deg, augment.rotate_deg) * math.pi / 180.0
        sx = crop_fraction * scale * aspect.sqrt()
        sy = crop_fraction * scale / aspect.sqrt()
        if augment.flip:
            sx = sx * torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta[:, 0, 0], theta[:, 0, 1] = sx * cos, -sy * sin
        theta[:, 1, 0], theta[:, 1, 1] = sx * sin, sy * cos
        theta[:, 0, 2] = uniform(-augment.shift, augment.shift) * box_fraction * 2.0
        theta[:, 1, 2] = (uniform(-augment.shift, augment.shift) + augment.shift_y_bias) * box_fraction * 2.0
    grid = F.affine_grid(theta, [n, 3, out_size, out_size], align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if augment is None:
        return out
    # Photometric jitter: brightness, contrast, saturation, hue-like channel gains, rare grayscale.
    c = augment.color

    def per_sample(lo: float, hi: float) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(n, 1, 1, 1, generator=generator)).to(out.dtype)

    gray = out.mean(dim=1, keepdim=True)
    out = gray + (out - gray) * per_sample(1 - c, 1 + c)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = mean + (out - mean) * per_sample(1 - c, 1 + c)
    out = out * per_sample(1 - c, 1 + c)
    if augment.hue > 0:
        gains = 1 + augment.hue * (2 * torch.rand(n, 3, 1, 1, generator=generator) - 1)
        out = out * gains
    if augment.gray_prob > 0:
        to_gray = torch.rand(n, 1, 1, 1, generator=generator) < augment.gray_prob
        out = torch.where(to_gray, out.mean(dim=1, keepdim=True).expand_as(out), out)
    if augment.small_prob > 0:
        # Small far-away objects: downscale then upscale back, as a low-resolution crop would look.
        pick = torch.rand(n, generator=generator) < augment.small_prob
        if bool(pick.any()):
            side = int(torch.randint(augment.small_min_px, out_size, (1,), generator=generator))
            small = F.interpolate(out[pick], size=(side, side), mode="area")
            out[pick] = F.interpolate(small, size=(out_size, out_size), mode="bilinear", align_corners=False)
    return out.clamp(0.0, 1.0)


def normalise(batch: torch.Tensor, mean: tuple[float, float, float], std: tuple[float, float, float]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=batch.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=batch.dtype).view(1, 3, 1, 1)
    return (batch - m) / s


def export_onnx(net: nn.Module, input_size: int, path: Path) -> None:
    """Export with softmax inside; input `input` [N, 3, S, S] float32, output `probabilities` [N, C]."""
    wrapped = WithSoftmax(net).eval()
    dummy = torch.zeros(1, 3, input_size, input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped,
            (dummy,),
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["input"],
            output_names=["probabilities"],
            dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}},
            do_constant_folding=True,
        )
