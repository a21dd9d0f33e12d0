"""Temporal adaptive module (TAM) reference.

Paper: Liu, Wang, Wu, Qian, Lu, "TAM: Temporal Adaptive Module for Video Recognition",
ICCV 2021. Survey: Guo et al., section 3.3.2, eqs (54)-(57).
Authors' code: liu-zhy/temporal-adaptive-module ``ops/temporal_module.py`` (class TAM),
transcribed: input [N * T, C, H, W] (TSN layout, T = n_segment); GAP gives [N * C, T];
G = Linear(T, 2T, no bias), BatchNorm1d(2T), ReLU, Linear(2T, K, no bias), Softmax -> the
kernel [N * C, 1, K, 1]; L = Conv1d(C, C // 4, K, pad K // 2, no bias), BatchNorm1d, ReLU,
Conv1d(C // 4, C, 1, no bias), Sigmoid -> [N, C, T]; the modulated map [1, N * C, T, H * W]
is convolved with groups N * C, padding (t_padding, 0), and returned as [N * T, C, H, W].

Generalised only where the compiled block has extra hyperparameters: the global width
alpha * T (the code's 2T), the local width C // beta (the code's C // 4), the local conv's
kernel ``local_kernel_size`` (the code's kernel_size), and t_padding = kernel_size // 2 (the
code's default 1 at its kernel_size 3). The forward also returns the two attention maps.
Parameter names are the code's, the compiled block's too.
"""

import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn


class TAMReference(nn.Module):
    def __init__(self, in_channels: int, n_segment: int, kernel_size: int = 3,
                 alpha: int = 2, beta: int = 4, local_kernel_size: int | None = None) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.n_segment = n_segment
        self.kernel_size = kernel_size
        self.padding = kernel_size // 2
        lk = kernel_size if local_kernel_size is None else local_kernel_size
        self.G = nn.Sequential(
            nn.Linear(n_segment, n_segment * alpha, bias=False),
            nn.BatchNorm1d(n_segment * alpha), nn.ReLU(inplace=True),
            nn.Linear(n_segment * alpha, kernel_size, bias=False), nn.Softmax(-1))
        self.L = nn.Sequential(
            nn.Conv1d(in_channels, in_channels // beta, lk, stride=1, padding=lk // 2,
                      bias=False),
            nn.BatchNorm1d(in_channels // beta), nn.ReLU(inplace=True),
            nn.Conv1d(in_channels // beta, in_channels, 1, bias=False), nn.Sigmoid())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        nt, c, h, w = x.size()
        t = self.n_segment
        n_batch = nt // t
        new_x = x.view(n_batch, t, c, h, w).permute(0, 2, 1, 3, 4).contiguous()
        out = F.adaptive_avg_pool2d(new_x.view(n_batch * c, t, h, w), (1, 1))
        out = out.view(-1, t)
        conv_kernel = self.G(out.view(-1, t)).view(n_batch * c, 1, -1, 1)
        local_activation = self.L(out.view(n_batch, c, t)).view(n_batch, c, t, 1, 1)
        new_x = new_x * local_activation
        out = F.conv2d(new_x.view(1, n_batch * c, t, h * w), conv_kernel, bias=None,
                       stride=(1, 1), padding=(self.padding, 0), groups=n_batch * c)
        out = out.view(n_batch, c, t, h, w)
        out = out.permute(0, 2, 1, 3, 4).contiguous().view(nt, c, h, w)
        return (out, local_activation.view(n_batch, c, t),
                conv_kernel.view(n_batch, c, self.kernel_size))
