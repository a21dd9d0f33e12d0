"""Graph-based global reasoning unit (GloRe) reference.

Paper: Chen, Rohrbach, Yan, Yan, Feng, Kalantidis, "Graph-Based Global Reasoning Networks",
CVPR 2019. Survey: Guo et al., section 3.2.7 (prose, no equation).
Authors' code: facebookresearch/GloRe ``network/global_reasoning_unit.py`` (GCN, GloRe_Unit,
GloRe_Unit_2D), transcribed for 2-D input with normalize=False: conv_state C -> num_s and
conv_proj C -> num_n (1x1, with bias), V = x_state @ x_projᵀ over the H*W positions, the GCN
(conv1d over nodes with bias, + input, ReLU, conv1d over states without bias), reverse
projection with the same map, conv_extend num_s -> C (no bias), BatchNorm `blocker`
(eps 1e-4), y = x + blocker(conv_extend(.)).

The code ties num_s = 2 * num_mid and num_n = num_mid; this reference takes the two widths
separately, as the spec does. The compiled block holds the kernel-1 conv1ds as dense maps
([nodes, nodes], [state, state]); ``from_compiled`` adds the trailing unit dim.
"""

import torch
from torch import Tensor, nn


class GCN(nn.Module):
    def __init__(self, num_state: int, num_node: int, bias: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(num_node, num_node, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv1d(num_state, num_state, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        # (n, num_state, num_node) -> (n, num_node, num_state) -> (n, num_state, num_node)
        h = self.conv1(x.permute(0, 2, 1).contiguous()).permute(0, 2, 1)
        h = h + x
        return self.conv2(self.relu(h))


class GloReReference(nn.Module):
    def __init__(self, C: int, nodes: int = 64, state: int = 128) -> None:
        super().__init__()
        self.num_s = state
        self.num_n = nodes
        self.conv_state = nn.Conv2d(C, self.num_s, kernel_size=1)
        self.conv_proj = nn.Conv2d(C, self.num_n, kernel_size=1)
        self.gcn = GCN(num_state=self.num_s, num_node=self.num_n)
        self.conv_extend = nn.Conv2d(self.num_s, C, kernel_size=1, bias=False)
        self.blocker = nn.BatchNorm2d(C, eps=1e-04)

    def forward(self, x: Tensor) -> Tensor:
        n = x.size(0)
        x_state_reshaped = self.conv_state(x).view(n, self.num_s, -1)
        x_proj_reshaped = self.conv_proj(x).view(n, self.num_n, -1)
        x_rproj_reshaped = x_proj_reshaped
        x_n_state = torch.matmul(x_state_reshaped, x_proj_reshaped.permute(0, 2, 1))
        x_n_rel = self.gcn(x_n_state)
        x_state = torch.matmul(x_n_rel, x_rproj_reshaped)
        x_state = x_state.view(n, self.num_s, *x.size()[2:])
        return x + self.blocker(self.conv_extend(x_state))


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled GloRe unit's state_dict with the code's conv1d weight shapes."""
    unit = ("gcn.conv1.weight", "gcn.conv2.weight")              # [M, M] -> [M, M, 1]
    return {k: v[..., None] if k in unit else v for k, v in state.items()}
