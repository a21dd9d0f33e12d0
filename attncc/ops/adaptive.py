"""Adaptive average pooling: named dims pooled to a fixed number of bins whatever their size.

The pyramid pooling of ANN's APNB (survey catalogue row 19; PSPNet-style bins 1, 3, 6, 8) and
of the PSP family: each output bin i of a dim of run-time size n averages the input positions
floor(i n / s) .. ceil((i + 1) n / s) - 1, torch's `adaptive_avg_pool` rule (bins overlap when
s does not divide n, and repeat positions when s > n). The pooling is separable, so every
backend applies one [s, n] averaging matrix per pooled dim; ONNX builds it on the graph from
the input's shape (Range, integer Div, comparisons), so n stays dynamic in the exported model.
"""

from __future__ import annotations

import math

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    Cost,
    DimsArg,
    IntArg,
    Op,
    OpError,
    Sample,
    Signature,
    check_over,
    register,
)
from attncc.ops.layout import FrameLayout
from attncc.ops.window import rename

_LETTERS = "abcdefghijklmnopqrstuvw"


def bin_matrix(n: int, s: int) -> np.ndarray:
    """[s, n] float64: row i averages positions floor(i n / s) .. ceil((i + 1) n / s) - 1."""
    p = np.zeros((s, n))
    for i in range(s):
        lo, hi = (i * n) // s, -((-(i + 1) * n) // s)
        p[i, lo:hi] = 1.0 / (hi - lo)
    return p


@register
class AdaptiveAvgPool(Op):
    """adaptive_avg_pool(x, over: dims, size: int, to: dims) -> x with `over` pooled to `to`.

    Each of the 1 to 3 dims `over` is averaged into `size` bins, torch's
    `F.adaptive_avg_pool{1,2,3}d(x, size)`: bin i of a dim of size n covers positions
    floor(i n / size) .. ceil((i + 1) n / size) - 1. `to` names the pooled dims, one name per
    dim of `over` (each of static size `size`), or a single name for all the bins flattened
    row-major in the order of `over` (size ** len(over), in the place of the first `over` dim):
    PSPNet's and ANN's `pool(x).view(n, c, -1)`. Besides `over`, x has a batch dim and at most
    one channel dim. ANN's pyramid sampling of keys (Zhu et al., ICCV 2019, survey catalogue
    row 19): `adaptive_avg_pool(k, over=H W, size=3, to=P3)` -> [N, D, P3] with P3 = 9.
    """

    name = "adaptive_avg_pool"
    signature = Signature(
        tensors=("x",),
        attrs={
            "over": DimsArg(required=True),
            "size": IntArg(required=True, min=1, max=4096),
            "to": DimsArg(required=True),
        },
    )
    traits = frozenset({"pure"})

    def _check(self, x: TensorType, over: tuple[str, ...],
               to: tuple[str, ...]) -> tuple[str, str | None]:
        check_over(self.name, x, over, verb="pools", hint="pool")
        if len(to) not in (1, len(over)):
            raise OpError(f"`to` names {len(to)} dims for the {len(over)} pooled dims "
                          f"`{' '.join(over)}`", arg="to",
                          hints=("one name per pooled dim (`to=H3 W3`), or one name for "
                                 "the bins flattened (`to=P`)",))
        if len(set(to)) != len(to):
            raise OpError(f"`to` names a dim twice: `{' '.join(to)}`", arg="to")
        for d in to:
            if d in x:
                raise OpError(f"adaptive_avg_pool would give two dims named `{d}`", arg="to",
                              hints=("the pooled dims need names of their own",))
        return FrameLayout.split(x, over, self.name)

    @staticmethod
    def _out(x: TensorType, over: tuple[str, ...], to: tuple[str, ...]) -> TensorType:
        if len(to) == len(over):
            return rename(x, over, to)
        return TensorType(tuple(to[0] if d == over[0] else d for d in x.dims
                                if d == over[0] or d not in over))

    def infer(self, ctx, ins, attrs):
        (x,) = ins
        over, to, size = attrs["over"], attrs["to"], attrs["size"]
        self._check(x, over, to)
        flat = len(to) != len(over)
        for d in to:
            try:
                ctx.new_dim(d, size ** len(over) if flat else size)
            except OpError as err:
                raise OpError(err.message, arg="to", hints=err.hints) from None
        return self._out(x, over, to)

    def resolve(self, ins, out, attrs):
        (x,) = ins
        over, to = attrs["over"], attrs["to"]
        batch, channel = self._check(x, over, to)
        return {"frame": FrameLayout.of(x, out, batch, channel, over, to),
                "nd": len(over), "size": attrs["size"], "flat": len(to) != len(over)}

    # ---- lowerings: (batch, channel, *over), one [size, n] averaging matrix per pooled
    # axis, the bins flattened if asked, back to the output's order ----
    def numpy(self, x, *, frame, nd, size, flat):
        t = frame.enter_numpy(x).astype(np.float64)
        for a in range(2, 2 + nd):
            t = np.moveaxis(np.tensordot(bin_matrix(t.shape[a], size), t, axes=(1, a)), 0, a)
        if flat:
            t = t.reshape(*t.shape[:2], -1)
        return np.ascontiguousarray(frame.leave_numpy(t), dtype=np.float32)

    def torch(self, e, x, *, frame, nd, size, flat):
        t = f"F.adaptive_avg_pool{nd}d({frame.enter_torch(x)}, {(size,) * nd})"
        return frame.leave_torch(f"{t}.flatten(2)" if flat else t)

    def onnx(self, e, x, *, frame, nd, size, flat):
        from onnx import TensorProto

        f32 = TensorProto.FLOAT
        t = frame.enter_onnx(e, x)
        letters = _LETTERS[:2 + nd]
        for a in range(2, 2 + nd):
            n = e.op("Shape", [t], start=a, end=a + 1)                        # [1] int64
            i = e.op("Unsqueeze", [e.const_i64(tuple(range(size))), e.const_i64((1,))])
            s = e.const_i64((size,))
            lo = e.op("Div", [e.op("Mul", [i, n]), s])                        # floor(i n / s)
            nxt = e.op("Mul", [e.op("Add", [i, e.const_i64((1,))]), n])
            hi = e.op("Div", [e.op("Add", [nxt, e.const_i64((size - 1,))]), s])  # ceil
            pos = e.op("Range", [self._scalar(e, 0), self._scalar(e, n), self._scalar(e, 1)])
            inside = e.op("And", [e.op("GreaterOrEqual", [pos, lo]), e.op("Less", [pos, hi])])
            count = e.op("Cast", [e.op("Sub", [hi, lo])], to=f32)             # [size, 1]
            weights = e.op("Div", [e.op("Cast", [inside], to=f32), count])    # [size, n]
            pooled = letters[:a] + "y" + letters[a + 1:]
            t = e.op("Einsum", [t, weights], equation=f"{letters},y{letters[a]}->{pooled}")
        if flat:
            t = e.op("Reshape", [t, e.const_i64((0, 0, -1))])
        return frame.leave_onnx(e, t)

    @staticmethod
    def _scalar(e, value: int | str) -> str:
        """A 0-d int64 (Range takes scalars): a constant, or a [1] tensor squeezed."""
        one = e.const_i64((value,)) if isinstance(value, int) else value
        return e.op("Squeeze", [one, e.const_i64((0,))])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        # each input element is added into its bins once per pooled dim; one divide per output
        flops = len(attrs["over"]) * math.prod(in_shapes[0]) + math.prod(out_shape)
        return Cost(flops=flops,
                    bytes_moved=4 * (math.prod(in_shapes[0]) + math.prod(out_shape)))

    def samples(self):
        # bins that overlap (7 -> 3), repeat positions (3 -> 5), and the global level (-> 1)
        return [
            # ANN's pyramid level: non-divisible H and W, the bins flattened (9 of them)
            Sample(inputs=(("N", "C", "H", "W"),),
                   attrs={"over": ("H", "W"), "size": 3, "to": ("P",)},
                   sizes={"H": 7, "W": 10}),
            # 1-D, more bins than positions, channel first, batch last
            Sample(inputs=(("C", "T", "N"),),
                   attrs={"over": ("T",), "size": 5, "to": ("T5",)}, sizes={"T": 3}),
            # the global level, `over` out of x's order, no channel dim (a sample with one
            # name per pooled dim would give two dims of one size; the 1-D one covers it)
            Sample(inputs=(("W", "N", "H"),),
                   attrs={"over": ("H", "W"), "size": 1, "to": ("G",)},
                   sizes={"H": 9, "W": 11}),
            # 3-D, channel first, flattened bins placed where T stood (8 of them)
            Sample(inputs=(("C", "N", "T", "H", "W"),),
                   attrs={"over": ("T", "H", "W"), "size": 2, "to": ("Q",)},
                   sizes={"T": 4, "H": 5, "W": 7}),
        ]
