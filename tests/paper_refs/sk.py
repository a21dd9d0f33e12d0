"""Selective kernel (SK) convolution reference, two branches.

Paper: Li, Wang, Hu, Yang, "Selective Kernel Networks", CVPR 2019.
Survey: Guo et al., section 3.4.2, eqs (60)-(64).
Authors' code: implus/SKNet ``models/sknet50.prototxt`` (Caffe), transcribed to torch:
U1 = ReLU(BN(conv3x3, groups G, pad 1, no bias)), U2 = ReLU(BN(conv3x3, groups G, dilation 2,
pad 2, no bias)), s = global average pool of U1 + U2, z = ReLU(BN(conv1x1 C -> d, no bias)),
logits = conv1x1 d -> 2C (no bias) reshaped to (N, 2, C), softmax over the branch axis,
V = a[:, 0] U1 + a[:, 1] U2; d = max(C // r, L).

The d -> 2C conv's weight is held as ``select`` of shape [2, C, d] (the compiled block's
parameter) and viewed as [2C, d, 1, 1] for the conv. The compiled block's C -> d map is a
dense [d, C] weight; ``from_compiled`` adds the 1x1 kernel dims.
"""

import torch
from torch import Tensor, nn


def _branch(C: int, groups: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(C, C, 3, padding=dilation, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(C),
        nn.ReLU(inplace=True),
    )


class SKReference(nn.Module):
    def __init__(self, C: int, groups: int = 32, r: int = 16, L: int = 32) -> None:
        super().__init__()
        d = max(C // r, L)
        self.C = C
        self.u1 = _branch(C, groups, 1)
        self.u2 = _branch(C, groups, 2)                              # the "5x5" path
        self.fc = nn.Sequential(nn.Conv2d(C, d, 1, bias=False), nn.BatchNorm2d(d),
                                nn.ReLU(inplace=True))
        self.select = nn.Parameter(torch.empty(2, C, d))
        nn.init.uniform_(self.select, -d ** -0.5, d ** -0.5)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        u1, u2 = self.u1(x), self.u2(x)
        s = (u1 + u2).mean(dim=(2, 3), keepdim=True)                 # [N, C, 1, 1]
        z = self.fc(s)                                               # [N, d, 1, 1]
        weight = self.select.reshape(2 * self.C, -1, 1, 1)           # the d -> 2C conv
        logits = nn.functional.conv2d(z, weight).view(n, 2, self.C, 1, 1)
        a = torch.softmax(logits, dim=1)
        return a[:, 0] * u1 + a[:, 1] * u2


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled block's state_dict with the 1x1-conv shape of ``fc.0.weight``."""
    return {k: v[..., None, None] if k == "fc.0.weight" else v for k, v in state.items()}
