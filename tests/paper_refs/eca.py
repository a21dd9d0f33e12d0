"""Efficient Channel Attention reference.

Paper: Wang et al., "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural
Networks", CVPR 2020.
Survey: Guo et al., section 3.1.5, eqs (9)-(11): ``s = sigma(Conv1D(GAP(X)))``, ``Y = s X``,
``k = |log2(C)/gamma + b/gamma|_odd``.
Authors' code: BangguWu/ECANet ``models/eca_module.py`` and ``models/eca_resnet.py``.

Difference from the survey: eq (11) says "nearest odd"; the code truncates,
``t = int(abs((log2(C) + b) / gamma))``, then bumps an even ``t`` up to ``t + 1``. This
reference follows the code. The 1-D convolution has no bias and zero-pads both ends of the
channel axis by ``(k - 1) // 2``.
"""

import math

import torch
from torch import Tensor, nn


class ECAReference(nn.Module):
    """ECA block: ``y = x * sigmoid(conv1d_k(mean_hw(x)))`` along the channel axis."""

    def __init__(self, C: int, gamma: int = 2, b: int = 1) -> None:
        super().__init__()
        t = int(abs((math.log2(C) + b) / gamma))
        self.k: int = t if t % 2 else t + 1
        self.s = nn.Conv1d(1, 1, self.k, padding=(self.k - 1) // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        n, c = x.shape[0], x.shape[1]
        y = x.mean(dim=(2, 3)).view(n, 1, c)  # N,1,C: channels are the length axis
        y = torch.sigmoid(self.s(y))
        return x * y.view(n, c, 1, 1)
