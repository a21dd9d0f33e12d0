"""ResNet and ResNeXt with attention blocks, laid out as torchvision's (its weights load).

Module names, shapes and init follow torchvision.models.resnet (v1.5: the stride of a
downsampling bottleneck is in its 3×3 conv); `stride_in_1x1=True` gives the original Caffe
ResNet (stride in the first 1×1 conv), on which the SENet, CBAM and BAM papers count FLOPs.
The two have the same parameters and state_dict keys.

Example:
    >>> from attncc import nets
    >>> m = nets.resnet50(attention="se")                  # SE after bn3 of every bottleneck
    >>> sum(p.numel() for p in m.parameters())
    28088024
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from attncc.nets._attention import Factory, Placement, conv_out, resolve


def conv3x3(cin: int, cout: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class _Sites:
    """What one residual block may ask for: a block at one of its sites, or None."""

    def __init__(self, make: Factory | None, place: Placement, stage: int, index: int,
                 n_blocks: int) -> None:
        self.make, self.place = make, place
        self.stage, self.index, self.n_blocks = stage, index, n_blocks

    def get(self, where: str, c: int, h: int, w: int) -> nn.Module | None:
        if self.make is None or not self.place.wants(where, self.stage, self.index,
                                                      self.n_blocks):
            return None
        return self.make(c, h, w)


class _Block(nn.Module):
    """Shared attention plumbing of BasicBlock and Bottleneck."""

    def _add_attention(self, sites: _Sites | None, convs: list[tuple[str, int, int]],
                       width: int, out_c: int, size_in: tuple[int, int],
                       size_3x3: tuple[int, int], size_out: tuple[int, int],
                       has_downsample: bool) -> None:
        # every site starts empty; the ones the placement wants get a module
        self.attn = self.attn_3x3 = self.attn_out = self.attn_downsample = self.sk = None
        self.attn_conv1 = self.attn_conv2 = self.attn_conv3 = None
        if sites is None:
            return
        for name, c, at in convs:  # before each conv (GCT), at that conv's input size
            h, w = size_in if at == 0 else size_3x3 if at == 2 else self._size_mid
            setattr(self, f"attn_{name}", sites.get("conv", c, h, w))
        if has_downsample:
            self.attn_downsample = sites.get("conv", convs[0][1], *size_in)
        self.attn_3x3 = sites.get("after_3x3", width, *size_3x3)
        if self.conv2.stride == (1, 1):
            self.sk = sites.get("replace_3x3", width, *size_3x3)
            if self.sk is not None:
                self.conv2 = self.bn2 = None  # the block brings its own convs and BNs
        self.attn = sites.get("branch", out_c, *size_out)
        self.attn_out = sites.get("block", out_c, *size_out)

    def _mid(self, out: Tensor) -> Tensor:
        """The 3×3 conv (or the block replacing it), its BN, and SimAM's site between them."""
        if self.sk is not None:
            return self.sk(out)
        out = self.conv2(out)
        if self.attn_3x3 is not None:
            out = self.attn_3x3(out)
        return self.bn2(out)

    def _finish(self, x: Tensor, out: Tensor) -> Tensor:
        if self.attn is not None:
            out = self.attn(out)
        if self.downsample is not None:
            if self.attn_downsample is not None:
                x = self.attn_downsample(x)
            x = self.downsample(x)
        out = self.relu(out + x)
        return self.attn_out(out) if self.attn_out is not None else out

    @staticmethod
    def _pre(m: nn.Module | None, x: Tensor) -> Tensor:
        return m(x) if m is not None else x


class BasicBlock(_Block):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, groups: int = 1, base_width: int = 64,
                 stride_in_1x1: bool = False, sites: _Sites | None = None,
                 size: tuple[int, int] = (56, 56)) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride
        out = tuple(conv_out(s, 3, stride, 1) for s in size)
        self._size_mid = out
        self._add_attention(sites, [("conv1", inplanes, 0), ("conv2", planes, 2)], planes,
                            planes, size, out, out, downsample is not None)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(self._pre(self.attn_conv1, x))))
        out = self._mid(self._pre(self.attn_conv2, out))
        return self._finish(x, out)


class Bottleneck(_Block):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, groups: int = 1, base_width: int = 64,
                 stride_in_1x1: bool = False, sites: _Sites | None = None,
                 size: tuple[int, int] = (56, 56)) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(inplanes, width, s1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, s3, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        mid = tuple(conv_out(s, 1, s1, 0) for s in size)
        out = tuple(conv_out(s, 3, s3, 1) for s in mid)
        self._size_mid = mid
        # conv2's input is at the 1×1's output size (`mid`); conv3's at the 3×3's (`out`)
        self._add_attention(sites, [("conv1", inplanes, 0), ("conv2", width, 1),
                                    ("conv3", width, 2)],
                            width, planes * self.expansion, size, out, out,
                            downsample is not None)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(self._pre(self.attn_conv1, x))))
        out = self.relu(self._mid(self._pre(self.attn_conv2, out)))
        out = self.bn3(self.conv3(self._pre(self.attn_conv3, out)))
        return self._finish(x, out)


class ResNet(nn.Module):
    """torchvision's ResNet with attention sites (see attncc.nets._attention)."""

    def __init__(self, block: type[_Block], layers: list[int], num_classes: int = 1000,
                 groups: int = 1, width_per_group: int = 64, zero_init_residual: bool = False,
                 stride_in_1x1: bool = False, attention: Any = None,
                 attention_args: Mapping[str, Any] | None = None,
                 placement: str | Placement | None = None,
                 input_size: int | tuple[int, int] = 224) -> None:
        super().__init__()
        make, place = resolve(attention, attention_args, placement, "resnet")
        self.placement = place if make is not None else None
        self.inplanes = 64
        self.groups, self.base_width = groups, width_per_group
        self.stride_in_1x1 = stride_in_1x1
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        self.attn_conv1 = make(3, *size) if make and place.where == "conv" else None
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        size = tuple(conv_out(conv_out(s, 7, 2, 3), 3, 2, 1) for s in size)
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            stage, size = self._make_layer(block, planes, n, 1 if i == 0 else 2, i + 1, size,
                                           make, place)
            setattr(self, f"layer{i + 1}", stage)
        for i in range(1, 5):  # after a whole stage (BAM), on the stage's output
            c = (64, 128, 256, 512)[i - 1] * block.expansion
            want = make is not None and place.wants("stage", i, 0, 1)
            setattr(self, f"attn_layer{i}", make(c, *self._sizes[i]) if want else None)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        # torchvision's init, on the backbone's own layers only: the attention blocks keep
        # theirs (zero-initialised residual branches, unit gates)
        for m in backbone_modules(self):
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck) and m.bn3 is not None:
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock) and m.bn2 is not None:
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block: type[_Block], planes: int, blocks: int, stride: int,
                    stage: int, size: tuple[int, int], make: Factory | None,
                    place: Placement) -> tuple[nn.Sequential, tuple[int, int]]:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = []
        for i in range(blocks):
            sites = _Sites(make, place, stage, i, blocks) if make is not None else None
            layers.append(block(self.inplanes, planes, stride if i == 0 else 1,
                                downsample if i == 0 else None, self.groups, self.base_width,
                                self.stride_in_1x1, sites, size))
            if i == 0:
                size = tuple(conv_out(s, 1, stride, 0) for s in size)
            self.inplanes = planes * block.expansion
        self._sizes = {**getattr(self, "_sizes", {}), stage: size}
        return nn.Sequential(*layers), size

    def forward_features(self, x: Tensor) -> Tensor:
        if self.attn_conv1 is not None:
            x = self.attn_conv1(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            a = getattr(self, f"attn_layer{i}")
            if a is not None:
                x = a(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.forward_features(x))
        return self.fc(torch.flatten(x, 1))


def is_attention(name: str) -> bool:
    """Whether a submodule name is one of the attention sites (`layer1.0.attn`, `sk`)."""
    leaf = name.rsplit(".", 1)[-1]
    return leaf.startswith("attn") or leaf == "sk"


def backbone_modules(model: nn.Module) -> list[nn.Module]:
    """The model's modules outside its attention blocks."""
    inside: set[int] = set()
    for name, m in model.named_modules():
        if is_attention(name):
            inside.update(id(s) for s in m.modules())
    return [m for m in model.modules() if id(m) not in inside]


def _resnet(block: type[_Block], layers: list[int], **kw: Any) -> ResNet:
    return ResNet(block, layers, **kw)


_DOC = """{title}, as torchvision's `{name}` ({params} parameters without attention).

    Args:
        attention: a bundled spec name (`"se"`), a path to an `.attn` file, or a factory
            `f(C, **attention_args) -> nn.Module`; None for the plain network.
        attention_args: the block's hyperparameters (`{{"r": 8}}`); C is set per position.
        placement: a site (`"branch"`, `"conv"`, `"after_3x3"`, `"replace_3x3"`, `"stage"`,
            `"block"`) or a `Placement`; default: the placement of the spec's paper.
        stride_in_1x1: the original ResNet's stride in the first 1×1 conv (bottlenecks).
        input_size: the input's H (and W) for blocks whose size is fixed (FcaNet).
        num_classes, zero_init_residual, ...: as torchvision's.
    """


def resnet18(*, attention: Any = None, attention_args: Mapping[str, Any] | None = None,
             placement: str | Placement | None = None, **kw: Any) -> ResNet:
    return _resnet(BasicBlock, [2, 2, 2, 2], attention=attention,
                   attention_args=attention_args, placement=placement, **kw)


def resnet34(*, attention: Any = None, attention_args: Mapping[str, Any] | None = None,
             placement: str | Placement | None = None, **kw: Any) -> ResNet:
    return _resnet(BasicBlock, [3, 4, 6, 3], attention=attention,
                   attention_args=attention_args, placement=placement, **kw)


def resnet50(*, attention: Any = None, attention_args: Mapping[str, Any] | None = None,
             placement: str | Placement | None = None, **kw: Any) -> ResNet:
    return _resnet(Bottleneck, [3, 4, 6, 3], attention=attention,
                   attention_args=attention_args, placement=placement, **kw)


def resnet101(*, attention: Any = None, attention_args: Mapping[str, Any] | None = None,
              placement: str | Placement | None = None, **kw: Any) -> ResNet:
    return _resnet(Bottleneck, [3, 4, 23, 3], attention=attention,
                   attention_args=attention_args, placement=placement, **kw)


def resnext50_32x4d(*, attention: Any = None, attention_args: Mapping[str, Any] | None = None,
                    placement: str | Placement | None = None, **kw: Any) -> ResNet:
    return _resnet(Bottleneck, [3, 4, 6, 3], groups=32, width_per_group=4,
                   attention=attention, attention_args=attention_args, placement=placement,
                   **kw)


for _f, _title, _params in ((resnet18, "ResNet-18", "11,689,512"),
                            (resnet34, "ResNet-34", "21,797,672"),
                            (resnet50, "ResNet-50", "25,557,032"),
                            (resnet101, "ResNet-101", "44,549,160"),
                            (resnext50_32x4d, "ResNeXt-50 (32×4d)", "25,028,904")):
    _f.__doc__ = _DOC.format(title=_title, name=_f.__name__, params=_params)

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnext50_32x4d"]
