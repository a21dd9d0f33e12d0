"""Criss-cross attention (CCNet) reference: the official pure-PyTorch module, applied R times.

Paper: Huang, Wang, Huang, Huang, Wei, Liu, "CCNet: Criss-Cross Attention for Semantic
Segmentation", ICCV 2019. Survey: Guo et al., section 3.2 (text only).
Authors' code: speedinghzl/CCNet ``cc_attention/functions.py`` (CrissCrossAttention, with the
``INF`` matrix: -inf on the diagonal of the column energies) and ``networks/ccnet.py``
(RCCAModule: ``recurrence`` passes of one shared CrissCrossAttention), transcribed with the
energies built through ``bmm`` over (batch x column) and (batch x row) exactly as there; the
INF matrix is made on the input's device instead of ``.cuda()``.
Not here: RCCAModule's convs around the loop. The code's gamma has shape [1]; the compiled
block's is rank 0 (``from_compiled``).
"""

import torch
from torch import Tensor, nn


def neg_inf_diagonal(b: int, h: int, w: int, device: torch.device) -> Tensor:
    """The code's INF(B, H, W): [B * W, H, H] with -inf on each diagonal, 0 elsewhere."""
    return -torch.diag(torch.tensor(float("inf"), device=device).repeat(h), 0).unsqueeze(
        0).repeat(b * w, 1, 1)


class CrissCrossAttention(nn.Module):
    def __init__(self, in_dim: int, r: int = 8) -> None:
        super().__init__()
        self.query_conv = nn.Conv2d(in_dim, in_dim // r, kernel_size=1)
        self.key_conv = nn.Conv2d(in_dim, in_dim // r, kernel_size=1)
        self.value_conv = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.softmax = nn.Softmax(dim=3)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, _, h, w = x.size()
        q = self.query_conv(x)
        q_h = q.permute(0, 3, 1, 2).contiguous().view(b * w, -1, h).permute(0, 2, 1)
        q_w = q.permute(0, 2, 1, 3).contiguous().view(b * h, -1, w).permute(0, 2, 1)
        k = self.key_conv(x)
        k_h = k.permute(0, 3, 1, 2).contiguous().view(b * w, -1, h)
        k_w = k.permute(0, 2, 1, 3).contiguous().view(b * h, -1, w)
        v = self.value_conv(x)
        v_h = v.permute(0, 3, 1, 2).contiguous().view(b * w, -1, h)
        v_w = v.permute(0, 2, 1, 3).contiguous().view(b * h, -1, w)
        inf = neg_inf_diagonal(b, h, w, x.device).to(x.dtype)
        energy_h = (torch.bmm(q_h, k_h) + inf).view(b, w, h, h).permute(0, 2, 1, 3)
        energy_w = torch.bmm(q_w, k_w).view(b, h, w, w)
        concate = self.softmax(torch.cat([energy_h, energy_w], 3))
        att_h = concate[:, :, :, 0:h].permute(0, 2, 1, 3).contiguous().view(b * w, h, h)
        att_w = concate[:, :, :, h:h + w].contiguous().view(b * h, w, w)
        out_h = torch.bmm(v_h, att_h.permute(0, 2, 1)).view(b, w, -1, h).permute(0, 2, 3, 1)
        out_w = torch.bmm(v_w, att_w.permute(0, 2, 1)).view(b, h, -1, w).permute(0, 2, 1, 3)
        return self.gamma * (out_h + out_w) + x, concate


class CCNetReference(nn.Module):
    """R passes of one CrissCrossAttention; returns the output and the last pass's map."""

    def __init__(self, C: int, r: int = 8, R: int = 2) -> None:
        super().__init__()
        self.cca = CrissCrossAttention(C, r)
        self.R = R

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        att = None
        for _ in range(self.R):
            x, att = self.cca(x)
        return x, att


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled block's state_dict under the reference's names, gamma of shape [1]."""
    return {f"cca.{k}": v.reshape(1) if k == "gamma" else v for k, v in state.items()}
