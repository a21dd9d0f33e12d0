"""Convolutional Block Attention Module reference.

Paper: Woo, Park, Lee, Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018.
Survey: Guo et al., section 3.5.2, eqs (73)-(76) (channel) and (77)-(80) (spatial),
composed by eqs (81)-(82).
Authors' code: Jongchan/attention-module ``MODELS/cbam.py`` (ChannelGate with
pool_types ['avg', 'max'], SpatialGate = ChannelPool + BasicConv(2, 1, 7, relu=False, bn=True)).

Differences from the survey, following the code:
* eq (79) concatenates ``[avg; max]``; the code's ChannelPool concatenates ``[max, mean]``.
* the survey's spatial branch has no normalisation; the code has a BatchNorm after the conv
  (eps 1e-5, momentum 0.01). In train mode it uses batch statistics.
* survey Table 7 says a 3x3 convolution; paper and code use 7x7 (``k=7``).
* the spatial pools run on the channel-refined ``x1``, not on the block input.
* ``model_resnet.py`` zero-initialises the spatial BN weight. This reference keeps the PyTorch
  default init, so tests must load weights explicitly.
"""

import torch
from torch import Tensor, nn


class _SpatialGate(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, k, padding=(k - 1) // 2, bias=False)
        self.batch_norm = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.batch_norm(self.conv(z)))


class CBAMReference(nn.Module):
    """CBAM block: channel gate (shared MLP on avg and max pools), then spatial gate."""

    def __init__(self, C: int, r: int = 16, k: int = 7) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(C, C // r), nn.ReLU(), nn.Linear(C // r, C))
        self.s_s = _SpatialGate(k)

    def forward(self, x: Tensor) -> Tensor:
        a_c = torch.sigmoid(self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3))))
        x1 = x * a_c[:, :, None, None]
        z = torch.cat([x1.amax(dim=1, keepdim=True), x1.mean(dim=1, keepdim=True)], dim=1)
        return x1 * self.s_s(z)
