"""HamNet's Hamburger (V1, NMF), written from the authors' code (Gsunshine/Enjoy-Hamburger).

Geng, Guo, Chen, Li, Wei, Lin, "Is Attention Better Than Matrix Decomposition?", ICLR 2021.
As in seg/HamNet/hamburger/burger.py (HamburgerV1) and ham.py (_MatrixDecomposition2DBase,
NMF2D) with S = 1 and D = C: lower bread (1×1 conv + ReLU), NMF by `steps` multiplicative
updates under torch.no_grad() from codes softmax(xᵀ bases), one differentiable codes update
(`compute_coef`), reconstruction, upper bread (1×1 conv without bias + BN, momentum 3e-4),
relu(x + ·). The code draws its bases per forward (torch.rand, then F.normalize over C); here
that draw is fixed, the buffer `ham.bases` [1, C, R], normalised in forward as `_build_bases`
does. The spec's one addition, |bases| before the normalisation, is the identity on every draw
and is taken here too. Left out: separate train/eval step counts and `online_update`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import nn


class NMF2DReference(nn.Module):
    def __init__(self, c: int, r: int, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.register_buffer("bases", torch.rand(1, c, r))

    @torch.no_grad()
    def local_inference(self, x, bases):
        coef = torch.bmm(x.transpose(1, 2), bases)
        coef = F.softmax(coef, dim=-1)                     # inv_t = 1 for NMF
        for _ in range(self.steps):
            bases, coef = self.local_step(x, bases, coef)
        return bases, coef

    @torch.no_grad()
    def local_step(self, x, bases, coef):
        numerator = torch.bmm(x.transpose(1, 2), bases)
        denominator = coef.bmm(bases.transpose(1, 2).bmm(bases))
        coef = coef * numerator / (denominator + 1e-6)
        numerator = torch.bmm(x, coef)
        denominator = bases.bmm(coef.transpose(1, 2).bmm(coef))
        bases = bases * numerator / (denominator + 1e-6)
        return bases, coef

    def compute_coef(self, x, bases, coef):
        numerator = torch.bmm(x.transpose(1, 2), bases)
        denominator = coef.bmm(bases.transpose(1, 2).bmm(bases))
        return coef * numerator / (denominator + 1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.view(b, c, h * w)
        bases = F.normalize(self.bases.abs(), dim=1).repeat(b, 1, 1)   # _build_bases
        bases, coef = self.local_inference(x, bases)
        coef = self.compute_coef(x, bases, coef)
        x = torch.bmm(bases, coef.transpose(1, 2))
        return x.view(b, c, h, w)


class HamburgerReference(nn.Module):
    def __init__(self, c: int, r: int = 64, steps: int = 6) -> None:
        super().__init__()
        self.lower_bread = nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU(inplace=True))
        self.ham = NMF2DReference(c, r, steps)
        self.upper_bread = nn.Sequential(nn.Conv2d(c, c, 1, bias=False),
                                         nn.BatchNorm2d(c, momentum=3e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.lower_bread(x)
        x = self.ham(x)
        x = self.upper_bread(x)
        return F.relu(x + shortcut)


def from_compiled(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The compiled bases [C, R] are the code's [1, C, R] buffer without its leading 1."""
    return {k: v.unsqueeze(0) if k == "ham.bases" else v for k, v in state.items()}
