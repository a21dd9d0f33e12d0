"""External attention (EANet) reference, the segmentation block of the authors' code.

Paper: Guo, Liu, Mu, Hu, "Beyond Self-attention: External Attention using Two Linear Layers
for Visual Tasks" (2021). Survey: Guo et al., section 3.2.7 (prose). Authors' code:
MenghaoGuo/EANet ``model_torch/models/eanet.py`` (External_attention), transcribed: conv1
1x1 C -> C (bias), x viewed as [b, c, n], linear_0 = Conv1d(C, k, 1, bias=False), softmax
over n (dim=-1), attn / (1e-9 + attn.sum(dim=1)), linear_1 = Conv1d(k, C, 1, bias=False),
conv2 = Sequential(Conv2d(C, C, 1, bias=False), BN), y = relu(conv2(.) + x).

The code's initial weight tie (linear_1 = permuted view of linear_0) and normal init are left
out: tests load the compiled weights. The compiled block holds the Conv1d memories as dense
[k, C] / [C, k] weights; ``from_compiled`` adds the kernel dim.
"""

import torch
from torch import Tensor, nn


class EANetReference(nn.Module):
    def __init__(self, C: int, m: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(C, C, 1)
        self.k = m
        self.linear_0 = nn.Conv1d(C, self.k, 1, bias=False)
        self.linear_1 = nn.Conv1d(self.k, C, 1, bias=False)
        self.conv2 = nn.Sequential(nn.Conv2d(C, C, 1, bias=False), nn.BatchNorm2d(C))

    def forward(self, x: Tensor) -> Tensor:
        idn = x
        x = self.conv1(x)
        b, c, h, w = x.size()
        x = x.view(b, c, h * w)                                   # b, c, n
        attn = self.linear_0(x)                                   # b, k, n
        attn = torch.softmax(attn, dim=-1)                            # over the positions
        attn = attn / (1e-9 + attn.sum(dim=1, keepdim=True))      # over the memory units
        x = self.linear_1(attn)                                   # b, c, n
        x = x.view(b, c, h, w)
        x = self.conv2(x)
        return torch.relu(x + idn)


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled block's state_dict with the code's Conv1d [out, in, 1] memories."""
    return {k: v[..., None] if k in ("linear_0.weight", "linear_1.weight") else v
            for k, v in state.items()}
