"""Compile-time constants: tensors whose values are fixed when the block is compiled.

A constant takes no tensor input; its dims are named by its arguments and must have sizes at
compile time (they are pinned from the block's example or hyperparameters). Its values live in a
buffer, never a learnable parameter: torch computes them in `reset_parameters`, ONNX stores
them as an initializer (from the state_dict) and the NumPy reference reads them from the
parameter dict like any other buffer.
"""

from __future__ import annotations

import math

from attncc.dims import TensorType
from attncc.ops.base import (
    Cost,
    DimArg,
    DimsArg,
    IntArg,
    Op,
    OpError,
    ParamSpec,
    Sample,
    Signature,
    register,
)

# FcaNet's frequency tables (cfzd/FcaNet, model/layer.py, get_freq_indices): the 32 (u, v)
# frequencies of a 7 x 7 DCT in the order of each selection; 'topN' takes the first N.
FREQ_TABLES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "top": ((0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2, 4, 6, 3, 5, 5, 2, 6, 5, 5, 3, 3, 4,
             2, 2, 6, 1),
            (0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2, 6, 3, 3, 3, 5, 1, 1, 2, 4, 2, 1, 1,
             3, 0, 5, 3)),
    "low": ((0, 0, 1, 1, 0, 2, 2, 1, 2, 0, 3, 4, 0, 1, 3, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 6,
             1, 2, 3, 4),
            (0, 1, 0, 1, 2, 0, 1, 2, 2, 3, 0, 0, 4, 3, 1, 5, 4, 3, 2, 1, 0, 6, 5, 4, 3, 2, 1, 0,
             6, 5, 4, 3)),
    "bot": ((6, 1, 3, 3, 2, 4, 1, 2, 4, 4, 5, 1, 4, 6, 2, 5, 6, 1, 6, 2, 2, 4, 3, 3, 5, 5, 6, 2,
             5, 5, 3, 6),
            (6, 4, 4, 6, 6, 3, 1, 4, 4, 5, 6, 5, 2, 2, 5, 1, 4, 3, 5, 0, 3, 1, 1, 2, 4, 2, 1, 1,
             5, 3, 3, 3)),
}
SELECTIONS = ("top", "low", "bot")  # `select` = 0, 1, 2


def dct_frequencies(freqs: int, select: int, h: int, w: int) -> tuple[list[int], list[int]]:
    """FcaNet's (u, v) frequency indices, scaled to an h x w tile by h // 7 and w // 7."""
    xs, ys = FREQ_TABLES[SELECTIONS[select]]
    return [u * (h // 7) for u in xs[:freqs]], [v * (w // 7) for v in ys[:freqs]]


def dct2d_filter(channels: int, h: int, w: int, mapper_x, mapper_y) -> list:
    """The [channels, h, w] filter as nested Python floats (float64), computed exactly as
    FcaNet's `get_dct_filter`: channel group i (channels // len(mapper_x) channels) holds the
    basis B_{u_i, v_i}(x, y) = b(x, u_i, h) * b(y, v_i, w)."""

    def b(pos: int, freq: float, n: int) -> float:
        r = math.cos(math.pi * freq * (pos + 0.5) / n) / math.sqrt(n)
        return r if freq == 0 else r * math.sqrt(2)

    part = channels // len(mapper_x)
    return [[[b(i, u, h) * b(j, v, w) for j in range(w)] for i in range(h)]
            for u, v in zip(mapper_x, mapper_y, strict=True) for _ in range(part)]


def dct_source(mx: list[int], my: list[int], c: int, h: int, w: int) -> str:
    """Torch source of the C x H x W basis: the (u, v) filter repeated over its channel group.

    The generated module computes it in `reset_parameters`, so a standalone file carries three
    lines of arithmetic rather than C·H·W numbers.
    """
    uv = tuple(zip(mx, my, strict=True))
    b = "(math.cos(math.pi * {f} * ({p} + 0.5) / {n}) / math.sqrt({n}) * " \
        "(math.sqrt(2) if {f} else 1.0))"
    val = f"{b.format(f='u', p='i', n=h)} * {b.format(f='v', p='j', n=w)}"
    return (f"torch.tensor([[[{val} for j in range({w})] for i in range({h})] "
            f"for u, v in {uv!r} for _ in range({c // len(uv)})])")


class ConstantBuffer(Op):
    """An op whose value is its one buffer, `weight`, computed at compile time (its `params`);
    every backend hands the buffer on as it is: a torch buffer, an ONNX initializer."""

    def numpy(self, weight):
        return weight

    def torch(self, e, weight):
        return weight

    def onnx(self, e, weight):
        return weight

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(flops=0, bytes_moved=4 * math.prod(out_shape))


@register
class Dct2d(ConstantBuffer):
    """dct2d(channel: dim, over: dims, freqs: int = 16, select: int = 0) -> [channel, over].

    FcaNet's fixed multi-spectral 2-D DCT basis (Qin et al., ICCV 2021; cfzd/FcaNet
    `MultiSpectralDCTLayer.get_dct_filter`), a compile-time constant with no tensor input.
    `over` names the two tile dims (H W); `channel` is split into `freqs` equal groups, group i
    holding the basis of the i-th frequency of FcaNet's table `select` (0: 'top', 1: 'low',
    2: 'bot'; `freqs=16, select=0` is 'top16'), with indices scaled by H // 7 and W // 7 as the
    official code does. All three sizes are fixed at compile time, so a block using it accepts
    only maps of that size. The values sit in a buffer `weight` (not learnable).
    """

    name = "dct2d"
    signature = Signature(
        tensors=(),
        attrs={
            "channel": DimArg(required=True, doc="the channel dim split among the frequencies"),
            "over": DimsArg(required=True, doc="the two tile dims, e.g. H W"),
            "freqs": IntArg(default=16, min=1, max=32, doc="number of frequencies"),
            "select": IntArg(default=0, min=0, max=2, doc="0: top, 1: low, 2: bot"),
        },
    )
    traits = frozenset({"has_params"})

    def _sizes(self, ctx, attrs) -> tuple[int, int, int]:
        over = attrs["over"]
        if len(over) != 2 or len(set(over)) != 2:
            raise OpError(f"dct2d needs two tile dims, e.g. `over=H W`, got `{' '.join(over)}`",
                          arg="over")
        if attrs["channel"] in over:
            raise OpError(f"dct2d's channel `{attrs['channel']}` is also a tile dim", arg="channel")
        c = ctx.require_size(attrs["channel"], "dct2d's basis")
        h, w = (ctx.require_size(d, "dct2d's basis (FcaNet's tile is fixed-size)") for d in over)
        if c % attrs["freqs"]:
            raise OpError(f"dct2d splits `{attrs['channel']}` = {c} into {attrs['freqs']} equal "
                          f"frequency groups, but {c} is not a multiple of {attrs['freqs']}",
                          arg="freqs")
        return c, h, w

    def infer(self, ctx, ins, attrs):
        self._sizes(ctx, attrs)
        return TensorType((attrs["channel"], *attrs["over"]))

    def params(self, ctx, ins, attrs):
        c, h, w = self._sizes(ctx, attrs)
        mx, my = dct_frequencies(attrs["freqs"], attrs["select"], h, w)
        return {"weight": ParamSpec((c, h, w), "source", buffer=True,
                                    source=dct_source(mx, my, c, h, w))}

    def samples(self):
        return [
            Sample(inputs=(), attrs={"channel": "C", "over": ("H", "W"), "freqs": 2},
                   sizes={"H": 14, "W": 9}),
            Sample(inputs=(), attrs={"channel": "D", "over": ("Y", "X"), "freqs": 4,
                                     "select": 2}, sizes={"D": 8, "Y": 7, "X": 21}),
            Sample(inputs=(), attrs={"channel": "C", "over": ("W", "H"), "freqs": 3,
                                     "select": 1}),
        ]
