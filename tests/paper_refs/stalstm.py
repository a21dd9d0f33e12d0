"""STA-LSTM reference: the spatial and temporal attention of one step (Song et al., AAAI 2017).

Written from the paper's equations (survey section 3.6.1, eqs 141-144); the authors released
no code. The frame's K joints are flattened to one vector x_t of K*D numbers, as the paper's
x_t in R^{3K}; W_xs and W_xp read that vector. The compiled state_dict loads as it is.
"""

import torch
from torch import Tensor, nn


class STALSTMReference(nn.Module):
    def __init__(self, joints: int, coords: int, hidden: int, att: int) -> None:
        super().__init__()
        self.w_xs = nn.Linear(joints * coords, att)              # W_xs, b_si
        self.w_hs = nn.Linear(hidden, att, bias=False)           # W_hs
        self.u_s = nn.Linear(att, joints)                        # U_s, b_so
        self.w_xp = nn.Linear(joints * coords, 1)                # W_xp, b_p
        self.w_hp = nn.Linear(hidden, 1, bias=False)             # W_hp

    def forward(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        xt = x.flatten(1)                                        # [N, K*D]
        s = self.u_s(torch.tanh(self.w_xs(xt) + self.w_hs(h)))   # eq. 141
        alpha = torch.softmax(s, dim=1)                          # eq. 142, over the joints
        x_att = x * alpha.unsqueeze(-1)                          # eq. 143
        beta = torch.relu(self.w_xp(xt) + self.w_hp(h)).squeeze(1)   # eq. 144
        return x_att, beta, alpha
