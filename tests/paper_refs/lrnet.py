"""The local relation layer of LR-Net, from the paper and its authors' CUDA kernel, in torch.

Hu, Zhang, Xie, Lin, "Local Relation Networks for Image Recognition", ICCV 2019; survey
§3.2.7. The kernel (microsoft/Swin-Transformer, LR-Net branch, ops/local_relation/src/
local_relation_cuda_kernel.cu) is followed loop by loop, vectorised: for output pixel (h, w),
group g and tap (kh, kw) of the window, the logit is Σ_i query[g·kpg + i](h, w) ·
key[g·kpg + i](h + kh − k//2, w + kw − kw//2) · scale when the tap lies in the map and
`no_define_value` (−100) when not, plus pos_weight[g, kh, kw]; a softmax over the taps; then
output channel c (group c // value_per_group) sums its in-map values times the weights. Here
the key/query maps have one channel per group (kpg = 1, the paper's C/m), and pos_weight is the
geometry prior: two 1×1 convs with a ReLU over the (dy, dx) offset grid, as the public
re-implementations build it (GeometryPrior: l1, l2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn

NO_DEFINE_VALUE = -100.0


def offset_grid(k: int, kw: int) -> Tensor:
    """[1, 2, k, kw]: the row offset, then the column offset, of every tap from the centre."""
    dy, dx = torch.meshgrid(torch.arange(k) - k // 2, torch.arange(kw) - kw // 2,
                            indexing="ij")
    return torch.stack([dy, dx]).float()[None]


class LocalRelationReference(nn.Module):
    def __init__(self, channels: int, m: int = 8, k: int = 7, kw: int | None = None) -> None:
        super().__init__()
        self.groups, self.k, self.kw = channels // m, k, kw or k
        self.key_map = nn.Conv2d(channels, self.groups, kernel_size=1)
        self.query_map = nn.Conv2d(channels, self.groups, kernel_size=1)
        hidden = max(1, self.groups // 2)
        self.l1 = nn.Conv2d(2, hidden, kernel_size=1)          # the geometry prior
        self.l2 = nn.Conv2d(hidden, self.groups, kernel_size=1)
        self.register_buffer("position", offset_grid(self.k, self.kw))

    def pos_weight(self) -> Tensor:
        return self.l2(F.relu(self.l1(self.position)))[0]      # [groups, k, kw]

    def _taps(self, t: Tensor) -> Tensor:
        """[n, c, H, W] -> [n, c, k, kw, H, W], zero outside the map."""
        n, c, hh, ww = t.shape
        cols = F.unfold(t, (self.k, self.kw), padding=(self.k // 2, self.kw // 2))
        return cols.view(n, c, self.k, self.kw, hh, ww)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The output [n, C, H, W] and the weights [n, groups, k, kw, H, W]."""
        n, c, hh, ww = x.shape
        query = self.query_map(x)[:, :, None, None]            # [n, g, 1, 1, H, W]
        key = self._taps(self.key_map(x))                      # [n, g, k, kw, H, W]
        inside = self._taps(torch.ones(1, 1, hh, ww, dtype=x.dtype)) > 0
        sim = torch.where(inside, query * key, torch.full_like(key, NO_DEFINE_VALUE))
        sim = sim + self.pos_weight()[None, :, :, :, None, None]
        a = sim.flatten(2, 3).softmax(dim=2).view_as(sim)
        values = self._taps(x).view(n, self.groups, c // self.groups, self.k, self.kw, hh, ww)
        y = (values * a[:, :, None]).sum(dim=(3, 4)).reshape(n, c, hh, ww)
        return y, a


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled names and shapes into this module's (the offsets buffer as `position`)."""
    names = {"geometry.0": "l1", "geometry.2": "l2"}
    out = {}
    for key, value in state.items():
        if key == "offsets.weight":
            out["position"] = value[None]
            continue
        layer, leaf = key.rsplit(".", 1)
        if layer in names:
            out[f"{names[layer]}.{leaf}"] = value[..., None, None] if leaf == "weight" else value
        else:
            out[key] = value
    return out
