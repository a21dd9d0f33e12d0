"""STGCN reference: the temporal and structural graph modules (Yang et al., CVPR 2020).

Written from the equations (survey section 3.6.4, eqs 157-160) with dense node matrices: the
adjacency normalisation builds I and the degree matrix D explicitly (the compiled block uses
(A + I) / 2, which equals it). No authors' code was found. Input [N, T, C, H, W]; P
horizontal stripes per frame, average-pooled; two GCN layers per module. Parameter names
follow the compiled block, so its state_dict loads as it is.
"""

import torch
from torch import Tensor, nn


def normalized_adjacency(feats: Tensor, phi: nn.Linear, theta: nn.Linear) -> tuple[Tensor, Tensor]:
    """feats [B, V, C] -> (A of eq. 158, A-hat of eq. 159), both [B, V, V]."""
    e = phi(feats) @ theta(feats).transpose(1, 2)                  # eq. 157
    a = e ** 2 / (e ** 2).sum(dim=2, keepdim=True)                 # eq. 158
    a_i = a + torch.eye(a.shape[-1], dtype=a.dtype)
    d = a_i.sum(dim=2) ** -0.5                                     # D^-1/2, eq. 159
    return a, d[:, :, None] * a_i * d[:, None, :]


class _Layer(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.w = nn.Linear(channels, channels, bias=False)         # W^m

    def forward(self, x: Tensor, a_hat: Tensor) -> Tensor:
        return self.w(a_hat @ x) + x                               # eq. 160


class STGCNReference(nn.Module):
    def __init__(self, channels: int, patches: int = 4) -> None:
        super().__init__()
        self.p = patches
        self.phi_t = nn.Linear(channels, channels, bias=False)
        self.theta_t = nn.Linear(channels, channels, bias=False)
        self.phi_s = nn.Linear(channels, channels, bias=False)
        self.theta_s = nn.Linear(channels, channels, bias=False)
        self.t1, self.t2 = _Layer(channels), _Layer(channels)
        self.s1, self.y_s = _Layer(channels), _Layer(channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        n, t, c, hh, ww = x.shape
        patches = x.reshape(n, t, c, self.p, hh // self.p, ww).mean(dim=(4, 5))  # [N,T,C,P]
        nodes = patches.permute(0, 1, 3, 2)                        # [N, T, P, C]
        # temporal module: one graph over the T*P patches of the tracklet
        v = nodes.reshape(n, t * self.p, c)
        a_t, a_hat = normalized_adjacency(v, self.phi_t, self.theta_t)
        y = self.t2(self.t1(v, a_hat), a_hat).reshape(n, t, self.p, c)
        # structural module: one graph per frame over its P patches
        f = nodes.reshape(n * t, self.p, c)
        a_s, s_hat = normalized_adjacency(f, self.phi_s, self.theta_s)
        y_s = self.y_s(self.s1(f, s_hat), s_hat).reshape(n, t, self.p, c)
        return y, y_s, a_t, a_s.reshape(n, t, self.p, self.p)
