"""SCA-CNN reference: channel-wise then spatial attention (C-S), one decoding step.

Paper: Chen et al., "SCA-CNN: Spatial and Channel-wise Attention in Convolutional Networks
for Image Captioning", CVPR 2017, eqs (4)-(5) (spatial) and (7)-(8) (channel), C-S order
(eq. 3 with beta first). Survey: Guo et al., section 3.5.12, eqs (129)-(133).
Written from the paper's equations (the authors' Theano code was not followed), in the
paper's matrix layout: V is C x m with m = H*W positions.

    v = mean_m(V)                                   [C]
    b = tanh((W_c (x) v + b_c) (+) W_hc h)          [k, C]   (x) outer product, (+) add column-wise
    beta = softmax_C(w_i' b)                        [C]
    V' = V * beta
    a = tanh((W_s V' + b_s) (+) W_hs h)             [k, m]
    alpha = softmax_m(w_i a)                        [m]
    Y = V' * alpha

The scalar biases b_i, b_i' are left out (they do not change a softmax). Parameter names are
the compiled ones; W_c is held as the [k, 1, 1] weight and [k] bias of a one-channel 1x1 conv.
"""

import torch
from torch import Tensor, nn


class SCACNNReference(nn.Module):
    def __init__(self, C: int, E: int, k: int = 512) -> None:
        super().__init__()
        self.W_c = nn.Conv1d(1, k, 1)                  # weight [k, 1, 1] = W_c, bias = b_c
        self.W_hc = nn.Linear(E, k, bias=False)
        self.w_c_out = nn.Parameter(torch.zeros(k))    # w_i'
        self.W_s = nn.Conv2d(C, k, 1)                  # W_s, b_s
        self.W_hs = nn.Linear(E, k, bias=False)
        self.w_s_out = nn.Parameter(torch.zeros(k))    # w_i

    def forward(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n, c, hh, ww = x.shape
        V = x.reshape(n, c, hh * ww)                                   # [N, C, m]
        v = V.mean(dim=2)                                              # [N, C]
        wc = self.W_c.weight.reshape(-1)                               # [k]
        outer = wc[None, :, None] * v[:, None, :] + self.W_c.bias[None, :, None]   # [N, k, C]
        b = torch.tanh(outer + self.W_hc(h)[:, :, None])
        beta = torch.softmax(torch.einsum("k,nkc->nc", self.w_c_out, b), dim=1)   # [N, C]
        Vc = V * beta[:, :, None]
        Ws_V = torch.einsum("kc,ncm->nkm", self.W_s.weight.reshape(self.W_s.out_channels, c),
                            Vc) + self.W_s.bias[None, :, None]        # [N, k, m]
        a = torch.tanh(Ws_V + self.W_hs(h)[:, :, None])
        alpha = torch.softmax(torch.einsum("k,nkm->nm", self.w_s_out, a), dim=1)  # [N, m]
        Y = Vc * alpha[:, None, :]
        return Y.reshape(n, c, hh, ww), beta, alpha.reshape(n, hh, ww)
