"""Dynamic convolution (DyConv) reference.

Paper: Chen, Dai, Liu, Chen, Yuan, Liu, "Dynamic Convolution: Attention over Convolution
Kernels", CVPR 2020. Survey: Guo et al., section 3.4.4, eqs (68)-(70).
The authors released no code; this transcribes the most-used PyTorch port,
kaijieshi7/Dynamic-convolution-Pytorch ``dynamic_conv.py`` (attention2d, Dynamic_conv2d):
attention = softmax(fc2(relu(fc1(avgpool(x)))) / temperature) with fc1 a 1x1 conv without bias
to int(C * ratio) + 1 channels and fc2 a 1x1 conv with bias to K; kernels [K, O, C, k, k]
(each kaiming_uniform_), biases [K, O] (zeros); the mixed kernel ``attention @ weight.view(K,
-1)`` viewed as [B * O, C, k, k] and the mixed bias convolve x viewed as [1, B * C, H, W] with
groups B. Stride 1, padding (k - 1) // 2, groups 1. ``hidden`` overrides the port's width
(the paper's C // 4); the temperature is a plain attribute (the port anneals it in training).

The compiled block holds fc1/fc2 as dense maps and the kernels as [K, O, C, k * k];
``from_compiled`` adds the 1x1 dims and reshapes the kernels.
"""

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn


class Attention2d(nn.Module):
    def __init__(self, in_planes: int, ratios: float, K: int, temperature: float,
                 hidden: int | None = None) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        hidden_planes = int(in_planes * ratios) + 1 if hidden is None else hidden
        self.fc1 = nn.Conv2d(in_planes, hidden_planes, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden_planes, K, 1, bias=True)
        self.temperature = temperature
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(x)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x).view(x.size(0), -1)
        return F.softmax(x / self.temperature, 1)


class DynamicConv2dReference(nn.Module):
    """Dynamic_conv2d; returns (y, attention over the K kernels)."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int, ratio: float = 0.25,
                 K: int = 4, temperature: float = 1.0, hidden: int | None = None) -> None:
        super().__init__()
        self.in_planes, self.out_planes = in_planes, out_planes
        self.kernel_size, self.K = kernel_size, K
        self.padding = (kernel_size - 1) // 2
        self.attention = Attention2d(in_planes, ratio, K, temperature, hidden)
        self.weight = nn.Parameter(torch.randn(K, out_planes, in_planes, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.zeros(K, out_planes))
        for i in range(self.K):
            nn.init.kaiming_uniform_(self.weight[i])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        softmax_attention = self.attention(x)
        batch_size, _, height, width = x.size()
        x = x.view(1, -1, height, width)
        weight = self.weight.view(self.K, -1)
        aggregate_weight = torch.mm(softmax_attention, weight).view(
            -1, self.in_planes, self.kernel_size, self.kernel_size)
        aggregate_bias = torch.mm(softmax_attention, self.bias).view(-1)
        output = F.conv2d(x, weight=aggregate_weight, bias=aggregate_bias, stride=1,
                          padding=self.padding, dilation=1, groups=batch_size)
        output = output.view(batch_size, self.out_planes, output.size(-2), output.size(-1))
        return output, softmax_attention


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled state_dict under the port's names and shapes."""
    w = state["weight"]
    k = round(w.shape[-1] ** 0.5)
    return {"attention.fc1.weight": state["fc1.weight"][..., None, None],
            "attention.fc2.weight": state["fc2.weight"][..., None, None],
            "attention.fc2.bias": state["fc2.bias"],
            "weight": w.reshape(*w.shape[:-1], k, k),
            "bias": state["bias"]}
