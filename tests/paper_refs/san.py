"""SAN's self-attention layer (SAM: pairwise, sa_type 0, and patchwise, sa_type 1), from the
authors' code, on the CPU.

Zhao, Jia, Koltun, "Exploring Self-attention for Image Recognition", CVPR 2020; survey §3.2.7.
hszhao/SAN, model/san.py: the SAM module with its attribute names (conv1, conv2, conv3, conv_w,
conv_p) and the CPU form of its CUDA kernels, written as the code's own tests of those kernels
(lib/sa/functions/*_refpad.py, `test_*`) check them: ReflectionPad2d then nn.Unfold for every
windowed tensor, the centre minus the window for the subtractions, and an aggregation whose
weights broadcast over `in_channels // weight_channels` channel blocks (channel c uses weight
channel c mod weight_channels). `position` is the code's grid on the CPU, in
the input's dtype (the code's is float32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn


def position(H: int, W: int, dtype: torch.dtype = torch.float32) -> Tensor:
    loc_w = torch.linspace(-1.0, 1.0, W, dtype=dtype).unsqueeze(0).repeat(H, 1)
    loc_h = torch.linspace(-1.0, 1.0, H, dtype=dtype).unsqueeze(1).repeat(1, W)
    return torch.cat([loc_w.unsqueeze(0), loc_h.unsqueeze(0)], 0).unsqueeze(0)


class SAMReference(nn.Module):
    def __init__(self, sa_type: int, in_planes: int, rel_planes: int, out_planes: int,
                 share_planes: int, kernel_size: int = 7, kernel_w: int | None = None) -> None:
        super().__init__()
        self.sa_type = sa_type
        self.kernel = (kernel_size, kernel_w or kernel_size)
        taps = self.kernel[0] * self.kernel[1]
        self.conv1 = nn.Conv2d(in_planes, rel_planes, kernel_size=1)
        self.conv2 = nn.Conv2d(in_planes, rel_planes, kernel_size=1)
        self.conv3 = nn.Conv2d(in_planes, out_planes, kernel_size=1)
        if sa_type == 0:
            self.conv_w = nn.Sequential(
                nn.BatchNorm2d(rel_planes + 2), nn.ReLU(inplace=True),
                nn.Conv2d(rel_planes + 2, rel_planes, kernel_size=1, bias=False),
                nn.BatchNorm2d(rel_planes), nn.ReLU(inplace=True),
                nn.Conv2d(rel_planes, out_planes // share_planes, kernel_size=1))
            self.conv_p = nn.Conv2d(2, 2, kernel_size=1)
            self.softmax = nn.Softmax(dim=-2)
        else:
            self.conv_w = nn.Sequential(
                nn.BatchNorm2d(rel_planes * (taps + 1)), nn.ReLU(inplace=True),
                nn.Conv2d(rel_planes * (taps + 1), out_planes // share_planes, kernel_size=1,
                          bias=False),
                nn.BatchNorm2d(out_planes // share_planes), nn.ReLU(inplace=True),
                nn.Conv2d(out_planes // share_planes, taps * out_planes // share_planes,
                          kernel_size=1))

    def _windows(self, x: Tensor) -> Tensor:
        """Reflection-padded k × kw windows: [n, c, k * kw, H * W]."""
        kh, kw = self.kernel
        xp = F.pad(x, ((kw - 1) // 2, (kw - 1) // 2, (kh - 1) // 2, (kh - 1) // 2),
                   mode="reflect")
        return F.unfold(xp, (kh, kw)).view(x.shape[0], x.shape[1], kh * kw, -1)

    def subtraction2(self, x1: Tensor, x2: Tensor) -> Tensor:
        return x1.flatten(2).unsqueeze(2) - self._windows(x2)

    def subtraction(self, x: Tensor) -> Tensor:
        return self.subtraction2(x, x)

    def aggregation(self, x: Tensor, w: Tensor) -> Tensor:
        n, c_x, h, wd = x.shape
        c_w = w.shape[1]
        x2 = self._windows(x).view(n, c_x // c_w, c_w, w.shape[2], h * wd)
        return (w.unsqueeze(1) * x2).sum(-2).view(n, c_x, h, wd)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The output and the weights [n, weight channels, k, kw, H, W]."""
        x1, x2, x3 = self.conv1(x), self.conv2(x), self.conv3(x)
        n, taps = x.shape[0], self.kernel[0] * self.kernel[1]
        if self.sa_type == 0:  # pairwise
            p = self.conv_p(position(x.shape[2], x.shape[3], x.dtype))
            rel = torch.cat([self.subtraction2(x1, x2),
                             self.subtraction(p).repeat(n, 1, 1, 1)], 1)
            w = self.softmax(self.conv_w(rel))
        else:  # patchwise: the centre's φ and the (reflection-padded) patch of ψ, no softmax
            x1 = x1.view(n, -1, 1, x.shape[2] * x.shape[3])
            x2 = self._windows(x2).reshape(n, -1, 1, x1.shape[-1])
            w = self.conv_w(torch.cat([x1, x2], 1)).view(n, -1, taps, x1.shape[-1])
        c_w = w.shape[1]
        att = w.view(n, c_w, *self.kernel, *x.shape[2:])
        return self.aggregation(x3, w), att


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled block's names are the code's; γ's dense maps become 1×1 convs (the
    patchwise block's are 1×1 convs already)."""
    return {k: v[..., None, None] if k in ("conv_w.2.weight", "conv_w.5.weight")
            and v.dim() == 2 else v for k, v in state.items()}
