"""Double attention (A^2-Net) reference, written from the paper.

Paper: Chen, Kalantidis, Li, Yan, Feng, "A^2-Nets: Double Attention Networks", NeurIPS 2018.
Survey: Guo et al., section 3.2.7 (prose). The authors released no code; this follows the
paper's equations with X as C x (h*w): A = phi(X) (1x1 conv C -> c_m), B = theta(X) and
V = rho(X) (1x1 convs C -> c_n), G = A softmax(B)^T with the softmax over the positions
(gather, a bmm), Z = G softmax(V) with the softmax over the c_n descriptors at each position
(distribute), then a 1x1 conv c_m -> C and the residual add of the paper's block. Convs have
biases (nn.Conv2d's default, as in the common PyTorch ports). Parameter names are the
compiled ones (convA, convB, convV, conv_reconstruct), shapes as nn.Conv2d's.
"""

import torch
from torch import Tensor, nn


class A2NetReference(nn.Module):
    def __init__(self, C: int, r: int = 4) -> None:
        super().__init__()
        self.c_m = self.c_n = C // r
        self.convA = nn.Conv2d(C, self.c_m, 1)
        self.convB = nn.Conv2d(C, self.c_n, 1)
        self.convV = nn.Conv2d(C, self.c_n, 1)
        self.conv_reconstruct = nn.Conv2d(self.c_m, C, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        A = self.convA(x).view(b, self.c_m, h * w)
        attention_maps = torch.softmax(self.convB(x).view(b, self.c_n, h * w), dim=-1)
        attention_vectors = torch.softmax(self.convV(x).view(b, self.c_n, h * w), dim=1)
        global_descriptors = torch.bmm(A, attention_maps.permute(0, 2, 1))   # b, c_m, c_n
        z = torch.bmm(global_descriptors, attention_vectors)                 # b, c_m, h*w
        return x + self.conv_reconstruct(z.view(b, self.c_m, h, w))
