"""Dual attention (DANet) reference: the position and channel attention modules, summed.

Paper: Fu, Liu, Tian, Li, Bao, Fang, Lu, "Dual Attention Network for Scene Segmentation",
CVPR 2019. Survey: Guo et al., section 3.5.8, eqs (109)-(112).
Authors' code: junfu1115/DANet ``encoding/nn/da_att.py`` (PAM_Module, CAM_Module), transcribed;
``encoding/models/sseg/danet.py`` (DANetHead) holds them as ``sa`` and ``sc``.

Differences from the survey, following the code: Q, K are 1x1 convs C -> C//8 and V C -> C,
with biases; each module's aggregate is scaled by a zero-initialised scalar gamma before the
residual add; the channel module softmaxes ``max(energy) - energy``, not ``energy``.
Not here: DANetHead's 3x3 conv + BN + ReLU before and after each module, and its sum of the
two convolved outputs; this reference sums the modules' own outputs (eq 112).
The code's gammas have shape [1]; the compiled block's are rank 0 (``from_compiled``).
"""

import torch
from torch import Tensor, nn
from torch.nn import Conv2d, Parameter, Softmax


class PAMModule(nn.Module):
    """Position attention module (the code's PAM_Module; ``r`` is its hard-coded 8)."""

    def __init__(self, in_dim: int, r: int = 8) -> None:
        super().__init__()
        self.query_conv = Conv2d(in_channels=in_dim, out_channels=in_dim // r, kernel_size=1)
        self.key_conv = Conv2d(in_channels=in_dim, out_channels=in_dim // r, kernel_size=1)
        self.value_conv = Conv2d(in_channels=in_dim, out_channels=in_dim, kernel_size=1)
        self.gamma = Parameter(torch.zeros(1))
        self.softmax = Softmax(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        m_batchsize, C, height, width = x.size()
        proj_query = self.query_conv(x).view(m_batchsize, -1, width * height).permute(0, 2, 1)
        proj_key = self.key_conv(x).view(m_batchsize, -1, width * height)
        energy = torch.bmm(proj_query, proj_key)
        attention = self.softmax(energy)
        proj_value = self.value_conv(x).view(m_batchsize, -1, width * height)
        out = torch.bmm(proj_value, attention.permute(0, 2, 1))
        out = out.view(m_batchsize, C, height, width)
        return self.gamma * out + x


class CAMModule(nn.Module):
    """Channel attention module (the code's CAM_Module)."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.gamma = Parameter(torch.zeros(1))
        self.softmax = Softmax(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        m_batchsize, C, height, width = x.size()
        proj_query = x.view(m_batchsize, C, -1)
        proj_key = x.view(m_batchsize, C, -1).permute(0, 2, 1)
        energy = torch.bmm(proj_query, proj_key)
        energy_new = torch.max(energy, -1, keepdim=True)[0].expand_as(energy) - energy
        attention = self.softmax(energy_new)
        proj_value = x.view(m_batchsize, C, -1)
        out = torch.bmm(attention, proj_value)
        out = out.view(m_batchsize, C, height, width)
        return self.gamma * out + x


class DANetReference(nn.Module):
    def __init__(self, C: int, r: int = 8) -> None:
        super().__init__()
        self.sa = PAMModule(C, r)
        self.sc = CAMModule(C)

    def forward(self, x: Tensor) -> Tensor:
        return self.sa(x) + self.sc(x)


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled block's state_dict with the code's [1]-shaped gammas."""
    return {k: v.reshape(1) if k.endswith("gamma") else v for k, v in state.items()}
