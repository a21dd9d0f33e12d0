"""Hard (stochastic) attention reference: one decoding step of "Show, Attend and Tell".

Paper: Xu et al., "Show, Attend and Tell", ICML 2015, section 4.1. Survey: Guo et al.,
section 3.2.3, eqs (27)-(30).
Code: kelvinxu/arctic-captions ``capgen.py`` (Theano), the attention part of the LSTM
decoder step with attn_type 'stochastic', transcribed to torch:

    pctx_  = dot(context, Wc_att) + b_att          # once per image
    pstate_ = dot(h_, Wd_att)
    pctx_  = tanh(pctx_ + pstate_[:, None, :])
    alpha  = softmax(dot(pctx_, U_att) + c_tt)     # over the L annotation vectors
    alpha_sample = h_sampling_mask * multinomial(alpha) + (1 - h_sampling_mask) * alpha
    ctx_   = (context * alpha_sample[:, :, None]).sum(1)

The sample is an argument here (a one-hot [N, L] or None), so the test controls it.
The compiled block keeps the two hidden biases apart (encoder_att.bias, decoder_att.bias, as
the soft-attention tutorial does); capgen.py has one, b_att, their sum, which is what
`from_compiled` makes of them.
"""

import torch
from torch import Tensor, nn


class HardAttentionReference(nn.Module):
    def __init__(self, ctx_dim: int, dim: int, dimctx: int) -> None:
        super().__init__()
        self.Wc_att = nn.Parameter(torch.empty(ctx_dim, dimctx))
        self.b_att = nn.Parameter(torch.empty(dimctx))
        self.Wd_att = nn.Parameter(torch.empty(dim, dimctx))
        self.U_att = nn.Parameter(torch.empty(dimctx, 1))
        self.c_tt = nn.Parameter(torch.empty(1))

    def forward(self, context: Tensor, h_: Tensor, h_sampling_mask: Tensor | None = None,
                sample: Tensor | None = None) -> tuple[Tensor, Tensor]:
        pctx_ = context @ self.Wc_att + self.b_att                  # [N, L, A]
        pstate_ = h_ @ self.Wd_att                                  # [N, A]
        pctx_ = torch.tanh(pctx_ + pstate_[:, None, :])
        alpha = torch.softmax((pctx_ @ self.U_att + self.c_tt)[..., 0], dim=1)   # [N, L]
        if h_sampling_mask is None:   # the expectation branch alone (mask = 0)
            alpha_sample = alpha
        else:
            mask = h_sampling_mask[:, None]
            alpha_sample = mask * sample + (1.0 - mask) * alpha
        ctx_ = (context * alpha_sample[:, :, None]).sum(1)         # [N, D]
        return ctx_, alpha


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled block's state_dict in capgen.py's layout ([in, out] matrices, one b_att)."""
    return {
        "Wc_att": state["encoder_att.weight"].t(),
        "b_att": state["encoder_att.bias"] + state["decoder_att.bias"],
        "Wd_att": state["decoder_att.weight"].t(),
        "U_att": state["full_att_weight"][:, None],
        "c_tt": state["full_att_bias"].reshape(1),
    }
