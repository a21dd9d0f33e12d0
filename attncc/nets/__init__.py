"""Backbones with attention blocks at their papers' places: ResNet, ResNeXt, MobileNetV2.

Written here, without torchvision, with torchvision's module names and shapes: with
`attention=None` a torchvision state_dict loads with `strict=True`, and with attention it loads
with `strict=False`, missing only the attention blocks' keys. Importing this package imports
torch; `import attncc` does not.

Example:
    >>> from attncc import nets
    >>> m = nets.resnet50(attention="cbam", attention_args={"r": 16})
    >>> m = nets.mobilenet_v2(attention="coordatt")              # after each depthwise conv
    >>> m = nets.resnet50(attention="se", placement="block")     # after each residual block
"""

from __future__ import annotations

from attncc.nets._attention import PAPER_PLACEMENTS, SITES, Placement
from attncc.nets.mobilenet import MobileNetV2, mobilenet_v2
from attncc.nets.resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnext50_32x4d,
)

NETS = {f.__name__: f for f in (resnet18, resnet34, resnet50, resnet101, resnext50_32x4d,
                                mobilenet_v2)}

__all__ = ["NETS", "PAPER_PLACEMENTS", "SITES", "BasicBlock", "Bottleneck", "MobileNetV2",
           "Placement", "ResNet", "mobilenet_v2", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnext50_32x4d"]
