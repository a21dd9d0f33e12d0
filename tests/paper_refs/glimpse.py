"""Glimpse sensor + glimpse network reference (RAM / DRAM, one step), from the papers.

Papers: Mnih et al., "Recurrent Models of Visual Attention", NIPS 2014, §3 and §4: the
retina ρ(x, l) extracts k square patches centred at l, the first g_w x g_w, each next one
twice as wide, all resized to g_w x g_w and concatenated; l ∈ [-1, 1]², (0, 0) the centre,
(-1, -1) the top-left corner. Ba et al., "Multiple Object Recognition with Visual
Attention", ICLR 2015, eq. for the glimpse network: g = G_image(x) ⊙ G_loc(l).
Survey: Guo et al., §3.2.1-3.2.2, eq. (22).

As in the spec (specs/glimpse.attn): patch s covers extent · 2^s of the image side around l
(normalised units), and is "resized" by reading it at gh x gw evenly spaced points (cell
centres) with bilinear interpolation, zeros outside the image; the pixel index of a
normalised coordinate u on an n-pixel side is ((u + 1) n - 1) / 2. The patches are stacked
scale-major, flattened in (scale, channel, row, column) order, and G_image, G_loc are
ReLU(Linear). Everything is written out with gathers (no `F.grid_sample` / `F.affine_grid`).
`from_compiled` reshapes the compiled [hidden, scales, C, gh, gw] weight into the Linear's.
"""

import torch
from torch import Tensor, nn


def read(x: Tensor, py: Tensor, px: Tensor) -> Tensor:
    """x [N, C, H, W] at pixel coordinates (py, px) [N, a, b], bilinear, 0 outside."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    out = x.new_zeros(n, c, *py.shape[1:])
    for qy in (torch.floor(py), torch.floor(py) + 1):
        for qx in (torch.floor(px), torch.floor(px) + 1):
            wgt = (1 - (qy - py).abs()).clamp(min=0) * (1 - (qx - px).abs()).clamp(min=0)
            ok = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
            idx = (qy.clamp(0, h - 1) * w + qx.clamp(0, w - 1)).long().reshape(n, 1, -1)
            out = out + flat.gather(2, idx.expand(n, c, -1)).reshape(out.shape) * (
                wgt * ok).unsqueeze(1)
    return out


class GlimpseReference(nn.Module):
    def __init__(self, channels: int, gh: int = 8, gw: int = 8, scales: int = 3,
                 extent: float = 8 / 28, hidden: int = 256) -> None:
        super().__init__()
        self.gh, self.gw, self.scales, self.extent = gh, gw, scales, extent
        self.image_fc = nn.Linear(scales * channels * gh * gw, hidden)   # G_image
        self.loc_fc = nn.Linear(2, hidden)                               # G_loc

    def retina(self, x: Tensor, loc: Tensor) -> tuple[Tensor, Tensor]:
        """ρ(x, l): [N, scales, C, gh, gw] and the sample points [N, scales, gh, gw, 2]."""
        _, _, h, w = x.shape
        u = (2 * torch.arange(self.gw, dtype=x.dtype) + 1) / self.gw - 1   # cell centres
        v = (2 * torch.arange(self.gh, dtype=x.dtype) + 1) / self.gh - 1
        patches, points = [], []
        for s in range(self.scales):
            half = self.extent * 2**s
            xs = loc[:, 0, None, None] + half * u.view(1, 1, -1)              # [N, 1, gw]
            ys = loc[:, 1, None, None] + half * v.view(1, -1, 1)              # [N, gh, 1]
            xs, ys = torch.broadcast_tensors(xs, ys)
            patches.append(read(x, ((ys + 1) * h - 1) / 2, ((xs + 1) * w - 1) / 2))
            points.append(torch.stack([xs, ys], dim=-1))
        return torch.stack(patches, dim=1), torch.stack(points, dim=1)

    def forward(self, x: Tensor, loc: Tensor) -> tuple[Tensor, Tensor]:
        """g = ReLU(G_image(ρ(x, l))) ⊙ ReLU(G_loc(l)), and the sample points."""
        phi, points = self.retina(x, loc)
        g = torch.relu(self.image_fc(phi.flatten(1))) * torch.relu(self.loc_fc(loc))
        return g, points


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """image_weight [D, K, C, gh, gw] -> image_fc.weight [D, K·C·gh·gw]; f_loc -> loc_fc."""
    names = {"image_bias": "image_fc.bias", "f_loc.weight": "loc_fc.weight",
             "f_loc.bias": "loc_fc.bias"}
    out = {names.get(k, k): v for k, v in state.items() if k != "image_weight"}
    out["image_fc.weight"] = state["image_weight"].reshape(state["image_weight"].shape[0], -1)
    return out
