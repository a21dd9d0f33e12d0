"""Spatial transformer reference, written from the paper's equations.

Paper: Jaderberg, Simonyan, Zisserman, Kavukcuoglu, "Spatial Transformer Networks", NIPS 2015,
§3.1-3.3: θ = f_loc(U) (eq. 1's A_θ, a 2 x 3 matrix), source coordinates
(x^s, y^s) = A_θ (x^t, y^t, 1) over a regular grid of normalised target coordinates, and the
bilinear sampler of eq. (5):

    V_i^c = Σ_n Σ_m U_nm^c max(0, 1 - |x_i^s - m|) max(0, 1 - |y_i^s - n|),

with (x^s, y^s) converted from [-1, 1] to pixel indices and U taken as 0 outside the map.
Survey: Guo et al., §3.2.5, eqs. (34)-(35). The normalisation follows torch's convention
(align_corners=False: target pixel j of n at (2j + 1)/n - 1, source pixel index
((x + 1) n - 1)/2), as the PyTorch STN tutorial (`F.affine_grid` / `F.grid_sample` defaults)
that the spec's header names. The sampler here is the sum of eq. (5) over the four pixels
where its kernel is non-zero, written out with gathers (no `F.grid_sample`).

The localisation net is the spec's (the paper leaves it open): conv 3x3, 2x2 max pool, ReLU,
conv 3x3, ReLU, spatial mean, Linear + ReLU, Linear -> 6 (zero weight, identity bias). The
compiled block keeps that last bias as its own parameter `fc_loc_bias`: `from_compiled`
renames it to fc_loc.2.bias.
"""

import torch
from torch import Tensor, nn


def normalised_grid(n: int, like: Tensor) -> Tensor:
    """The n target coordinates (2j + 1)/n - 1 in [-1, 1]."""
    return (2 * torch.arange(n, dtype=like.dtype, device=like.device) + 1) / n - 1


def bilinear_sample(u: Tensor, xs: Tensor, ys: Tensor) -> Tensor:
    """Eq. (5): u [N, C, H, W] at pixel coordinates xs, ys [N, Ho, Wo]; zero outside."""
    n, c, h, w = u.shape
    out = u.new_zeros(n, c, *xs.shape[1:])
    flat = u.reshape(n, c, h * w)
    for m in (torch.floor(xs), torch.floor(xs) + 1):
        for row in (torch.floor(ys), torch.floor(ys) + 1):
            k = (1 - (xs - m).abs()).clamp(min=0) * (1 - (ys - row).abs()).clamp(min=0)
            inside = (m >= 0) & (m < w) & (row >= 0) & (row < h)
            idx = (row.clamp(0, h - 1) * w + m.clamp(0, w - 1)).long().reshape(n, 1, -1)
            vals = flat.gather(2, idx.expand(n, c, -1)).reshape(out.shape)
            out = out + vals * (k * inside).unsqueeze(1)
    return out


class STNReference(nn.Module):
    def __init__(self, channels: int, width: int = 8, hidden: int = 32) -> None:
        super().__init__()
        self.localization = nn.Sequential(
            nn.Conv2d(channels, width, kernel_size=3, padding=1),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
            nn.Conv2d(width, width, kernel_size=3, padding=1),
            nn.ReLU(True),
        )
        self.fc_loc = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(True),
                                    nn.Linear(hidden, 3 * 2))
        self.fc_loc[2].weight.data.zero_()
        self.fc_loc[2].bias.data.copy_(torch.tensor([1, 0, 0, 0, 1, 0], dtype=torch.float))

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns V, θ [N, 6] and the source grid [N, H, W, 2] in normalised (x, y)."""
        n, _, h, w = u.shape
        theta = self.fc_loc(self.localization(u).mean(dim=(2, 3)))
        a = theta.view(-1, 2, 3)
        xt = normalised_grid(w, u).view(1, 1, w).expand(n, h, w)
        yt = normalised_grid(h, u).view(1, h, 1).expand(n, h, w)
        xs = a[:, 0, 0, None, None] * xt + a[:, 0, 1, None, None] * yt + a[:, 0, 2, None, None]
        ys = a[:, 1, 0, None, None] * xt + a[:, 1, 1, None, None] * yt + a[:, 1, 2, None, None]
        v = bilinear_sample(u, ((xs + 1) * w - 1) / 2, ((ys + 1) * h - 1) / 2)
        return v, theta, torch.stack([xs, ys], dim=-1)


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled `fc_loc_bias` is the regression layer's bias, fc_loc.2.bias."""
    return {("fc_loc.2.bias" if k == "fc_loc_bias" else k): v for k, v in state.items()}
