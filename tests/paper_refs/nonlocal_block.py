"""Non-local block (embedded Gaussian) reference, 2-D.

Paper: Wang, Girshick, Gupta, He, "Non-local Neural Networks", CVPR 2018.
Survey: Guo et al., section 3.2.7, eqs (39)-(40).
Authors' code: facebookresearch/video-nonlocal-net ``lib/models/nonlocal_helper.py``
(``spacetime_nonlocal``) with the config defaults USE_MAXPOOL, USE_SCALE, USE_SOFTMAX,
USE_BN = True and BN_INIT_GAMMA = 0, transcribed from Caffe2 to torch for images: the 1x2x2
max pool becomes a 2-D pool with kernel = stride = ``sub``, the 1x1x1 convs 1x1 convs.

Differences from the survey, following the code: keys and values come from the max-pooled
map; the affinities are scaled by dim_inner^-1/2; the aggregate passes through a 1x1 conv
(``W_z``) and a BatchNorm with zero-initialised gamma, then is added to x.
"""

import torch
from torch import Tensor, nn


class NonLocalReference(nn.Module):
    def __init__(self, C: int, r: int = 2, sub: int = 2) -> None:
        super().__init__()
        dim_inner = C // r
        self.dim_inner, self.sub = dim_inner, sub
        self.theta = nn.Conv2d(C, dim_inner, 1)
        self.phi = nn.Conv2d(C, dim_inner, 1)
        self.g = nn.Conv2d(C, dim_inner, 1)
        self.W_z = nn.Conv2d(dim_inner, C, 1)           # the code's `out` conv
        self.bn = nn.BatchNorm2d(C, eps=1e-5, momentum=0.1)
        for conv in (self.theta, self.phi, self.g, self.W_z):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.bn.weight)                  # BN_INIT_GAMMA = 0

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        theta = self.theta(x).view(n, self.dim_inner, -1)                  # [N, D, HW]
        pooled = nn.functional.max_pool2d(x, self.sub, self.sub)
        phi = self.phi(pooled).view(n, self.dim_inner, -1)                 # [N, D, HsWs]
        g = self.g(pooled).view(n, self.dim_inner, -1)                     # [N, D, HsWs]
        theta_phi = torch.bmm(theta.transpose(1, 2), phi)                  # trans_a=1
        theta_phi = theta_phi * self.dim_inner ** -0.5                     # USE_SCALE
        p = torch.softmax(theta_phi, dim=2)                                # over the keys
        t = torch.bmm(g, p.transpose(1, 2))                                # trans_b=1: [N, D, HW]
        t = t.view(n, self.dim_inner, h, w)
        return x + self.bn(self.W_z(t))
