"""ViT multi-head self-attention reference: torch's nn.MultiheadAttention.

Paper: Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021.
Survey: Guo et al., section 3.2.8 (Figs. 7-8).
ViT's attention layer (google-research/vision_transformer MultiHeadDotProductAttention, timm's
Attention) is the map of ``nn.MultiheadAttention(D, heads, batch_first=True)``: q, k, v
projections with biases (one [3D, D] in_proj_weight, rows q | k | v, head h owning rows
h*E .. h*E + E - 1 of each), a softmax over the keys per head with scale E^-1/2, the heads
concatenated and mapped by out_proj.

The compiled block holds each projection per head, q_weight [heads, E, D] and
out_weight [D, heads, E]; ``from_compiled`` flattens and stacks them into torch's layout.
"""

import torch
from torch import Tensor, nn


class MHSAReference(nn.MultiheadAttention):
    def __init__(self, D: int, heads: int = 8) -> None:
        super().__init__(D, heads, bias=True, batch_first=True)

    def forward(self, x: Tensor, return_attention: bool = False):  # type: ignore[override]
        y, a = super().forward(x, x, x, need_weights=return_attention,
                               average_attn_weights=False)
        return (y, a) if return_attention else y          # a: [N, heads, L, M]


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """torch's MHA state_dict from the compiled block's per-head tensors."""
    d = state["out_bias"].shape[0]
    return {
        "in_proj_weight": torch.cat([state[f"{p}_weight"].reshape(d, d) for p in "qkv"]),
        "in_proj_bias": torch.cat([state[f"{p}_bias"].reshape(d) for p in "qkv"]),
        "out_proj.weight": state["out_weight"].reshape(d, d),
        "out_proj.bias": state["out_bias"],
    }
