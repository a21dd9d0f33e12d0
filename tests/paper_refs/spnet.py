"""Strip pooling module (SPNet's SPBlock) reference, transcribed from the authors' code.

Paper: Hou, Zhang, Cheng, Feng, "Strip Pooling: Rethinking Spatial Pooling for Scene
Parsing", CVPR 2020. Survey: Guo et al., section 3.5.11, eqs. (125)-(128). Authors' code:
Andrew-Qibin/SPNet ``models/resnet.py`` (SPBlock; the bottleneck multiplies its output by
it): pool1 = AdaptiveAvgPool2d((None, 1)) -> conv1 (3, 1) -> bn1 -> expand; pool2 =
AdaptiveAvgPool2d((1, None)) -> conv2 (1, 3) -> bn2 -> expand; relu of the sum; conv3 1x1
with bias; sigmoid; y = x * s. The compiled block runs the strip convs as 1-D convs
([C, C, 3] weights); ``from_compiled`` adds the unit kernel dim ([C, C, 3, 1], [C, C, 1, 3]).
"""

from torch import Tensor, nn


class SPNetReference(nn.Module):
    def __init__(self, C: int) -> None:
        super().__init__()
        midplanes = C
        self.conv1 = nn.Conv2d(C, midplanes, kernel_size=(3, 1), padding=(1, 0), bias=False)
        self.bn1 = nn.BatchNorm2d(midplanes)
        self.conv2 = nn.Conv2d(C, midplanes, kernel_size=(1, 3), padding=(0, 1), bias=False)
        self.bn2 = nn.BatchNorm2d(midplanes)
        self.conv3 = nn.Conv2d(midplanes, C, kernel_size=1, bias=True)
        self.pool1 = nn.AdaptiveAvgPool2d((None, 1))
        self.pool2 = nn.AdaptiveAvgPool2d((1, None))
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        _, _, h, w = x.size()
        x1 = self.bn1(self.conv1(self.pool1(x))).expand(-1, -1, h, w)
        x2 = self.bn2(self.conv2(self.pool2(x))).expand(-1, -1, h, w)
        s = self.conv3(self.relu(x1 + x2)).sigmoid()
        return x * s


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled block's state_dict with the code's 3x1 / 1x3 kernel shapes."""
    out = dict(state)
    out["conv1.weight"] = state["conv1.weight"][..., None]      # [C, C, 3, 1]
    out["conv2.weight"] = state["conv2.weight"][..., None, :]   # [C, C, 1, 3]
    return out
