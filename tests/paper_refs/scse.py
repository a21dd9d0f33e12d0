"""scSE reference, written from the authors' code (ai-med/squeeze_and_excitation,
squeeze_and_excitation.py: ChannelSELayer, SpatialSELayer, ChannelSpatialSELayer).

Roy, Navab, Wachinger, MICCAI 2018 / IEEE TMI 2018; survey §3.5.4, eqs. (87)-(91). As in the
code: cSE's two Linear layers have biases, r = 2 by default, sSE is a 1×1 Conv2d C -> 1 with a
bias, and the two recalibrated maps are fused by an element-wise max. ``fusion="add"`` gives
the MICCAI paper's sum (the spec's block `SCSEAdd`). Attribute names are the official ones.
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelSELayer(nn.Module):
    def __init__(self, num_channels: int, reduction_ratio: int = 2) -> None:
        super().__init__()
        num_channels_reduced = num_channels // reduction_ratio
        self.fc1 = nn.Linear(num_channels, num_channels_reduced, bias=True)
        self.fc2 = nn.Linear(num_channels_reduced, num_channels, bias=True)
        self.relu = nn.ReLU()
        self.sigmoid = nn.Sigmoid()

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        batch_size, num_channels, _, _ = input_tensor.size()
        squeeze_tensor = input_tensor.view(batch_size, num_channels, -1).mean(dim=2)
        fc_out_1 = self.relu(self.fc1(squeeze_tensor))
        fc_out_2 = self.sigmoid(self.fc2(fc_out_1))
        a, b = squeeze_tensor.size()
        return torch.mul(input_tensor, fc_out_2.view(a, b, 1, 1))


class SpatialSELayer(nn.Module):
    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_channels, 1, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        batch_size, _, a, b = input_tensor.size()
        squeeze_tensor = self.sigmoid(self.conv(input_tensor))
        return torch.mul(input_tensor, squeeze_tensor.view(batch_size, 1, a, b))


class SCSEReference(nn.Module):
    """ChannelSpatialSELayer; ``fusion`` is "max" (the code) or "add" (the MICCAI paper)."""

    def __init__(self, num_channels: int, reduction_ratio: int = 2, fusion: str = "max") -> None:
        super().__init__()
        self.cSE = ChannelSELayer(num_channels, reduction_ratio)
        self.sSE = SpatialSELayer(num_channels)
        self.fusion = fusion

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        if self.fusion == "max":
            return torch.max(self.cSE(input_tensor), self.sSE(input_tensor))
        return self.cSE(input_tensor) + self.sSE(input_tensor)
