"""Conditionally parameterized convolution (CondConv) reference.

Paper: Yang, Bender, Le, Ngiam, "CondConv: Conditionally Parameterized Convolutions for
Efficient Inference", NeurIPS 2019. Survey: Guo et al., section 3.4.3, eqs (65)-(67).
Code transcribed to plain torch: pytorch-image-models ``timm/layers/cond_conv2d.py``
(CondConv2d: experts stored as [num_experts, O * C * k * k], each initialised as a conv's
kaiming_uniform(a=sqrt(5)); the mixed kernel is ``routing_weights @ weight`` viewed as
[B * O, C, k, k] and applied by one conv with groups B) and the routing of
``CondConvResidual``: ``sigmoid(Linear(C, num_experts)(adaptive_avg_pool2d(x, 1).flatten(1)))``
(the TF original: GlobalAveragePooling + Dense(num_experts, sigmoid) in efficientnet_model.py).
Stride 1, symmetric padding (k - 1) // 2 (timm's '' padding for odd k), no bias, groups 1.

The compiled block holds the experts as [E, O, C, k * k]; ``from_compiled`` flattens them.
"""

import math

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn


class CondConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 num_experts: int = 4) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kernel_size, kernel_size)
        self.padding = ((kernel_size - 1) // 2,) * 2
        self.num_experts = num_experts
        self.weight_shape = (out_channels, in_channels, *self.kernel_size)
        self.weight = nn.Parameter(torch.empty(num_experts, math.prod(self.weight_shape)))
        for i in range(num_experts):  # get_condconv_initializer
            nn.init.kaiming_uniform_(self.weight[i].view(self.weight_shape), a=math.sqrt(5))

    def forward(self, x: Tensor, routing_weights: Tensor) -> Tensor:
        B, C, H, W = x.shape
        weight = torch.matmul(routing_weights, self.weight)
        weight = weight.view((B * self.out_channels, self.in_channels, *self.kernel_size))
        x = x.reshape(1, B * C, H, W)
        out = F.conv2d(x, weight, None, stride=1, padding=self.padding, dilation=1, groups=B)
        return out.permute([1, 0, 2, 3]).view(B, self.out_channels, out.shape[-2],
                                              out.shape[-1])


class CondConvReference(nn.Module):
    """Routing (GAP -> Linear -> sigmoid) and one CondConv2d; returns (y, routing weights)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 num_experts: int = 8) -> None:
        super().__init__()
        self.routing_fn = nn.Linear(in_channels, num_experts)
        self.conv = CondConv2d(in_channels, out_channels, kernel_size, num_experts)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)
        routing = torch.sigmoid(self.routing_fn(pooled))
        return self.conv(x, routing), routing


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled state_dict under the reference's names and timm's flat expert layout."""
    return {"routing_fn.weight": state["routing_fn.weight"],
            "routing_fn.bias": state["routing_fn.bias"],
            "conv.weight": state["weight"].reshape(state["weight"].shape[0], -1)}
