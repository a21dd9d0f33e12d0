"""Context encoding module (EncNet) reference.

Paper: Zhang, Dana, Shi, Zhang, Wang, Tyagi, Agrawal, "Context Encoding for Semantic
Segmentation", CVPR 2018. Survey: Guo et al., section 3.1.7, eqs (14)-(17).
Authors' code: zhanghang1989/PyTorch-Encoding ``encoding/models/sseg/encnet.py`` (EncModule,
se_loss=False) and ``encoding/nn/encoding.py`` (Encoding), transcribed with plain torch for the
extension kernels: scaled_l2(X, C, S)[b, i, k] = S_k * sum_d (X_bid - C_kd)^2 and
aggregate(A, X, C)[b, k, :] = sum_i A_bik (X_bi - C_k). EncModule: encoding = Conv2d(C, D, 1,
no bias), BN2d, ReLU, Encoding(D, K), BN1d(K), ReLU, Mean(dim=1); fc = Linear(D, C), Sigmoid;
output relu(x + x * gamma). The code's D is its in_channels (512 in EncNet); here D may
differ from C, and ``official=False`` returns eq. (17)'s x * gamma instead.
"""

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn


class Encoding(nn.Module):
    def __init__(self, D: int, K: int) -> None:
        super().__init__()
        self.D, self.K = D, K
        self.codewords = nn.Parameter(torch.empty(K, D))
        self.scale = nn.Parameter(torch.empty(K))
        std1 = 1.0 / ((self.K * self.D) ** (1 / 2))
        self.codewords.data.uniform_(-std1, std1)
        self.scale.data.uniform_(-1, 0)

    def forward(self, X: Tensor) -> tuple[Tensor, Tensor]:
        B, D = X.size(0), self.D
        X = X.view(B, D, -1).transpose(1, 2).contiguous()              # B x HW x D
        diff = X.unsqueeze(2) - self.codewords[None, None]             # B x HW x K x D
        A = F.softmax(self.scale * diff.pow(2).sum(3), dim=2)
        E = (A.unsqueeze(3) * diff).sum(1)
        return E, A


class EncModuleReference(nn.Module):
    """Returns (y, gamma, assignment weights [N, HW, K])."""

    def __init__(self, in_channels: int, D: int, ncodes: int = 32,
                 official: bool = True) -> None:
        super().__init__()
        self.official = official
        self.encoding = nn.Sequential(
            nn.Conv2d(in_channels, D, 1, bias=False), nn.BatchNorm2d(D), nn.ReLU(inplace=True),
            Encoding(D=D, K=ncodes), nn.BatchNorm1d(ncodes), nn.ReLU(inplace=True))
        self.fc = nn.Sequential(nn.Linear(D, in_channels), nn.Sigmoid())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f = self.encoding[:3](x)
        e, a = self.encoding[3](f)
        en = self.encoding[5](self.encoding[4](e)).mean(dim=1)         # encoding.nn.Mean(1)
        b, c, _, _ = x.size()
        gamma = self.fc(en)
        y = gamma.view(b, c, 1, 1)
        out = F.relu_(x + x * y) if self.official else x * y
        return out, gamma, a


_NAMES = {"reduce.0": "encoding.0", "reduce.1": "encoding.1", "bn": "encoding.4",
          "fc": "fc.0"}


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled state_dict under the code's names (EncModule's Sequential indices)."""
    out = {}
    for k, v in state.items():
        if k in ("codewords", "scale"):
            out[f"encoding.3.{k}"] = v
            continue
        head, leaf = k.rsplit(".", 1)
        out[f"{_NAMES[head]}.{leaf}"] = v
    return out
