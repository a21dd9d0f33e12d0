"""Disentangled non-local (DNL) block reference, 2-D.

Paper: Yin et al., "Disentangled Non-Local Neural Networks", ECCV 2020.
Code: open-mmlab/mmsegmentation ``mmseg/models/decode_heads/dnl_head.py``
(``DisentangledNonLocal2d`` over mmcv's ``NonLocal2d``) with DNLHead's defaults: reduction 2,
use_scale True, mode 'embedded_gaussian', temperature 0.05, sub_sample False; norm_cfg BN, so
``conv_out`` is a bias-free 1x1 conv followed by BN whose weight and bias start at 0.

The mmcv ConvModules are plain modules here (theta.conv -> theta, conv_out.conv -> conv_out,
conv_out.bn -> bn), so the names are the compiled ones. The forward follows the code line by
line: pairwise and unary terms aggregate g separately and are added.
"""

import torch
from torch import Tensor, nn


class DNLReference(nn.Module):
    def __init__(self, C: int, r: int = 2, temperature: float = 0.05) -> None:
        super().__init__()
        self.inter_channels = C // r
        self.temperature = temperature
        self.g = nn.Conv2d(C, self.inter_channels, 1)
        self.theta = nn.Conv2d(C, self.inter_channels, 1)
        self.phi = nn.Conv2d(C, self.inter_channels, 1)
        self.conv_out = nn.Conv2d(self.inter_channels, C, 1, bias=False)
        self.bn = nn.BatchNorm2d(C)
        self.conv_mask = nn.Conv2d(C, 1, kernel_size=1)
        for conv in (self.g, self.theta, self.phi):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def embedded_gaussian(self, theta_x: Tensor, phi_x: Tensor) -> Tensor:
        pairwise_weight = torch.matmul(theta_x, phi_x)
        pairwise_weight = pairwise_weight / theta_x.shape[-1] ** 0.5      # use_scale
        pairwise_weight = pairwise_weight / self.temperature
        return pairwise_weight.softmax(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        n = x.size(0)
        g_x = self.g(x).view(n, self.inter_channels, -1).permute(0, 2, 1)        # [N, HW, D]
        theta_x = self.theta(x).view(n, self.inter_channels, -1).permute(0, 2, 1)
        phi_x = self.phi(x).view(n, self.inter_channels, -1)                   # [N, D, HW]
        theta_x = theta_x - theta_x.mean(dim=-2, keepdim=True)
        phi_x = phi_x - phi_x.mean(dim=-1, keepdim=True)
        pairwise_weight = self.embedded_gaussian(theta_x, phi_x)
        y = torch.matmul(pairwise_weight, g_x)
        y = y.permute(0, 2, 1).contiguous().reshape(n, self.inter_channels, *x.size()[2:])
        unary_mask = self.conv_mask(x).view(n, 1, -1).softmax(dim=-1)          # [N, 1, HW]
        unary_x = torch.matmul(unary_mask, g_x)                                # [N, 1, D]
        unary_x = unary_x.permute(0, 2, 1).contiguous().reshape(n, self.inter_channels, 1, 1)
        return x + self.bn(self.conv_out(y + unary_x))
