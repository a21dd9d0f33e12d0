"""Highway layer reference, written from the paper.

Paper: Srivastava, Greff, Schmidhuber, "Highway Networks" (ICML 2015 workshop); survey
Guo et al., section 3.4.1, eqs. (58)-(59): y = H(x) T(x) + x (1 - T(x)),
T(x) = sigmoid(W_T x + b_T), H a fully connected layer with a ReLU, b_T initialised
negative. nn.Linear layers; the gate's bias is a separate parameter (`gate_bias`) so the
names match the compiled block's (plain.*, gate.weight, gate_bias).
"""

import torch
from torch import Tensor, nn


class HighwayReference(nn.Module):
    def __init__(self, D: int, bias_init: float = -1.0) -> None:
        super().__init__()
        self.plain = nn.Linear(D, D)
        self.gate = nn.Linear(D, D, bias=False)
        self.gate_bias = nn.Parameter(torch.full((D,), bias_init))

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.plain(x))
        t = torch.sigmoid(self.gate(x) + self.gate_bias)
        return h * t + x * (1 - t)
