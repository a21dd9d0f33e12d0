"""Global context (GC) block reference.

Paper: Cao, Xu, Lin, Wei, Hu, "GCNet: Non-local Networks Meet Squeeze-Excitation Networks
and Beyond", ICCV Workshops 2019. Survey: Guo et al., section 3.2.7 (prose, no equation).
Authors' code: xvjiarui/GCNet ``mmdet/ops/ct/context_block.py`` (ContextBlock2d with
pool='att', fusions=['channel_add']), transcribed: 1x1 conv_mask C -> 1, softmax over the
H*W positions, context = x @ mask, channel_add_conv = conv1x1 C -> P, LayerNorm([P, 1, 1]),
ReLU, conv1x1 P -> C, y = x + term.

The code zero-initialises ``channel_add_conv[-1]`` (the block starts as the identity); tests
load weights explicitly, so this reference does the same as the code but it does not matter.
The compiled block holds the 1x1 convs of the 1x1 context as dense maps ([P, C] weights, a
[P] LayerNorm weight and bias); ``from_compiled`` adds the trailing unit dims.
"""

import torch
from torch import Tensor, nn


class GCReference(nn.Module):
    def __init__(self, C: int, r: int = 16) -> None:
        super().__init__()
        planes = C // r
        self.conv_mask = nn.Conv2d(C, 1, kernel_size=1)
        self.softmax = nn.Softmax(dim=2)
        self.channel_add_conv = nn.Sequential(
            nn.Conv2d(C, planes, kernel_size=1),
            nn.LayerNorm([planes, 1, 1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(planes, C, kernel_size=1),
        )
        nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.conv_mask.bias)
        nn.init.zeros_(self.channel_add_conv[-1].weight)
        nn.init.zeros_(self.channel_add_conv[-1].bias)

    def spatial_pool(self, x: Tensor) -> Tensor:
        batch, channel, height, width = x.size()
        input_x = x.view(batch, channel, height * width).unsqueeze(1)     # [N, 1, C, HW]
        context_mask = self.conv_mask(x).view(batch, 1, height * width)   # [N, 1, HW]
        context_mask = self.softmax(context_mask).unsqueeze(3)            # [N, 1, HW, 1]
        context = torch.matmul(input_x, context_mask)                     # [N, 1, C, 1]
        return context.view(batch, channel, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        context = self.spatial_pool(x)
        return x + self.channel_add_conv(context)


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled GC block's state_dict with the official 1x1-conv / LayerNorm shapes."""
    # conv [P, C] -> [P, C, 1, 1]; LayerNorm [P] -> [P, 1, 1]
    unit = ("channel_add_conv.0.weight", "channel_add_conv.1.weight", "channel_add_conv.1.bias",
            "channel_add_conv.3.weight")
    return {k: v[..., None, None] if k in unit else v for k, v in state.items()}
