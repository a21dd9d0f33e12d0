"""Attention gate, written from the official code: ozan-oktay/Attention-Gated-Networks,
models/layers/grid_attention_layer.py, `_GridAttentionBlockND` as `GridAttentionBlock2D`
builds it (mode='concatenation', sub_sample_factor 2, dimension 2).

Oktay et al., "Attention U-Net: Learning Where to Look for the Pancreas", MIDL 2018; survey
eqs. (32)-(33). The code resamples with `F.upsample(..., mode='bilinear')` and no
align_corners; `F.upsample` is a deprecated alias of `F.interpolate`, called here the same way
(align_corners=False, torch's default since 0.4). The code's kaiming init is not reproduced:
the tests load the compiled block's weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import nn


class GridAttentionBlock2DReference(nn.Module):
    def __init__(self, in_channels: int, gating_channels: int, inter_channels: int,
                 sub_sample_factor: int = 2) -> None:
        super().__init__()
        self.upsample_mode = "bilinear"
        self.W = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, kernel_size=1, stride=1, padding=0),
            nn.BatchNorm2d(in_channels),
        )
        self.theta = nn.Conv2d(in_channels, inter_channels, kernel_size=sub_sample_factor,
                               stride=sub_sample_factor, padding=0, bias=False)
        self.phi = nn.Conv2d(gating_channels, inter_channels, kernel_size=1, stride=1,
                             padding=0, bias=True)
        self.psi = nn.Conv2d(inter_channels, 1, kernel_size=1, stride=1, padding=0, bias=True)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        input_size = x.size()
        assert input_size[0] == g.size(0)
        theta_x = self.theta(x)
        theta_x_size = theta_x.size()
        phi_g = F.interpolate(self.phi(g), size=theta_x_size[2:], mode=self.upsample_mode)
        f = F.relu(theta_x + phi_g, inplace=True)
        sigm_psi_f = torch.sigmoid(self.psi(f))
        sigm_psi_f = F.interpolate(sigm_psi_f, size=input_size[2:], mode=self.upsample_mode)
        y = sigm_psi_f.expand_as(x) * x
        W_y = self.W(y)
        return W_y, sigm_psi_f


def from_compiled(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The compiled keys W_conv.* and W_bn.* are the official W.0.* and W.1.*."""
    renames = {"W_conv.": "W.0.", "W_bn.": "W.1."}
    out = {}
    for key, v in state.items():
        name = key
        for old, new in renames.items():
            if key.startswith(old):
                name = new + key[len(old):]
        out[name] = v
    return out
