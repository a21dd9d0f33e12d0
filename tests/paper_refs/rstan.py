"""RSTAN reference: the spatial-temporal attention of one RNN step (Du et al., TIP 2018).

Written from the equations (survey section 3.6.2, eqs 145-150) on the paper's D x T x (H*W)
view of the clip's features; no authors' code was found. The compiled state_dict loads as
it is.
"""

import torch
from torch import Tensor, nn


class RSTANReference(nn.Module):
    def __init__(self, channels: int, hidden: int, att: int, gamma: float = 1.0) -> None:
        super().__init__()
        self.gamma = gamma
        self.w_x = nn.Linear(channels, att)                 # W_X, b_alpha
        self.w_h = nn.Linear(hidden, att, bias=False)       # W_h
        self.w_alpha = nn.Linear(att, 1, bias=False)        # w_alpha
        self.w_l = nn.Linear(channels, att)                 # W_l, b_beta
        self.w_h2 = nn.Linear(hidden, att, bias=False)      # W'_h
        self.w_beta = nn.Linear(att, 1, bias=False)         # w_beta

    def forward(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n, d, t, hh, ww = x.shape
        feats = x.reshape(n, d, t, hh * ww).permute(0, 2, 3, 1)            # X(n, k): [N, T, HW, D]
        a = self.w_alpha(torch.tanh(self.w_h(h)[:, None, None] + self.w_x(feats))).squeeze(-1)
        alpha = torch.softmax(self.gamma * a, dim=2)                        # eqs. 145-146
        frames = (alpha.unsqueeze(-1) * feats).sum(dim=2)                   # l(n), eq. 147
        b = self.w_beta(torch.tanh(self.w_h2(h)[:, None] + self.w_l(frames))).squeeze(-1)
        beta = torch.softmax(b, dim=1)                                      # eqs. 148-149
        phi = (beta.unsqueeze(-1) * frames).sum(dim=1)                      # eq. 150
        return phi, alpha.reshape(n, t, hh, ww), beta
