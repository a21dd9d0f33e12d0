"""Squeeze-and-Excitation reference.

Paper: Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018 / TPAMI 2020.
Survey: Guo et al., "Attention Mechanisms in Computer Vision: A Survey", section 3.1.1, eqs (1)-(2):
``s = sigma(W2 delta(W1 GAP(X)))``, ``Y = s X``.
Authors' code: hujie-frank/SENet ``models/SE-ResNet-50.prototxt`` (global pooling, ``1x1_down``,
ReLU, ``1x1_up``, Sigmoid, Axpy). Biases are on in both 1x1 convolutions.

Difference from the survey: eq (1) has no biases, but the released Caffe models keep them, and
this reference does too. The hidden width is ``C // r`` (integer division).
"""

import torch
from torch import Tensor, nn


class SEReference(nn.Module):
    """SE block: ``y = x * sigmoid(fc2(relu(fc1(mean_hw(x)))))``."""

    def __init__(self, C: int, r: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Linear(C, C // r)  # "1x1_down", bias on
        self.fc2 = nn.Linear(C // r, C)  # "1x1_up", bias on

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean(dim=(2, 3))  # N,C  (squeeze: global average pooling)
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))  # N,C  (excitation)
        return x * s[:, :, None, None]
