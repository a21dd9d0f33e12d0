"""Residual Attention Network reference: the stage-2 attention module.

Paper: Wang et al., "Residual Attention Network for Image Classification", CVPR 2017.
Survey: Guo et al., section 3.5.1, eqs (71)-(72).
Code: tengshaofeng/ResidualAttentionNetwork-pytorch, Residual-Attention-Network/model/
basic_layers.py (ResidualBlock) and attention_module.py (AttentionModule_stage2), transcribed
for in_channels = out_channels (so ResidualBlock's conv4 projection is never used and is
left out). The port's nn.UpsamplingBilinear2d(size=...) has its sizes fixed at construction;
here it is the same resize (bilinear, align_corners=True) to the size of the tensor the result
is added to, the sizes the port is built with.
"""

import re

import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn


class ResidualBlock(nn.Module):
    def __init__(self, input_channels: int, output_channels: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(input_channels)
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(input_channels, output_channels // 4, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(output_channels // 4)
        self.conv2 = nn.Conv2d(output_channels // 4, output_channels // 4, 3, 1, padding=1,
                               bias=False)
        self.bn3 = nn.BatchNorm2d(output_channels // 4)
        self.conv3 = nn.Conv2d(output_channels // 4, output_channels, 1, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        residual = x
        out = self.bn1(x)
        out1 = self.relu(out)
        out = self.conv1(out1)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn3(out)
        out = self.relu(out)
        out = self.conv3(out)
        return out + residual


def _interpolation(t: Tensor, like: Tensor) -> Tensor:
    # the port: nn.UpsamplingBilinear2d(size=like's size), i.e. align_corners=True
    return F.interpolate(t, size=like.shape[2:], mode="bilinear", align_corners=True)


class AttentionModule_stage2(nn.Module):  # noqa: N801 - the code's name
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.first_residual_blocks = ResidualBlock(in_channels, out_channels)
        self.trunk_branches = nn.Sequential(
            ResidualBlock(in_channels, out_channels),
            ResidualBlock(in_channels, out_channels),
        )
        self.mpool1 = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.softmax1_blocks = ResidualBlock(in_channels, out_channels)
        self.skip1_connection_residual_block = ResidualBlock(in_channels, out_channels)
        self.mpool2 = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.softmax2_blocks = nn.Sequential(
            ResidualBlock(in_channels, out_channels),
            ResidualBlock(in_channels, out_channels),
        )
        self.softmax3_blocks = ResidualBlock(in_channels, out_channels)
        self.softmax4_blocks = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size=1, stride=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size=1, stride=1, bias=False),
            nn.Sigmoid(),
        )
        self.last_blocks = ResidualBlock(in_channels, out_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.first_residual_blocks(x)
        out_trunk = self.trunk_branches(x)
        out_mpool1 = self.mpool1(x)
        out_softmax1 = self.softmax1_blocks(out_mpool1)
        out_skip1_connection = self.skip1_connection_residual_block(out_softmax1)
        out_mpool2 = self.mpool2(out_softmax1)
        out_softmax2 = self.softmax2_blocks(out_mpool2)
        out_interp2 = _interpolation(out_softmax2, out_softmax1) + out_softmax1
        out = out_interp2 + out_skip1_connection
        out_softmax3 = self.softmax3_blocks(out)
        out_interp1 = _interpolation(out_softmax3, out_trunk) + out_trunk
        out_softmax4 = self.softmax4_blocks(out_interp1)
        out = (1 + out_softmax4) * out_trunk
        out_last = self.last_blocks(out)
        return out_last, out_softmax4


_UNITS = {
    "pre": "first_residual_blocks", "trunk1": "trunk_branches.0",
    "trunk2": "trunk_branches.1", "down1": "softmax1_blocks",
    "skip1": "skip1_connection_residual_block", "low1": "softmax2_blocks.0",
    "low2": "softmax2_blocks.1", "up_unit": "softmax3_blocks", "y": "last_blocks",
}
_MASK = {"mask_bn1": "0", "mask_conv1": "2", "mask_bn2": "3", "mask_conv2": "5"}


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled module's state_dict under the port's names."""
    out = {}
    for k, v in state.items():
        unit, rest = k.split(".", 1)
        if unit in _UNITS:
            out[f"{_UNITS[unit]}.{rest}"] = v
        else:
            assert re.fullmatch(r"mask_(bn|conv)\d", unit), k
            out[f"softmax4_blocks.{_MASK[unit]}.{rest}"] = v
    return out
