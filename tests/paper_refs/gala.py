"""Global-and-local attention (GALA) reference.

Paper: Linsley, Shiebler, Eberhardt, Serre, "Learning what and where to attend", ICLR 2019.
Survey: Guo et al., section 3.5.13, eqs. (135)-(140).
Authors' code: the serre-lab TensorFlow release was not available; this module is written
from the paper and the survey's equations, with the spec's documented choices (widths C // r,
biases on every map, a = ones and m = zeros, no sigmoid before the tanh):
    s_g = W2 relu(W1 GAP(X))                      (135)  [N, C]
    s_l = Conv2 relu(Conv1 X)                     (136)  [N, 1, H, W]
    s = tanh(a (s_g + s_l) + m (s_g s_l))          (137)-(139), broadcast to [N, C, H, W]
    Y = s X                                       (140)
Parameter names are the compiled ones (a and m are [C] vectors).
"""

import torch
from torch import Tensor, nn


class GALAReference(nn.Module):
    def __init__(self, C: int, r: int = 16) -> None:
        super().__init__()
        hidden = C // r
        self.global_shrink = nn.Linear(C, hidden)
        self.global_expand = nn.Linear(hidden, C)
        self.local_shrink = nn.Conv2d(C, hidden, kernel_size=1)
        self.local_collapse = nn.Conv2d(hidden, 1, kernel_size=1)
        self.a = nn.Parameter(torch.ones(C))
        self.m = nn.Parameter(torch.zeros(C))

    def attention(self, x: Tensor) -> Tensor:
        z = x.mean(dim=(2, 3))                                             # GAP
        g = self.global_expand(torch.relu(self.global_shrink(z)))          # (135)
        g = g[:, :, None, None]                                            # (137)
        s_l = self.local_collapse(torch.relu(self.local_shrink(x)))         # (136), (138)
        a = self.a[None, :, None, None]
        m = self.m[None, :, None, None]
        return torch.tanh(a * (g + s_l) + m * (g * s_l))                   # (139)

    def forward(self, x: Tensor) -> Tensor:
        return self.attention(x) * x                                       # (140)
