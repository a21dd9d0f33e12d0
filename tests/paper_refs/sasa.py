"""Stand-alone self-attention (SASA), written from the paper's eq. (44) in plain torch.

Ramachandran, Parmar, Vaswani, Bello, Levskaya, Shlens, "Stand-Alone Self-Attention in Vision
Models", NeurIPS 2019; survey §3.2.7, eqs. (41)-(44). Per head, the logit of window tap (a, b)
for query (i, j) is q_ijᵀ k_ab + q_ijᵀ r_{a−i,b−j}, with r the concatenation of a row-offset
and a column-offset embedding (first the row half of the head's channels, then the column
half), softmaxed over the k × kw window; the output is the weighted sum of the values. The
windows come from F.unfold (im2col with zero padding), as in the usual PyTorch code; the
projections are bias-free 1×1 convs named as in leaderj1001/Stand-Alone-Self-Attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn


class SASAReference(nn.Module):
    def __init__(self, C: int, heads: int = 8, k: int = 7, kw: int | None = None) -> None:
        super().__init__()
        self.heads, self.k, self.kw = heads, k, kw or k
        width = C // heads
        self.query_conv = nn.Conv2d(C, C, kernel_size=1, bias=False)
        self.key_conv = nn.Conv2d(C, C, kernel_size=1, bias=False)
        self.value_conv = nn.Conv2d(C, C, kernel_size=1, bias=False)
        self.rel_h = nn.Parameter(torch.randn(width // 2, self.k))          # r^row_{a-i}
        self.rel_w = nn.Parameter(torch.randn(width - width // 2, self.kw))  # r^col_{b-j}

    def _windows(self, t: Tensor) -> Tensor:
        """[n, C, H, W] -> [n, heads, E, k * kw, H * W], zero outside the map."""
        n, c, _, _ = t.shape
        pad = ((self.k - 1) // 2, (self.kw - 1) // 2)
        cols = F.unfold(t, (self.k, self.kw), padding=pad)                 # [n, C k kw, L]
        return cols.view(n, self.heads, c // self.heads, self.k * self.kw, -1)

    def relative(self) -> Tensor:
        """r_{a-i,b-j} for every tap: [E, k * kw], row half over column half."""
        rows = self.rel_h[:, :, None].expand(-1, -1, self.kw)
        cols = self.rel_w[:, None, :].expand(-1, self.k, -1)
        return torch.cat([rows, cols], dim=0).reshape(rows.shape[0] + cols.shape[0], -1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The output [n, C, H, W] and the attention map [n, heads, H, W, k, kw]."""
        n, c, hh, ww = x.shape
        q = self.query_conv(x).view(n, self.heads, c // self.heads, hh * ww)
        keys = self._windows(self.key_conv(x))
        values = self._windows(self.value_conv(x))
        logits = torch.einsum("ngel,ngetl->ngtl", q, keys)
        logits = logits + torch.einsum("ngel,et->ngtl", q, self.relative())
        a = logits.softmax(dim=2)                                           # over the window
        y = torch.einsum("ngtl,ngetl->ngel", a, values).reshape(n, c, hh, ww)
        att = a.view(n, self.heads, self.k, self.kw, hh, ww).permute(0, 1, 4, 5, 2, 3)
        return y, att


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled block's state_dict is already in this module's names and shapes."""
    return dict(state)
