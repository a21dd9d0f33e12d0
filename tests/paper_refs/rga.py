"""Relation-aware global attention (RGA-S then RGA-C) reference, from the authors' code.

Paper: Zhang, Lan, Zeng, Jin, Chen, "Relation-Aware Global Attention for Person
Re-identification", CVPR 2020. Survey: Guo et al., section 3.5.9, eqs (113)-(118).
Authors' code: microsoft/Relation-Aware-Global-Attention-Networks
``reid/models/models_utils/rga_modules.py`` (RGA_Module with use_spatial and use_channel),
transcribed (tabs to spaces, its print dropped, ``F.sigmoid`` as ``torch.sigmoid``); forward
also returns the two attention maps. The compiled channel branch's 1-D conv weights
[o, i, 1] are the code's [o, i, 1, 1] (``from_compiled``), and its layers sit under the
compiled block's call names `xs.` (spatial) and `y.` (channel).
"""

import torch
from torch import Tensor, nn


def _embed(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


def _attend(c: int, down_ratio: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c, c // down_ratio, kernel_size=1, stride=1, padding=0, bias=False),
        nn.BatchNorm2d(c // down_ratio), nn.ReLU(),
        nn.Conv2d(c // down_ratio, 1, kernel_size=1, stride=1, padding=0, bias=False),
        nn.BatchNorm2d(1))


class RGAModule(nn.Module):
    def __init__(self, in_channel: int, in_spatial: int, cha_ratio: int = 8,
                 spa_ratio: int = 8, down_ratio: int = 8) -> None:
        super().__init__()
        self.inter_channel = in_channel // cha_ratio
        self.inter_spatial = in_spatial // spa_ratio
        self.theta_spatial = _embed(in_channel, self.inter_channel)
        self.phi_spatial = _embed(in_channel, self.inter_channel)
        self.theta_channel = _embed(in_spatial, self.inter_spatial)
        self.phi_channel = _embed(in_spatial, self.inter_spatial)
        self.gx_spatial = _embed(in_channel, self.inter_channel)
        self.gx_channel = _embed(in_spatial, self.inter_spatial)
        self.gg_spatial = _embed(in_spatial * 2, self.inter_spatial)
        self.gg_channel = _embed(in_channel * 2, self.inter_channel)
        self.W_spatial = _attend(1 + self.inter_spatial, down_ratio)
        self.W_channel = _attend(1 + self.inter_channel, down_ratio)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, c, h, w = x.size()
        # spatial attention
        theta_xs = self.theta_spatial(x)
        phi_xs = self.phi_spatial(x)
        theta_xs = theta_xs.view(b, self.inter_channel, -1).permute(0, 2, 1)
        phi_xs = phi_xs.view(b, self.inter_channel, -1)
        gs = torch.matmul(theta_xs, phi_xs)
        gs_in = gs.permute(0, 2, 1).view(b, h * w, h, w)
        gs_out = gs.view(b, h * w, h, w)
        gs_joint = self.gg_spatial(torch.cat((gs_in, gs_out), 1))
        g_xs = torch.mean(self.gx_spatial(x), dim=1, keepdim=True)
        ys = torch.cat((g_xs, gs_joint), 1)
        a_s = torch.sigmoid(self.W_spatial(ys))
        x = a_s.expand_as(x) * x
        # channel attention
        xc = x.view(b, c, -1).permute(0, 2, 1).unsqueeze(-1)
        theta_xc = self.theta_channel(xc).squeeze(-1).permute(0, 2, 1)
        phi_xc = self.phi_channel(xc).squeeze(-1)
        gc = torch.matmul(theta_xc, phi_xc)
        gc_in = gc.permute(0, 2, 1).unsqueeze(-1)
        gc_out = gc.unsqueeze(-1)
        gc_joint = self.gg_channel(torch.cat((gc_in, gc_out), 1))
        g_xc = torch.mean(self.gx_channel(xc), dim=1, keepdim=True)
        yc = torch.cat((g_xc, gc_joint), 1)
        a_c = torch.sigmoid(self.W_channel(yc).transpose(1, 2))
        return a_c * x, a_s, a_c


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled state_dict under the code's names, conv weights 4-D."""
    out = {}
    for key, v in state.items():
        name = key.split(".", 1)[1]  # drop the call name `xs.` / `y.`
        out[name] = v.unsqueeze(-1) if v.dim() == 3 else v
    return out
