"""FcaNet's multi-spectral channel attention, written from the authors' code (cfzd/FcaNet,
model/layer.py: get_freq_indices, MultiSpectralAttentionLayer, MultiSpectralDCTLayer).

Qin, Zhang, Wu, Li, "FcaNet: Frequency Channel Attention Networks", ICCV 2021; survey §3.1.6.
Attribute names are the official ones (`dct_layer.weight` a buffer, `fc.0`, `fc.2`), which are
also the compiled block's state_dict keys. Plain torch; any tile size dct_h x dct_w. Unlike the
official forward, a map of another size is an error here, not adaptive-average-pooled: the
compiled block has no such path.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_TABLES = {
    "top": ([0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2, 4, 6, 3, 5, 5, 2, 6, 5, 5, 3, 3, 4, 2,
             2, 6, 1],
            [0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2, 6, 3, 3, 3, 5, 1, 1, 2, 4, 2, 1, 1, 3,
             0, 5, 3]),
    "low": ([0, 0, 1, 1, 0, 2, 2, 1, 2, 0, 3, 4, 0, 1, 3, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 6, 1,
             2, 3, 4],
            [0, 1, 0, 1, 2, 0, 1, 2, 2, 3, 0, 0, 4, 3, 1, 5, 4, 3, 2, 1, 0, 6, 5, 4, 3, 2, 1, 0, 6,
             5, 4, 3]),
    "bot": ([6, 1, 3, 3, 2, 4, 1, 2, 4, 4, 5, 1, 4, 6, 2, 5, 6, 1, 6, 2, 2, 4, 3, 3, 5, 5, 6, 2, 5,
             5, 3, 6],
            [6, 4, 4, 6, 6, 3, 1, 4, 4, 5, 6, 5, 2, 2, 5, 1, 4, 3, 5, 0, 3, 1, 1, 2, 4, 2, 1, 1, 5,
             3, 3, 3]),
}


def get_freq_indices(method: str) -> tuple[list[int], list[int]]:
    """'top16', 'low4', 'bot32', ...: the first N (u, v) of the official 7 x 7 table."""
    assert method[:3] in _TABLES and int(method[3:]) in (1, 2, 4, 8, 16, 32), method
    xs, ys = _TABLES[method[:3]]
    num_freq = int(method[3:])
    return xs[:num_freq], ys[:num_freq]


class MultiSpectralDCTLayer(nn.Module):
    def __init__(self, height: int, width: int, mapper_x, mapper_y, channel: int) -> None:
        super().__init__()
        assert len(mapper_x) == len(mapper_y)
        assert channel % len(mapper_x) == 0
        self.num_freq = len(mapper_x)
        self.register_buffer("weight",
                             self.get_dct_filter(height, width, mapper_x, mapper_y, channel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x * self.weight, dim=[2, 3])

    def build_filter(self, pos: int, freq: int, POS: int) -> float:  # official names
        result = math.cos(math.pi * freq * (pos + 0.5) / POS) / math.sqrt(POS)
        return result if freq == 0 else result * math.sqrt(2)

    def get_dct_filter(self, tile_size_x, tile_size_y, mapper_x, mapper_y, channel):
        dct_filter = torch.zeros(channel, tile_size_x, tile_size_y)
        c_part = channel // len(mapper_x)
        for i, (u_x, v_y) in enumerate(zip(mapper_x, mapper_y, strict=True)):
            for t_x in range(tile_size_x):
                for t_y in range(tile_size_y):
                    dct_filter[i * c_part: (i + 1) * c_part, t_x, t_y] = (
                        self.build_filter(t_x, u_x, tile_size_x)
                        * self.build_filter(t_y, v_y, tile_size_y))
        return dct_filter


class FcaNetReference(nn.Module):
    """MultiSpectralAttentionLayer(channel, dct_h, dct_w, reduction, freq_sel_method)."""

    def __init__(self, channel: int, dct_h: int, dct_w: int, reduction: int = 16,
                 freq_sel_method: str = "top16") -> None:
        super().__init__()
        self.dct_h, self.dct_w = dct_h, dct_w
        mapper_x, mapper_y = get_freq_indices(freq_sel_method)
        # frequencies of a larger tile are those of the 7 x 7 space, scaled
        mapper_x = [u * (dct_h // 7) for u in mapper_x]
        mapper_y = [v * (dct_w // 7) for v in mapper_y]
        self.dct_layer = MultiSpectralDCTLayer(dct_h, dct_w, mapper_x, mapper_y, channel)
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channel // reduction, channel, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if (h, w) != (self.dct_h, self.dct_w):
            raise ValueError(f"this reference takes {self.dct_h} x {self.dct_w} maps only")
        y = self.fc(self.dct_layer(x)).view(n, c, 1, 1)
        return x * y.expand_as(x)
