"""Coordinate attention, written from the authors' code (houqb/CoordAttention, coordatt.py).

Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile Network Design", CVPR 2021;
survey §3.5.5, eqs. (101)-(105). The survey's δ in eq. (104) is ReLU; the code (kept here)
uses h_swish. Attribute names are the official ones (conv1, bn1, conv_h, conv_w), with the
official 2-D 1×1 convolutions, so official checkpoints load as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import nn


class CoordAttReference(nn.Module):
    def __init__(self, C: int, r: int = 32, min_width: int = 8) -> None:
        super().__init__()
        mip = max(min_width, C // r)
        self.conv1 = nn.Conv2d(C, mip, kernel_size=1, stride=1, padding=0)
        self.bn1 = nn.BatchNorm2d(mip)
        self.conv_h = nn.Conv2d(mip, C, kernel_size=1, stride=1, padding=0)
        self.conv_w = nn.Conv2d(mip, C, kernel_size=1, stride=1, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        x_h = F.adaptive_avg_pool2d(x, (h, 1))  # the code's AdaptiveAvgPool2d((None, 1))
        x_w = F.adaptive_avg_pool2d(x, (1, w)).permute(0, 1, 3, 2)
        y = torch.cat([x_h, x_w], dim=2)
        y = self.bn1(self.conv1(y))
        y = y * F.relu6(y + 3) / 6  # h_swish
        x_h, x_w = torch.split(y, [h, w], dim=2)
        x_w = x_w.permute(0, 1, 3, 2)
        a_h = self.conv_h(x_h).sigmoid()
        a_w = self.conv_w(x_w).sigmoid()
        return x * a_w * a_h
