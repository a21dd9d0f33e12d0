"""Gather-excite GE-θ⁻ (parameter free), written from the paper and timm's
layers/gather_excite.py (GatherExcite with use_mlp=False); the authors released Caffe
prototxts only.

Hu, Shen, Albanie, Sun, Vedaldi, "Gather-Excite: Exploiting Feature Context in Convolutional
Neural Networks", NeurIPS 2018; survey §3.2.9, eqs. (45)-(47).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import nn


class GatherExciteReference(nn.Module):
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
