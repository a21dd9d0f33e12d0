"""Gated channel transformation, written from the authors' code (z-x-yang/GCT, PyTorch/GCT.py,
mode 'l2').

Yang, Zhu, Wu, Yang, "Gated Channel Transformation for Visual Recognition", CVPR 2020; survey
§3.1.4, eqs. (7)-(8). Parameter names are the official ones (alpha, gamma, beta) and so are
their [1, C, 1, 1] shapes; the compiled block holds the same numbers as [C] tensors.
"""

from __future__ import annotations

import torch
from torch import nn


class GCTReference(nn.Module):
    def __init__(self, C: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, C, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, C, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, C, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embedding = (x.pow(2).sum((2, 3), keepdim=True) + self.eps).pow(0.5) * self.alpha
        norm = self.gamma / (embedding.pow(2).mean(dim=1, keepdim=True) + self.eps).pow(0.5)
        gate = 1.0 + torch.tanh(embedding * norm + self.beta)
        return x * gate
