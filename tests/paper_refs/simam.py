"""SimAM reference, written from the authors' code (ZjjConan/SimAM, simam_module.py).

Yang, Zhang, Li, Xie, "SimAM: A Simple, Parameter-Free Attention Module for Convolutional
Neural Networks", ICML 2021; survey §3.5.6, eqs. (99)-(101). The module has no parameters.
As in the code, the mean divides by H·W and the variance by n = H·W − 1; λ (`e_lambda`) is
1e-4 in the module and the paper, 0.1 in the released ImageNet checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn


class SimAMReference(nn.Module):
    def __init__(self, lam: float = 1e-4) -> None:
        super().__init__()
        self.e_lambda = lam
        self.activaton = nn.Sigmoid()  # sic, the code's attribute name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.size()
        n = w * h - 1
        x_minus_mu_square = (x - x.mean(dim=[2, 3], keepdim=True)).pow(2)
        y = x_minus_mu_square / (
            4 * (x_minus_mu_square.sum(dim=[2, 3], keepdim=True) / n + self.e_lambda)) + 0.5
        return x * self.activaton(y)
