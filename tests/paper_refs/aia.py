"""Bilinear attention with attention-in-attention (AiA) reference, from the authors' code.

Paper: Fang, Zhou, Roy, Petersson, Harandi, "Bilinear Attention Networks for Person
Retrieval", ICCV 2019. Survey: Guo et al., section 3.1.8, eqs (18)-(21).
Authors' code: PengfeiFANGanu/Attention-in-Attention-Networks
``models/bilinear_baseline_AIA.py`` (BilinearAttention, _dim_change, ConvBlock), transcribed:
the per-pixel outer product by ``bmm``, its upper triangle by ``torch.diagonal`` offsets
0, -1, .., the inner channel attention on the average-pooled map, ``sigmoid(mCha * output)``
times the input. The code's reduction is the hard-coded ``inChannels // 16``; here ``r``.
The compiled ``omega`` is a dense layer: its [C, U] weight is the code's [C, U, 1, 1]
(``from_compiled``); the compiled gather's index buffer has no counterpart and is dropped.
"""

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn


class ConvBlock(nn.Module):
    """The code's convolution + BN + ReLU."""

    def __init__(self, in_c: int, out_c: int, k: int, s: int = 1, p: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_c, out_c, k, stride=s, padding=p)
        self.bn = nn.BatchNorm2d(out_c)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class DimChange(nn.Sequential):
    """The code's _dim_change: one ConvBlock with a 1x1 kernel, held as `conv`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.add_module("conv", ConvBlock(in_channels, out_channels, k=1, s=1))


class BilinearAttention(nn.Module):
    def __init__(self, in_channels: int, r: int = 16) -> None:
        super().__init__()
        mid = in_channels // r
        self.dimReduceLayer1 = DimChange(in_channels, mid)
        self.dimReduceLayer2 = DimChange(mid * (mid + 1) // 2, in_channels)
        self.dimReduceLayer3 = DimChange(mid * (mid + 1) // 2, in_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        input_x = x
        x = self.dimReduceLayer1(x)
        batches, channels, rows, cols = x.size()
        x = x.permute(0, 2, 3, 1).contiguous().view(-1, channels)
        x = torch.bmm(x.unsqueeze(2), x.unsqueeze(1))  # [N*H*W, c', c']
        x_list = [torch.diagonal(x, offset=-i, dim1=1, dim2=2) for i in range(channels)]
        x = torch.cat(x_list, dim=1)
        x = x.view(batches, rows, cols, -1).permute(0, 3, 1, 2).contiguous()
        m_cha = F.avg_pool2d(x, x.size()[2:])
        m_cha = self.dimReduceLayer3(m_cha)
        output = self.dimReduceLayer2(x)
        s = torch.sigmoid(m_cha * output)
        return s * input_x, s


_NAMES = {"phi.0": "dimReduceLayer1.conv.conv", "phi.1": "dimReduceLayer1.conv.bn",
          "psi.0": "dimReduceLayer2.conv.conv", "psi.1": "dimReduceLayer2.conv.bn",
          "omega.0": "dimReduceLayer3.conv.conv", "omega.1": "dimReduceLayer3.conv.bn"}


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled state_dict under the code's names (the gather's index buffer dropped)."""
    out = {}
    for key, v in state.items():
        layer, _, leaf = key.rpartition(".")
        if layer not in _NAMES:
            continue
        reshaped = v.reshape(*v.shape, 1, 1) if (layer, leaf) == ("omega.0", "weight") else v
        out[f"{_NAMES[layer]}.{leaf}"] = reshaped
    return out
