"""MobileNetV2 with attention blocks, laid out as torchvision's (its weights load).

Module names, shapes and init follow torchvision.models.mobilenet_v2 (width 1.0, channels
rounded to multiples of 8). Attention sites per inverted residual block: `dw` (after the
depthwise 3×3 conv with its BN and ReLU6; coordinate attention's place) and `branch` (after
the projection BN, before the addition where there is one; ECA's code puts it there in every
block). The backbone's Sequentials keep their indices: the blocks sit beside them (`attn`,
`attn_dw`), so torchvision's keys are unchanged.

Example:
    >>> from attncc import nets
    >>> m = nets.mobilenet_v2(attention="coordatt")
    >>> sum(p.numel() for p in m.parameters()) > 3_504_872
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from attncc.diagnostics import HyperparameterError
from attncc.nets._attention import Factory, Placement, conv_out, resolve
from attncc.nets.resnet import backbone_modules


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's channel rounding: to a multiple of `divisor`, never below 90% of v."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class Conv2dNormActivation(nn.Sequential):
    """conv (no bias), BN, ReLU6: torchvision's `Conv2dNormActivation` keys (0, 1)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size, stride, (kernel_size - 1) // 2, groups=groups,
                      bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )
        self.out_channels = cout


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int,
                 make: Factory | None = None, place: Placement | None = None,
                 where: tuple[int, int, int] = (1, 0, 1), size: tuple[int, int] = (112, 112),
                 ) -> None:
        super().__init__()
        self.stride = stride
        hidden = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden, kernel_size=1))
        layers += [
            Conv2dNormActivation(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup
        self._is_cn = stride > 1
        self._dw = len(layers) - 3  # index of the depthwise conv's Conv2dNormActivation
        out = tuple(conv_out(s, 3, stride, 1) for s in size)
        stage, index, n = where

        def site(kind: str, c: int) -> nn.Module | None:
            if make is None or place is None or not place.wants(kind, stage, index, n):
                return None
            return make(c, *out)

        self.attn_dw = site("dw", hidden)
        self.attn = site("branch", oup)
        self.attn_out = site("block", oup)

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for i, layer in enumerate(self.conv):
            out = layer(out)
            if i == self._dw and self.attn_dw is not None:
                out = self.attn_dw(out)
        if self.attn is not None:
            out = self.attn(out)
        if self.use_res_connect:
            out = x + out
        return self.attn_out(out) if self.attn_out is not None else out


_SUPPORTED = ("branch", "dw", "block")


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 (width 1.0) with attention sites. Stages are the seven rows
    (t, c, n, s) of the paper's Table 2, numbered 1-7."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, attention: Any = None,
                 attention_args: Mapping[str, Any] | None = None,
                 placement: str | Placement | None = None,
                 input_size: int | tuple[int, int] = 224) -> None:
        super().__init__()
        make, place = resolve(attention, attention_args, placement, "mobilenet")
        if place.where == "after_3x3":
            place = Placement("dw", place.stages, place.blocks)  # the depthwise 3×3
        if make is not None and place.where not in _SUPPORTED:
            raise HyperparameterError(
                f"placement `{place.where}` is not offered in MobileNetV2",
                hints=("placements here: " + ", ".join(_SUPPORTED),))
        self.placement = place if make is not None else None
        setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                   [6, 160, 3, 2], [6, 320, 1, 1]]
        input_channel = _make_divisible(32.0)
        self.last_channel = _make_divisible(1280.0)
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        features: list[nn.Module] = [Conv2dNormActivation(3, input_channel, stride=2)]
        size = tuple(conv_out(s, 3, 2, 1) for s in size)
        for stage, (t, c, n, s) in enumerate(setting, start=1):
            output_channel = _make_divisible(c)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(InvertedResidual(input_channel, output_channel, stride, t,
                                                 make, place, (stage, i, n), size))
                size = tuple(conv_out(v, 3, stride, 1) for v in size)
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout),
                                        nn.Linear(self.last_channel, num_classes))
        for m in backbone_modules(self):
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2(*, attention: Any = None, attention_args: Mapping[str, Any] | None = None,
                 placement: str | Placement | None = None, **kw: Any) -> MobileNetV2:
    """MobileNetV2, as torchvision's `mobilenet_v2` (3,504,872 parameters without attention).

    Args:
        attention: a bundled spec name (`"coordatt"`), a path to an `.attn` file, or a factory
            `f(C, **attention_args) -> nn.Module`; None for the plain network.
        attention_args: the block's hyperparameters; C is set per position.
        placement: `"dw"`, `"branch"`, `"block"` or a `Placement` (stages 1-7); default: the
            spec's paper placement (`dw` for coordinate attention, `branch` for SE, ECA, ...).
        input_size: the input's H (and W) for blocks whose size is fixed (FcaNet).
    """
    return MobileNetV2(attention=attention, attention_args=attention_args,
                       placement=placement, **kw)
