"""GLTR's dilated temporal pyramid and temporal self-attention, from the authors' code.

Li, Wang, Tian, Gao, Zhang, "Global-Local Temporal Representations for Video Person
Re-Identification", ICCV 2019. Written from ljn114514/GLTR: resnet.py (ResNet.forward after
the per-frame `feat` layer: feat1-feat3, the concat with the input, the mean over frames) and
NonLocalBlock1D.py (the temporal self-attention, kept as `Nonlocal_block0`). The per-frame
width is C (the code's 128); the pyramid convs are the code's Conv2d(1, C, (3, C)) with
dilations (1, 1), (2, 1), (3, 1), so their weights are [C, 1, 3, C]: `from_compiled` moves
the compiled Conv1d kernels [C, C, 3] into that layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import nn


class NonLocalBlock1D(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.inter_channels = max(in_channels // 2, 1)
        self.g = nn.Conv1d(in_channels, self.inter_channels, 1)
        self.W = nn.Sequential(nn.Conv1d(self.inter_channels, in_channels, 1),
                               nn.BatchNorm1d(in_channels))
        nn.init.constant_(self.W[1].weight, 0)
        nn.init.constant_(self.W[1].bias, 0)
        self.theta = nn.Conv1d(in_channels, self.inter_channels, 1)
        self.phi = nn.Conv1d(in_channels, self.inter_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.size(0)
        g_x = self.g(x).view(n, self.inter_channels, -1).permute(0, 2, 1)
        theta_x = self.theta(x).view(n, self.inter_channels, -1).permute(0, 2, 1)
        phi_x = self.phi(x).view(n, self.inter_channels, -1)
        f_div_c = F.softmax(torch.matmul(theta_x, phi_x), dim=-1)
        y = torch.matmul(f_div_c, g_x).permute(0, 2, 1).contiguous()
        y = y.view(n, self.inter_channels, *x.size()[2:])
        return self.W(y) + x


class GLTRReference(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.feat1 = nn.Conv2d(1, c, (3, c), dilation=(1, 1), padding=(1, 0), bias=False)
        self.feat2 = nn.Conv2d(1, c, (3, c), dilation=(2, 1), padding=(2, 0), bias=False)
        self.feat3 = nn.Conv2d(1, c, (3, c), dilation=(3, 1), padding=(3, 0), bias=False)
        self.Nonlocal_block0 = NonLocalBlock1D(4 * c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, C, T], the code's x0 (its `feat` output viewed per clip, transposed)."""
        x0 = x
        x = x.transpose(1, 2).unsqueeze(dim=1)             # [N, 1, T, C]
        x1 = self.feat1(x).squeeze(dim=3)
        x2 = self.feat2(x).squeeze(dim=3)
        x3 = self.feat3(x).squeeze(dim=3)
        x = torch.cat((x0, x1, x2, x3), dim=1)
        return self.Nonlocal_block0(x).mean(dim=2)


def from_compiled(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Conv1d kernels [Out, In, 3] -> the code's Conv2d kernels [Out, 1, 3, In]."""
    pyramid = ("feat1", "feat2", "feat3")
    return {k: v.permute(0, 2, 1).unsqueeze(1) if k.split(".")[0] in pyramid else v
            for k, v in state.items()}
