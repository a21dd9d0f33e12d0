"""Deformable convolution v1 / v2 reference, written from the papers' equations.

Papers: Dai et al., "Deformable Convolutional Networks", ICCV 2017, eqs. (1)-(4):

    y(p0) = Σ_{pn ∈ R} w(pn) · x(p0 + pn + Δpn),        x(p) = Σ_q G(q, p) x(q),
    G(q, p) = g(qx, px) · g(qy, py),  g(a, b) = max(0, 1 - |a - b|);

Zhu et al., "Deformable ConvNets v2", CVPR 2019, eq. (1): each term also times Δmn ∈ [0, 1].
Survey: Guo et al., §3.2.6, eqs. (36)-(38). R is the k x k grid of dilated taps around p0
(row-major), padding dilation·(k - 1)/2 so the map keeps its size; x(q) is 0 for q outside
the map. G is non-zero only at the four integer neighbours of p, so the sum over q is taken
over those four.

Parameters and offset layout as mmcv's DeformConv2dPack / ModulatedDeformConv2dPack
(open-mmlab/mmcv, mmcv/ops/deform_conv.py, modulated_deform_conv.py): `weight`
[out, in, k, k], optional `bias`, and `conv_offset` (a k x k conv with the same padding and
dilation, zero-initialised) giving per tap n the channels 2n = Δy, 2n + 1 = Δx, and for v2
k² more channels of mask logits, Δm = sigmoid. `from_compiled` maps the compiled names
(y.weight, y.bias) to these.
"""

import math

import torch
from torch import Tensor, nn


def bilinear(x: Tensor, py: Tensor, px: Tensor) -> Tensor:
    """x(p) = Σ_q G(q, p) x(q) for x [N, C, H, W] at p = (py, px) [N, Ho, Wo]; 0 outside."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    out = x.new_zeros(n, c, *py.shape[1:])
    for qy in (torch.floor(py), torch.floor(py) + 1):
        for qx in (torch.floor(px), torch.floor(px) + 1):
            g = (1 - (qx - px).abs()).clamp(min=0) * (1 - (qy - py).abs()).clamp(min=0)
            inside = (qy >= 0) & (qy <= h - 1) & (qx >= 0) & (qx <= w - 1)
            idx = (qy.clamp(0, h - 1) * w + qx.clamp(0, w - 1)).long().reshape(n, 1, -1)
            xq = flat.gather(2, idx.expand(n, c, -1)).reshape(out.shape)
            out = out + xq * (g * inside).unsqueeze(1)
    return out


class DCNReference(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, k: int = 3, dilation: int = 1,
                 modulated: bool = True, bias: bool = False) -> None:
        super().__init__()
        self.k, self.dilation, self.modulated = k, dilation, modulated
        self.padding = dilation * (k - 1) // 2
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, k, k))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.conv_offset = nn.Conv2d(in_channels, (3 if modulated else 2) * k * k, k,
                                     padding=self.padding, dilation=dilation)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Returns y and the conv_offset output (offsets, then mask logits for v2)."""
        n, _, h, w = x.shape
        k, kk = self.k, self.k * self.k
        out = self.conv_offset(x)
        rows = torch.arange(h, dtype=x.dtype).view(1, h, 1) - self.padding
        cols = torch.arange(w, dtype=x.dtype).view(1, 1, w) - self.padding
        y = x.new_zeros(n, self.weight.shape[0], h, w)
        for t in range(kk):  # pn = (i, j) * dilation, row-major
            i, j = divmod(t, k)
            py = rows + i * self.dilation + out[:, 2 * t]
            px = cols + j * self.dilation + out[:, 2 * t + 1]
            xp = bilinear(x, py, px)                                  # x(p0 + pn + Δpn)
            if self.modulated:
                xp = xp * torch.sigmoid(out[:, 2 * kk + t]).unsqueeze(1)  # · Δmn
            y = y + torch.einsum("nchw,oc->nohw", xp, self.weight[:, :, i, j])
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y, out


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled deformable conv is the statement `y`: y.weight -> weight, y.bias -> bias."""
    return {(k[2:] if k.startswith("y.") else k): v for k, v in state.items()}
