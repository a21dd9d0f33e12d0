"""Self-calibrated convolution (SCConv) reference, the calibration branch.

Paper: Liu, Hou, Cheng, Wang, Feng, "Improving Convolutional Networks with Self-Calibrated
Convolutions", CVPR 2020.
Survey: Guo et al., section 3.5.10, eqs (119)-(122).
Authors' code: MCG-NKU/SCNet ``scnet.py``, class SCConv with the SCBottleneck's settings
(inplanes = planes = C, stride 1, padding = dilation = 1, groups 1, BatchNorm2d):
k2 = AvgPool2d(r, r) -> conv3x3 -> BN, k3 = conv3x3 -> BN, k4 = conv3x3 -> BN (no conv
bias); out = k4(k3(x) * sigmoid(x + F.interpolate(k2(x), x.size()[2:]))), the interpolate
with torch's default mode, nearest. Parameter names are the code's; no conversion needed.
"""

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn


def _conv_bn(C: int) -> list[nn.Module]:
    return [nn.Conv2d(C, C, kernel_size=3, stride=1, padding=1, dilation=1, groups=1,
                      bias=False), nn.BatchNorm2d(C)]


class SCConvReference(nn.Module):
    def __init__(self, C: int, pool: int = 4) -> None:
        super().__init__()
        self.k2 = nn.Sequential(nn.AvgPool2d(kernel_size=pool, stride=pool), *_conv_bn(C))
        self.k3 = nn.Sequential(*_conv_bn(C))
        self.k4 = nn.Sequential(*_conv_bn(C))

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = torch.sigmoid(torch.add(identity, F.interpolate(self.k2(x), identity.size()[2:])))
        out = torch.mul(self.k3(x), out)
        return self.k4(out)
