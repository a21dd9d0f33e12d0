"""Asymmetric pyramid non-local block (APNB) reference.

Paper: Zhu, Xu, Bai, Huang, Bai, "Asymmetric Non-local Neural Networks for Semantic
Segmentation", ICCV 2019. Survey: Guo et al., section 3.2.7 (Table 4).
Code: MendelXu/ANN ``models/seg/utils/apnb.py`` (PSPModule, _SelfAttentionBlock,
SelfAttentionBlock2D, APNB), transcribed with ModuleHelper.BNReLU = Sequential(BatchNorm2d,
ReLU) (norm_type "batchnorm"), sizes [1] (scale 1, so the max-pool is never used) and
out_channels = in_channels, as models/seg/nets/annn.py builds it. Dropout2d is kept (the
code's 0.05); the tests compare in eval mode, where it is the identity, and in train mode
with p = 0 (the compiled block has no dropout).

f_query is f_key (one module registered under two names), so its state_dict lists the same
tensors twice; `from_compiled` fills both names from the compiled f_key.
"""

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812 - the code's alias


def BNReLU(num_features: int) -> nn.Sequential:  # noqa: N802 - the code's name
    return nn.Sequential(nn.BatchNorm2d(num_features), nn.ReLU())


class PSPModule(nn.Module):
    def __init__(self, sizes=(1, 3, 6, 8)) -> None:
        super().__init__()
        self.stages = nn.ModuleList([nn.AdaptiveAvgPool2d(output_size=(s, s)) for s in sizes])

    def forward(self, feats: Tensor) -> Tensor:
        n, c, _, _ = feats.size()
        priors = [stage(feats).view(n, c, -1) for stage in self.stages]
        return torch.cat(priors, -1)


class _SelfAttentionBlock(nn.Module):
    def __init__(self, in_channels: int, key_channels: int, value_channels: int,
                 out_channels: int | None = None, psp_size=(1, 3, 6, 8)) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels or in_channels
        self.key_channels = key_channels
        self.value_channels = value_channels
        self.f_key = nn.Sequential(
            nn.Conv2d(in_channels=self.in_channels, out_channels=self.key_channels,
                      kernel_size=1, stride=1, padding=0),
            BNReLU(self.key_channels),
        )
        self.f_query = self.f_key
        self.f_value = nn.Conv2d(in_channels=self.in_channels, out_channels=self.value_channels,
                                 kernel_size=1, stride=1, padding=0)
        self.W = nn.Conv2d(in_channels=self.value_channels, out_channels=self.out_channels,
                           kernel_size=1, stride=1, padding=0)
        self.psp = PSPModule(psp_size)
        nn.init.constant_(self.W.weight, 0)
        nn.init.constant_(self.W.bias, 0)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        batch_size = x.size(0)
        value = self.psp(self.f_value(x))
        query = self.f_query(x).view(batch_size, self.key_channels, -1)
        query = query.permute(0, 2, 1)
        key = self.f_key(x)
        value = value.permute(0, 2, 1)
        key = self.psp(key)
        sim_map = torch.matmul(query, key)
        sim_map = (self.key_channels ** -.5) * sim_map
        sim_map = F.softmax(sim_map, dim=-1)
        context = torch.matmul(sim_map, value)
        context = context.permute(0, 2, 1).contiguous()
        context = context.view(batch_size, self.value_channels, *x.size()[2:])
        context = self.W(context)
        return context, sim_map


class APNB(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, key_channels: int,
                 value_channels: int, dropout: float = 0.05, psp_size=(1, 3, 6, 8)) -> None:
        super().__init__()
        self.stages = nn.ModuleList([_SelfAttentionBlock(in_channels, key_channels,
                                                         value_channels, out_channels,
                                                         psp_size)])
        self.conv_bn_dropout = nn.Sequential(
            nn.Conv2d(2 * in_channels, out_channels, kernel_size=1, padding=0),
            BNReLU(out_channels),
            nn.Dropout2d(dropout),
        )

    def forward(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        context, sim_map = self.stages[0](feats)
        output = self.conv_bn_dropout(torch.cat([context, feats], 1))
        return output, sim_map        # sim_map: [N, HW, S]


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled block's state_dict under the code's names (f_key also as f_query)."""
    out = {}
    for k, v in state.items():
        head, rest = k.split(".", 1)
        if head == "f_key":
            rest = rest.replace("1.", "1.0.", 1) if rest.startswith("1.") else rest
            out[f"stages.0.f_key.{rest}"] = v
            out[f"stages.0.f_query.{rest}"] = v
        elif head == "f_value":
            out[f"stages.0.f_value.{rest}"] = v
        elif head == "proj":
            out[f"stages.0.W.{rest}"] = v
        else:
            assert head == "conv_bn", k
            rest = rest.replace("1.", "1.0.", 1) if rest.startswith("1.") else rest
            out[f"conv_bn_dropout.{rest}"] = v
    return out


# ---- AFNB: models/seg/utils/afnb.py (the two-input _SelfAttentionBlock and AFNB) ----
class _FusionAttentionBlock(nn.Module):
    def __init__(self, low_in_channels: int, high_in_channels: int, key_channels: int,
                 value_channels: int, out_channels: int | None = None,
                 psp_size=(1, 3, 6, 8)) -> None:
        super().__init__()
        self.in_channels = low_in_channels
        self.out_channels = out_channels or high_in_channels
        self.key_channels = key_channels
        self.value_channels = value_channels
        self.f_key = nn.Sequential(
            nn.Conv2d(in_channels=self.in_channels, out_channels=self.key_channels,
                      kernel_size=1, stride=1, padding=0),
            BNReLU(self.key_channels),
        )
        self.f_query = nn.Sequential(
            nn.Conv2d(in_channels=high_in_channels, out_channels=self.key_channels,
                      kernel_size=1, stride=1, padding=0),
            BNReLU(self.key_channels),
        )
        self.f_value = nn.Conv2d(in_channels=self.in_channels, out_channels=self.value_channels,
                                 kernel_size=1, stride=1, padding=0)
        self.W = nn.Conv2d(in_channels=self.value_channels, out_channels=self.out_channels,
                           kernel_size=1, stride=1, padding=0)
        self.psp = PSPModule(psp_size)
        nn.init.constant_(self.W.weight, 0)
        nn.init.constant_(self.W.bias, 0)

    def forward(self, low_feats: Tensor, high_feats: Tensor) -> tuple[Tensor, Tensor]:
        batch_size = high_feats.size(0)
        value = self.psp(self.f_value(low_feats))
        query = self.f_query(high_feats).view(batch_size, self.key_channels, -1)
        query = query.permute(0, 2, 1)
        key = self.f_key(low_feats)
        value = value.permute(0, 2, 1)
        key = self.psp(key)
        sim_map = torch.matmul(query, key)
        sim_map = (self.key_channels ** -.5) * sim_map
        sim_map = F.softmax(sim_map, dim=-1)
        context = torch.matmul(sim_map, value)
        context = context.permute(0, 2, 1).contiguous()
        context = context.view(batch_size, self.value_channels, *high_feats.size()[2:])
        context = self.W(context)
        return context, sim_map


class AFNB(nn.Module):
    def __init__(self, low_in_channels: int, high_in_channels: int, out_channels: int,
                 key_channels: int, value_channels: int, dropout: float = 0.05,
                 psp_size=(1, 3, 6, 8)) -> None:
        super().__init__()
        self.stages = nn.ModuleList([_FusionAttentionBlock(
            low_in_channels, high_in_channels, key_channels, value_channels, out_channels,
            psp_size)])
        self.conv_bn_dropout = nn.Sequential(
            nn.Conv2d(out_channels + high_in_channels, out_channels, kernel_size=1, padding=0),
            nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout),
        )

    def forward(self, low_feats: Tensor, high_feats: Tensor) -> tuple[Tensor, Tensor]:
        context, sim_map = self.stages[0](low_feats, high_feats)
        output = self.conv_bn_dropout(torch.cat([context, high_feats], 1))
        return output, sim_map


def from_compiled_afnb(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled AFNB's state_dict under the code's names."""
    out = {}
    for k, v in state.items():
        head, rest = k.split(".", 1)
        if head in ("f_key", "f_query"):
            rest = rest.replace("1.", "1.0.", 1) if rest.startswith("1.") else rest
            out[f"stages.0.{head}.{rest}"] = v
        elif head == "f_value":
            out[f"stages.0.f_value.{rest}"] = v
        elif head == "proj":
            out[f"stages.0.W.{rest}"] = v
        else:
            assert head == "conv_bn", k
            out[f"conv_bn_dropout.{rest}"] = v
    return out
