"""GSoP block (channel attention, GSoP-Net1) reference.

Paper: Gao, Xie, Wang, Li, "Global Second-order Pooling Convolutional Networks", CVPR 2019.
Survey: Guo et al., section 3.1.2, eqs (3)-(4).
Authors' code: ZilinGao/Global-Second-order-Pooling-Convolutional-Networks,
``torchvision/models/resnet.py`` (Bottleneck.chan_att with attention '1', stride-1
reduction) and ``MPNCOV.CovpoolLayer``, transcribed: z = ReLU(BN(conv1x1(ReLU(x)))),
cov = z_flat (I/M - 11^T/M^2) z_flat^T over the M = H*W positions, viewed [N, d, d, 1];
row_bn (BatchNorm2d over the rows), row_conv_group (Conv2d d -> 4d, kernel (d, 1),
groups d, bias), fc_adapt_channels (1x1 conv 4d -> C, bias), sigmoid; y = x * gate.

The compiled block stores the row conv's weight as a 1-D conv kernel [4d, 1, d] and the
4d -> C map as a dense [C, 4d]; ``from_compiled`` adds the trailing kernel dims.
"""

import torch
from torch import Tensor, nn


def covpool(x: Tensor) -> Tensor:
    """MPNCOV.CovpoolLayer's forward: [N, d, H, W] -> [N, d, d]."""
    n, d, h, w = x.shape
    m = h * w
    x = x.reshape(n, d, m)
    i_hat = (-1.0 / m / m) * torch.ones(m, m, dtype=x.dtype) + (1.0 / m) * torch.eye(
        m, dtype=x.dtype)
    return x.bmm(i_hat.expand(n, m, m)).bmm(x.transpose(1, 2))


class GSoPReference(nn.Module):
    def __init__(self, C: int, d: int = 128) -> None:
        super().__init__()
        self.conv_for_DR = nn.Conv2d(C, d, kernel_size=1, stride=1, bias=True)
        self.bn_for_DR = nn.BatchNorm2d(d)
        self.row_bn = nn.BatchNorm2d(d)
        self.row_conv_group = nn.Conv2d(d, 4 * d, kernel_size=(d, 1), groups=d, bias=True)
        self.fc_adapt_channels = nn.Conv2d(4 * d, C, kernel_size=1, groups=1, bias=True)

    def chan_att(self, out: Tensor) -> Tensor:
        out = torch.relu(out)                                 # relu_normal
        out = torch.relu(self.bn_for_DR(self.conv_for_DR(out)))
        out = covpool(out)                                    # N x d x d
        out = out.view(out.size(0), out.size(1), out.size(2), 1).contiguous()
        out = self.row_conv_group(self.row_bn(out))           # N x 4d x 1 x 1
        return torch.sigmoid(self.fc_adapt_channels(out))     # N x C x 1 x 1

    def forward(self, x: Tensor) -> Tensor:
        return x * self.chan_att(x)


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled state_dict with the code's conv-kernel shapes."""
    shape = {"row_conv_group.weight": lambda v: v[..., None],
             "fc_adapt_channels.weight": lambda v: v[..., None, None]}
    return {k: shape[k](v) if k in shape else v for k, v in state.items()}
