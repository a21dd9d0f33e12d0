"""STA reference: spatial-temporal attention for video re-ID (Fu et al., AAAI 2019).

Written from the equations (survey section 3.6.3, eqs 151-156) with explicit loops over the
K regions, torch.argmax for the most attentive frame and plain indexing to gather it; no
authors' code was found. Input: the frames' maps of each tracklet, [N, T, C, H, W]. The two
results are joined along the channels (see specs/sta.attn). Parameter-free.
"""

import torch
from torch import Tensor, nn


class STAReference(nn.Module):
    def __init__(self, regions: int = 4) -> None:
        super().__init__()
        self.k = regions

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n, hh = x.shape[0], x.shape[3]
        rows = hh // self.k
        energy = (x ** 2).sum(dim=2)                                 # ||sum_c x^2||_2, [N,T,H,W]
        g = energy / energy.sum(dim=(2, 3), keepdim=True)            # eq. 151
        s = torch.stack([g[:, :, k * rows:(k + 1) * rows].sum(dim=(2, 3))
                         for k in range(self.k)], dim=2)             # eq. 152, [N, T, K]
        score = s / s.abs().sum(dim=1, keepdim=True)                 # eq. 153, l1 over frames
        best = score.argmax(dim=1)                                   # [N, K]
        y1, y2 = [], []
        batch = torch.arange(n)
        for k in range(self.k):
            part = x[:, :, :, k * rows:(k + 1) * rows]               # X_{n,k}: [N, T, C, R, W]
            y1.append(part[batch, best[:, k]])                       # eq. 154
            y2.append((score[:, :, k, None, None, None] * part).sum(dim=1))   # eq. 155
        y = torch.cat([torch.cat(y1, dim=2), torch.cat(y2, dim=2)], dim=1)  # eq. 156
        return y, g, score
