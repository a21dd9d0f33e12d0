"""Soft attention reference (one decoding step of "Show, Attend and Tell").

Paper: Xu et al., "Show, Attend and Tell", ICML 2015. Survey: Guo et al., section 3.2.3,
eqs (27), (28), (31).
Code: sgrvinod/a-PyTorch-Tutorial-to-Image-Captioning, models.py ``Attention``
(encoder_att, decoder_att, full_att, all nn.Linear with biases), with the paper's tanh in
place of the tutorial's ReLU (the spec's choice, as in kelvinxu/arctic-captions).

The compiled block holds full_att as a weight vector [A] and a rank-0 bias; `from_compiled`
reshapes them to nn.Linear(att, 1)'s [1, A] and [1].
"""

import torch
from torch import Tensor, nn


class SoftAttentionReference(nn.Module):
    def __init__(self, encoder_dim: int, decoder_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.encoder_att = nn.Linear(encoder_dim, attention_dim)
        self.decoder_att = nn.Linear(decoder_dim, attention_dim)
        self.full_att = nn.Linear(attention_dim, 1)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, encoder_out: Tensor, decoder_hidden: Tensor) -> tuple[Tensor, Tensor]:
        att1 = self.encoder_att(encoder_out)                  # [N, L, A]
        att2 = self.decoder_att(decoder_hidden)               # [N, A]
        att = self.full_att(torch.tanh(att1 + att2.unsqueeze(1))).squeeze(2)   # [N, L]
        alpha = self.softmax(att)
        awe = (encoder_out * alpha.unsqueeze(2)).sum(dim=1)   # [N, D]
        return awe, alpha


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    out = {k: v for k, v in state.items() if not k.startswith("full_att_")}
    out["full_att.weight"] = state["full_att_weight"].reshape(1, -1)
    out["full_att.bias"] = state["full_att_bias"].reshape(1)
    return out
