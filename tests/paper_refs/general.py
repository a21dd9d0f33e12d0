"""General attention block reference (survey section 4.1), image and video variants.

Survey: Guo et al., section 4.1 names the idea only (branch attention choosing among channel,
spatial and temporal attention); specs/general.attn and specs/general_video.attn fix the
design. This module re-writes that design in plain torch from its parts' own code:
SE (hujie-frank/SENet: FC with biases), CBAM's SpatialGate (Jongchan/attention-module
MODELS/cbam.py: ChannelPool = cat(max, mean) over channels, BasicConv(2, 1, k, padding
(k - 1) // 2, relu=False) = conv without bias + BatchNorm2d(eps 1e-5, momentum 0.01)),
TAM's local branch (liu-zhy/temporal-adaptive-module ops/temporal_module.py TAM.L, its last
conv mapping to one channel) and SKNet's selection (a softmax over the stacked branches per
channel, torch.softmax over a branch axis here, where the spec writes it out per branch).
"""

import torch
from torch import Tensor, nn


class SEGate(nn.Module):
    def __init__(self, channels: int, r: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // r)
        self.fc2 = nn.Linear(channels // r, channels)

    def forward(self, x: Tensor) -> Tensor:
        z = x.flatten(2).mean(2)                                    # GAP over every non-C dim
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))   # [N, C]


class SpatialGate(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, k, padding=(k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 5:                                            # video: pool over C and T
            x = x.flatten(1, 2)
        pooled = torch.cat([x.max(1, keepdim=True)[0], x.mean(1, keepdim=True)], dim=1)
        return torch.sigmoid(self.bn(self.conv(pooled)))[:, 0]     # [N, H, W]


class TemporalGate(nn.Module):
    def __init__(self, channels: int, rt: int, kt: int) -> None:
        super().__init__()
        self.L = nn.Sequential(
            nn.Conv1d(channels, channels // rt, kt, stride=1, padding=kt // 2, bias=False),
            nn.BatchNorm1d(channels // rt),
            nn.ReLU(),
            nn.Conv1d(channels // rt, 1, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.L(x.mean((3, 4)))[:, 0]                       # [N, T]


class GeneralReference(nn.Module):
    def __init__(self, C: int, r: int = 16, k: int = 7, L: int = 32, video: bool = False,
                 rt: int = 4, kt: int = 3) -> None:
        super().__init__()
        d = max(C // r, L)
        self.video = video
        self.channel = SEGate(C, r)
        self.spatial = SpatialGate(k)
        self.temporal = TemporalGate(C, rt, kt) if video else None
        self.fc = nn.Sequential(nn.Linear(C, d, bias=False), nn.BatchNorm1d(d), nn.ReLU())
        self.fcs = nn.ModuleList(nn.Linear(d, C, bias=False) for _ in range(3 if video else 2))

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        s_c = self.channel(x)
        s_s = self.spatial(x)
        shape_c = (*s_c.shape, *([1] * (x.dim() - 2)))
        feats = [x * s_c.view(shape_c)]
        if self.video:
            feats.append(x * s_s[:, None, None])
            s_t = self.temporal(x)
            feats.append(x * s_t[:, None, :, None, None])
        else:
            feats.append(x * s_s[:, None])
        u = torch.stack(feats, dim=1)                               # [N, B, C, ...]
        s = u.sum(1).flatten(2).mean(2)                             # [N, C]
        z = self.fc(s)
        a = torch.softmax(torch.stack([fc(z) for fc in self.fcs], dim=1), dim=1)   # [N, B, C]
        y = (u * a.view(*a.shape, *([1] * (x.dim() - 2)))).sum(1)
        maps = {"channel": s_c, "spatial": s_s, "a_c": a[:, 0], "a_s": a[:, 1]}
        if self.video:
            maps.update(temporal=s_t, a_t=a[:, 2])
        return y, maps


_NAMES = {
    "spatial.conv.weight": "spatial.conv.weight", "temporal.conv1.0.weight": "temporal.L.0",
    "fuse.0.weight": "fc.0.weight", "select_c.weight": "fcs.0.weight",
    "select_s.weight": "fcs.1.weight", "select_t.weight": "fcs.2.weight",
}


def from_compiled(state: dict[str, Tensor], ref: nn.Module) -> dict[str, Tensor]:
    """The compiled state_dict under the reference's names and shapes (`ref` gives shapes)."""
    want = ref.state_dict()
    out = {}
    for k, v in state.items():
        name = k
        if k.startswith("temporal.conv1.0."):
            name = k.replace("temporal.conv1.0.", "temporal.L.0.")
        elif k.startswith("temporal.conv1.1."):
            name = k.replace("temporal.conv1.1.", "temporal.L.1.")
        elif k.startswith("temporal.conv2."):
            name = k.replace("temporal.conv2.", "temporal.L.3.")
        elif k.startswith("fuse."):
            name = "fc." + k[len("fuse."):]
        elif k.startswith("select_"):
            name = f"fcs.{'cst'.index(k[len('select_')])}.weight"
        out[name] = v.reshape(want[name].shape)
    return out
