"""EMANet's EM attention unit, written from the authors' code (XiaLiPKU/EMANet, network.py).

Li, Zhong, Wu, Yang, Lin, Liu, "Expectation-Maximization Attention Networks for Semantic
Segmentation", ICCV 2019. As in the code's `EMAU`: conv1 (1×1, bias), `stage_num` EM
iterations under `torch.no_grad()`, reconstruction, ReLU, conv2 (1×1 without bias + BN),
residual and ReLU. The bases `mu` [1, C, K] are a buffer, as in the code; the moving average
that updates them in training lives in the code's train.py and is left out. Attribute names
are the official ones (conv1, conv2.0, conv2.1, mu), so official checkpoints load as they are.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import nn


class EMAUReference(nn.Module):
    def __init__(self, c: int, k: int, stage_num: int = 3) -> None:
        super().__init__()
        self.stage_num = stage_num
        mu = torch.empty(1, c, k).normal_(0, math.sqrt(2.0 / k))
        self.register_buffer("mu", self._l2norm(mu, dim=1))
        self.conv1 = nn.Conv2d(c, c, 1)
        self.conv2 = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idn = x
        x = self.conv1(x)
        b, c, h, w = x.size()
        x = x.view(b, c, h * w)                      # b * c * n
        mu = self.mu.repeat(b, 1, 1)                 # b * c * k
        with torch.no_grad():
            for _ in range(self.stage_num):
                x_t = x.permute(0, 2, 1)             # b * n * c
                z = torch.bmm(x_t, mu)               # b * n * k
                z = F.softmax(z, dim=2)
                z_ = z / (1e-6 + z.sum(dim=1, keepdim=True))
                mu = torch.bmm(x, z_)                # b * c * k
                mu = self._l2norm(mu, dim=1)
        z_t = z.permute(0, 2, 1)                     # b * k * n
        x = mu.matmul(z_t)                           # b * c * n
        x = x.view(b, c, h, w)
        x = F.relu(x)
        x = self.conv2(x)
        x = x + idn
        return F.relu(x)

    @staticmethod
    def _l2norm(inp: torch.Tensor, dim: int) -> torch.Tensor:
        return inp / (1e-6 + inp.norm(dim=dim, keepdim=True))
