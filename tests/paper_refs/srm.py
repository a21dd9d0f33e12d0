"""SRM, written from the authors' code (hyunjaelee410/style-based-recalibration-module,
models/recalibration_modules.py, SRMLayer).

Lee, Kim, Nam, "SRM: A Style-based Recalibration Module for Convolutional Neural Networks",
ICCV 2019; survey §3.1.3, eqs. (5)-(6). Attribute names and shapes are the official ones
(`cfc` [C, 2], `bn` a BatchNorm2d), which are also the compiled block's state_dict keys.
"""

from __future__ import annotations

import torch
from torch import nn


class SRMReference(nn.Module):
    def __init__(self, C: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.cfc = nn.Parameter(torch.zeros(C, 2))  # the code fills it with 0
        self.bn = nn.BatchNorm2d(C, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, _, _ = x.shape
        mean = x.view(n, c, -1).mean(dim=2).view(n, c, -1)
        std = x.view(n, c, -1).std(dim=2).view(n, c, -1)  # unbiased, no epsilon
        t = torch.cat((mean, std), dim=2)  # N x C x 2
        z = (t * self.cfc[None, :, :]).sum(dim=2)[:, :, None, None]  # N x C x 1 x 1
        return x * torch.sigmoid(self.bn(z))
