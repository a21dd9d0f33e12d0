"""Gather-excite: GE-θ⁻ (parameter free), GE-θ and GE-θ⁺, written from the paper and timm's
layers/gather_excite.py (GatherExcite: extent, extra_params, use_mlp); the authors released
Caffe prototxts only.

Hu, Shen, Albanie, Sun, Vedaldi, "Gather-Excite: Exploiting Feature Context in Convolutional
Neural Networks", NeurIPS 2018; survey §3.2.9, eqs. (45)-(47).
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import nn


class GatherExciteReference(nn.Module):
    """GE-θ⁻: an average-pool gather of extent e, no parameters."""

    def __init__(self, extent: int = 2) -> None:
        super().__init__()
        self.gk = 2 * extent - 1  # gather window
        self.gs = extent  # gather stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x_ge = F.avg_pool2d(x, kernel_size=self.gk, stride=self.gs, padding=self.gk // 2,
                            count_include_pad=False)
        if x_ge.shape[-1] != 1 or x_ge.shape[-2] != 1:
            x_ge = F.interpolate(x_ge, size=size)  # mode="nearest", the default
        return x * torch.sigmoid(x_ge)


def _reduced_width(channels: int, rd_ratio: float) -> int:
    """timm's make_divisible(channels * rd_ratio, divisor=1, round_limit=0.): half rounds up."""
    return max(1, int(channels * rd_ratio + 0.5))


class _ConvMlp(nn.Module):
    """1 × 1 conv with bias, ReLU, 1 × 1 conv with bias (timm's ConvMlp, no norm, no dropout)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class GatherExciteParamReference(nn.Module):
    """GE-θ (use_mlp=False) and GE-θ⁺ (use_mlp=True), with timm's parameterised gather.

    The gather is log2(extent) stages of a depthwise 3 × 3 conv (stride 2, padding 1, no bias)
    and a BatchNorm2d, with a ReLU between two stages; timm's module names (gather.conv1,
    gather.norm1, gather.act1, ..., mlp.fc1, mlp.fc2).
    """

    def __init__(self, channels: int, extent: int = 8, use_mlp: bool = False,
                 rd_ratio: float = 1.0 / 16) -> None:
        super().__init__()
        assert extent % 2 == 0
        stages = int(math.log2(extent))
        self.gather = nn.Sequential()
        for i in range(1, stages + 1):
            self.gather.add_module(f"conv{i}", nn.Conv2d(channels, channels, 3, stride=2,
                                                         padding=1, groups=channels,
                                                         bias=False))
            self.gather.add_module(f"norm{i}", nn.BatchNorm2d(channels))
            if i != stages:
                self.gather.add_module(f"act{i}", nn.ReLU())
        hidden = _reduced_width(channels, rd_ratio)
        self.mlp = _ConvMlp(channels, hidden) if use_mlp else nn.Identity()

    def gate_map(self, x: torch.Tensor) -> torch.Tensor:
        """σ(Interp(f(gather(x)))): the attention map, [N, C, H, W] (or [N, C, 1, 1])."""
        x_ge = self.mlp(self.gather(x))
        if x_ge.shape[-1] != 1 or x_ge.shape[-2] != 1:
            x_ge = F.interpolate(x_ge, size=x.shape[-2:])  # mode="nearest", the default
        return torch.sigmoid(x_ge)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate_map(x)


def from_compiled(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The compiled GETheta / GEThetaPlus state_dict under timm's names (same shapes)."""
    out = {}
    for k, v in state.items():
        if re.fullmatch(r"(conv|norm)\d\.\w+", k):
            out[f"gather.{k}"] = v
        else:
            assert re.fullmatch(r"fc[12]\.(weight|bias)", k), k
            out[f"mlp.{k}"] = v
    return out
