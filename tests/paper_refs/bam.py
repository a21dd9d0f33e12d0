"""BAM reference, written from the authors' code (Jongchan/attention-module, MODELS/bam.py).

Park, Woo, Lee, Kweon, "BAM: Bottleneck Attention Module", BMVC 2018; survey §3.5.3,
eqs. (83)-(86). As in the code: channel gate GAP -> Linear -> BatchNorm1d -> ReLU -> Linear;
spatial gate 1×1 reduce -> BN -> ReLU -> 2 × (3×3 dilated conv, padding = dilation -> BN ->
ReLU) -> 1×1 to one map; every Linear/Conv has a bias, BNs are PyTorch defaults; the branches
are joined by a product, att = 1 + σ(c · s) (the paper and eq. 85 sum them).

Deliberate departures from bam.py, none of which changes a number where bam.py runs:
* attribute names are the compiled module's (channel.fc1, spatial.dil1_bn, ...); the official
  nn.Sequential names are noted beside each layer;
* GAP is a mean over H, W (bam.py's ``avg_pool2d(x, H, stride=H)`` is that only when H = W,
  and fails or returns several values per channel otherwise);
* the undefined ``self.gate_activation`` line of ChannelGate is left out (it raises NameError).
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelGate(nn.Module):
    def __init__(self, gate_channel: int, reduction_ratio: int = 16) -> None:
        super().__init__()
        m = gate_channel // reduction_ratio
        self.fc1 = nn.Linear(gate_channel, m)        # gate_c.gate_c_fc_0
        self.bn = nn.BatchNorm1d(m)                  # gate_c.gate_c_bn_1
        self.fc2 = nn.Linear(m, gate_channel)        # gate_c.gate_c_fc_final

    def forward(self, in_tensor: torch.Tensor) -> torch.Tensor:
        avg_pool = in_tensor.mean(dim=(2, 3))        # Flatten(avg_pool2d(x, H, stride=H))
        c = self.fc2(torch.relu(self.bn(self.fc1(avg_pool))))
        return c.unsqueeze(2).unsqueeze(3).expand_as(in_tensor)


class SpatialGate(nn.Module):
    def __init__(self, gate_channel: int, reduction_ratio: int = 16, dilation_conv_num: int = 2,
                 dilation_val: int = 4) -> None:
        super().__init__()
        assert dilation_conv_num == 2, "the compiled block names exactly two dilated convs"
        m = gate_channel // reduction_ratio
        self.reduce = nn.Conv2d(gate_channel, m, kernel_size=1)            # gate_s_conv_reduce0
        self.reduce_bn = nn.BatchNorm2d(m)                                 # gate_s_bn_reduce0
        self.dil1 = nn.Conv2d(m, m, kernel_size=3, padding=dilation_val,
                              dilation=dilation_val)                       # gate_s_conv_di_0
        self.dil1_bn = nn.BatchNorm2d(m)                                   # gate_s_bn_di_0
        self.dil2 = nn.Conv2d(m, m, kernel_size=3, padding=dilation_val,
                              dilation=dilation_val)                       # gate_s_conv_di_1
        self.dil2_bn = nn.BatchNorm2d(m)                                   # gate_s_bn_di_1
        self.final = nn.Conv2d(m, 1, kernel_size=1)                        # gate_s_conv_final

    def forward(self, in_tensor: torch.Tensor) -> torch.Tensor:
        z = torch.relu(self.reduce_bn(self.reduce(in_tensor)))
        z = torch.relu(self.dil1_bn(self.dil1(z)))
        z = torch.relu(self.dil2_bn(self.dil2(z)))
        return self.final(z).expand_as(in_tensor)


class BAMReference(nn.Module):
    def __init__(self, gate_channel: int, r: int = 16, d: int = 4) -> None:
        super().__init__()
        self.channel = ChannelGate(gate_channel, r)       # channel_att
        self.spatial = SpatialGate(gate_channel, r, dilation_val=d)   # spatial_att

    def forward(self, in_tensor: torch.Tensor) -> torch.Tensor:
        att = 1 + torch.sigmoid(self.channel(in_tensor) * self.spatial(in_tensor))
        return att * in_tensor
