"""Point-wise spatial attention (PSANet) reference, from the authors' code.

Paper: Zhao, Zhang, Liu, Shi, Loy, Lin, Jia, "PSANet: Point-wise Spatial Attention Network for
Scene Parsing", ECCV 2018. Survey: Guo et al., section 3.2.10, eqs (48)-(50).
Authors' code: hszhao/semseg ``model/psanet.py`` (PSA with psa_type=2, compact=False,
psa_softmax=True, normalization_factor=1.0) transcribed, with the psamask reshuffle written
as the loops of the code's CPU kernel (``lib/psa/src/cpu/psamask.cpp``, the same as the CUDA
one): collect puts a pixel's mask window in the pixel's column of the H*W x H*W map,
distribute in its row. (The pure-Python loop left in a comment of
``lib/psa/functions/psamask.py`` transposes the distribute map once more; the kernels, which
the code runs, do not, and only they make the second branch distribute.)
Simplification shared with the spec: shrink_factor = 1 (no bilinear resampling around the
attention). The compiled gathers' index buffers have no counterpart and are dropped.
"""

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn


def psa_mask(x: Tensor, psa_type: int) -> Tensor:
    """The psamask kernels' loops (psamask.cpp): [N, (2H-1)(2W-1), H, W] -> [N, H*W, H, W].

    For each pixel (h, w), the mask entries (hidx, widx) whose offset lands on the map go to
    position p = (hidx + h - half_h, widx + w - half_w): collect writes out[p, (h, w)],
    distribute out[(h, w), p]; the rest stays 0.
    """
    num, channels, fh, fw = x.size()
    mh, mw = 2 * fh - 1, 2 * fw - 1
    assert channels == mh * mw
    half_h, half_w = (mh - 1) // 2, (mw - 1) // 2
    out = torch.zeros(num, fh * fw, fh * fw, dtype=x.dtype)
    for h in range(fh):
        for w in range(fw):
            for hidx in range(max(0, half_h - h), min(mh, fh + half_h - h)):
                for widx in range(max(0, half_w - w), min(mw, fw + half_w - w)):
                    p = (hidx + h - half_h) * fw + (widx + w - half_w)
                    value = x[:, hidx * mw + widx, h, w]
                    if psa_type == 0:  # collect
                        out[:, p, h * fw + w] = value
                    else:  # distribute
                        out[:, h * fw + w, p] = value
    return out.view(num, fh * fw, fh, fw)


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel_size=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class PSA(nn.Module):
    def __init__(self, in_channels: int, mid_channels: int, h: int, w: int) -> None:
        super().__init__()
        mask = (2 * h - 1) * (2 * w - 1)
        self.reduce = nn.Sequential(*_conv_bn_relu(in_channels, mid_channels))
        self.attention = nn.Sequential(*_conv_bn_relu(mid_channels, mid_channels),
                                       nn.Conv2d(mid_channels, mask, kernel_size=1, bias=False))
        self.reduce_p = nn.Sequential(*_conv_bn_relu(in_channels, mid_channels))
        self.attention_p = nn.Sequential(*_conv_bn_relu(mid_channels, mid_channels),
                                         nn.Conv2d(mid_channels, mask, kernel_size=1,
                                                   bias=False))
        self.proj = nn.Sequential(*_conv_bn_relu(mid_channels * 2, in_channels))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = x
        x_col = self.reduce(x)
        x_dis = self.reduce_p(x)
        n, c, h, w = x_col.size()
        y_col = F.softmax(psa_mask(self.attention(x_col), 0), dim=1)
        y_dis = F.softmax(psa_mask(self.attention_p(x_dis), 1), dim=1)
        x_col = torch.bmm(x_col.view(n, c, h * w), y_col.view(n, h * w, h * w)).view(n, c, h, w)
        x_dis = torch.bmm(x_dis.view(n, c, h * w), y_dis.view(n, h * w, h * w)).view(n, c, h, w)
        x = self.proj(torch.cat([x_col, x_dis], 1))
        return torch.cat((out, x), 1), y_col, y_dis


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled state_dict without the gathers' index tables (same names otherwise)."""
    return {k: v for k, v in state.items() if not k.endswith(".index")}
