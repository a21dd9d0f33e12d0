"""Constant indexing: `gather` through a compile-time index table, and the `eye` diagonal.

A `gather` table is an int64 buffer computed once (torch's `reset_parameters`, an ONNX
initializer, the NumPy reference reads it from the state_dict), like FcaNet's DCT basis in
`const.py`; the sizes it depends on are fixed at compile time. Each table generator below
says what it picks and in which order. `eye` is sized at run time from a tensor that has its
two dims, so it keeps N, H and W dynamic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    ChoiceArg,
    Cost,
    DimArg,
    DimsArg,
    Op,
    OpError,
    ParamSpec,
    Sample,
    Signature,
    register,
)


@dataclass(frozen=True)
class Table:
    """One generator: what it picks (for the docs) and how many output dims it has."""

    doc: str
    rank: int


TABLES: dict[str, Table] = {
    # the c(c+1)/2 entries of a symmetric c x c matrix flattened row-major (size c*c), diagonal
    # by diagonal as the AiA code's `torch.diagonal(x, offset=-i)` for i = 0..c-1 takes them:
    # (0,0), (1,1), .., (1,0), (2,1), .., (c-1,0)
    "triu": Table("upper triangle of a c x c matrix, diagonal by diagonal", 1),
    # PSANet's psamask (hszhao/semseg lib/psa/src/cpu/psamask.cpp) with the over-complete mask
    # 2H-1 x 2W-1: the input is the predicted map [M, H, W] flattened (M = (2H-1)(2W-1)), the
    # output [J, H, W] with J = H*W. Collect: out[j, i] = mask[j - i + (H-1, W-1), at pixel i];
    # distribute: out[k, j] = mask[j - k + (H-1, W-1), at pixel k]
    "psa_collect": Table("PSANet's collect mask reshuffle into [H*W, H, W]", 3),
    "psa_distribute": Table("PSANet's distribute mask reshuffle into [H*W, H, W]", 3),
}
TABLE_NAMES = tuple(TABLES)


def table_shape(name: str, n: int, sizes: list[int | None]) -> tuple[int, ...]:
    """The table's shape for an input dim of size n; `sizes` are the output dims' known sizes."""
    if name == "triu":
        c = math.isqrt(n)
        if c * c != n:
            raise OpError(f"the `triu` table picks from a c x c matrix, but the gathered dim "
                          f"has size {n}, not a square", arg="along",
                          hints=("merge the two matrix dims first: `merge(z, A B -> Q)`",))
        return (c * (c + 1) // 2,)
    h, w = sizes[1], sizes[2]
    if h is None or w is None:
        raise OpError(f"the `{name}` table needs static H and W (the 2nd and 3rd dims of `as`)",
                      arg="as", hints=("fix them as hyperparameters, as FcaNet does",))
    want = (2 * h - 1) * (2 * w - 1) * h * w
    if n != want:
        raise OpError(f"the `{name}` table gathers from the [(2H-1)(2W-1), H, W] mask "
                      f"flattened, {want} entries for H={h}, W={w}, but the dim has size {n}",
                      arg="along",
                      hints=("predict (2H-1)(2W-1) channels and merge them with H W, in "
                             "that order",))
    return (h * w, h, w)


def table_source(name: str, shape: tuple[int, ...]) -> str:
    """Torch source (an int64 tensor expression) of the table `name` (one of TABLE_NAMES),
    the `source` of the buffer: the generated module builds it in `reset_parameters`."""
    if name == "triu":
        (m,) = shape
        c = (math.isqrt(8 * m + 1) - 1) // 2
        return (f"torch.tensor([(k + i) * {c} + k for i in range({c}) "
                f"for k in range({c} - i)], dtype=torch.int64)")
    hw, h, w = shape
    mw = 2 * w - 1
    if name == "psa_collect":  # j: the attended position, (a, b): the predicting pixel i
        body = f"((j // {w} - a + {h - 1}) * {mw} + j % {w} - b + {w - 1}) * {hw} + a * {w} + b"
    else:  # k: the predicting pixel, (a, b): the position it distributes to
        body = f"((a - k // {w} + {h - 1}) * {mw} + b - k % {w} + {w - 1}) * {hw} + k"
    var = "j" if name == "psa_collect" else "k"
    return (f"(lambda {var}, a, b: {body})(torch.arange({hw}).view(-1, 1, 1), "
            f"torch.arange({h}).view(1, -1, 1), torch.arange({w}).view(1, 1, -1))")


@register
class Gather(Op):
    """gather(x, along: dim, table: str, as: dims) -> x with `along` replaced by `as`.

    y[.., t.., ..] = x[.., along=T[t..], ..] for a compile-time int64 index table T (a buffer
    `index`) whose dims are `as`. Tables: "triu" (Bi-attention's Utri of the per-pixel outer
    product, survey eq. 18: c(c+1)/2 of the c*c entries, in the AiA code's diagonal order),
    "psa_collect" and "psa_distribute" (PSANet's psamask, survey eqs. 48-50: the
    over-complete (2H-1)(2W-1) map of each pixel reshuffled into an H*W x H*W attention; `as`
    names [J, H, W], J = H*W the other pixel, H and W static). ONNX Gather.
    """

    name = "gather"
    signature = Signature(
        tensors=("x",),
        attrs={
            "along": DimArg(required=True, doc="the dim the table indexes (static size)"),
            "table": ChoiceArg(required=True, choices=TABLE_NAMES, doc="the index table"),
            "as": DimsArg(required=True, doc="the table's dims, replacing `along`"),
        },
    )
    traits = frozenset({"has_params"})

    def _shape(self, ctx, ins, attrs) -> tuple[int, ...]:
        (x,) = ins
        along, name, new = attrs["along"], attrs["table"], attrs["as"]
        if along not in x.real:
            raise OpError(f"gather indexes `{along}` but its input has dims {x}", arg="along",
                          hints=(f"index one of {', '.join(x.real)}",))
        table = TABLES[name]
        if len(new) != table.rank:
            raise OpError(f"the `{name}` table has {table.rank} dims, but `as` names "
                          f"{len(new)}", arg="as")
        if len(set(new)) != len(new):
            raise OpError(f"`as` names a dim twice: `{' '.join(new)}`", arg="as")
        for d in new:
            if d in x and d != along:
                raise OpError(f"gather would give two dims named `{d}`", arg="as",
                              hints=("name the table's dims anew",))
        n = ctx.require_size(along, f"the `{name}` index table")
        shape = table_shape(name, n, [ctx.known_size(d) for d in new])
        for d, size in zip(new, shape, strict=True):
            try:
                ctx.new_dim(d, size)
            except OpError as err:
                raise OpError(err.message, arg="as") from None
        return shape

    def infer(self, ctx, ins, attrs):
        self._shape(ctx, ins, attrs)
        return ins[0].replace(attrs["along"], tuple(attrs["as"]))

    def params(self, ctx, ins, attrs):
        shape = self._shape(ctx, ins, attrs)
        return {"index": ParamSpec(shape, "source", buffer=True, dtype="int64",
                                   source=table_source(attrs["table"], shape))}

    def resolve(self, ins, out, attrs):
        return {"axis": ins[0].index(attrs["along"])}

    def numpy(self, x, index, *, axis):
        return np.take(x, index, axis=axis)

    def torch(self, e, x, index, *, axis):
        return f"{x}[{':, ' * axis}{index}]"

    def onnx(self, e, x, index, *, axis):
        return e.op("Gather", [x, index], axis=axis)

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(bytes_moved=4 * math.prod(out_shape) + 8 * math.prod(param_shapes["index"]))

    def samples(self):
        return [
            # a 4 x 4 matrix flattened into Q = 16 -> U = 10 entries, in the middle
            Sample(inputs=(("N", "Q", "H"),), attrs={"along": "Q", "table": "triu", "as": ("U",)},
                   sizes={"Q": 16}),
            # PSANet with H = 3, W = 4: F = 5 * 7 * 12 = 420 -> [J = 12, H, W]
            Sample(inputs=(("N", "F", "C"),),
                   attrs={"along": "F", "table": "psa_collect", "as": ("J", "H", "W")},
                   sizes={"F": 420, "H": 3, "W": 4}),
            Sample(inputs=(("F", "N"),),
                   attrs={"along": "F", "table": "psa_distribute", "as": ("J", "H", "W")},
                   sizes={"F": 420, "H": 3, "W": 4}),
        ]


FILLS = ("one", "-inf")


@register
class Eye(Op):
    """eye(like, over: two dims, fill: str = "one") -> [over].  The diagonal of two dims.

    A float matrix over the two dims of `like` (sized at run time from its shape, so the dims
    stay dynamic) with `fill` on the diagonal (i == j) and 0 elsewhere: "one" is the identity,
    "-inf" an additive mask that removes the diagonal from a softmax, as CCNet's criss-cross
    attention counts the self position once (its `INF` matrix). ONNX: ConstantOfShape +
    EyeLike (+ Where for "-inf", never 0 * inf).
    """

    name = "eye"
    signature = Signature(
        tensors=("like",),
        attrs={"over": DimsArg(required=True, doc="two dims of `like`: rows, columns"),
               "fill": ChoiceArg(default="one", choices=FILLS, doc="the diagonal's value")},
    )
    traits = frozenset({"pure"})

    def infer(self, ctx, ins, attrs):
        (like,) = ins
        over = attrs["over"]
        if len(over) != 2 or over[0] == over[1]:
            raise OpError(f"eye spans two different dims, e.g. `over=H Hk`, not "
                          f"`{' '.join(over)}`", arg="over")
        for d in over:
            if d not in like.real:
                raise OpError(f"eye takes the size of `{d}` from its input, which has dims "
                              f"{like}", arg="over",
                              hints=("pass a tensor that has both dims",))
        return TensorType(tuple(over))

    def aligned_inputs(self, ins, out):
        return [None]  # the input lends sizes only

    def resolve(self, ins, out, attrs):
        return {"axes": ins[0].axes(tuple(attrs["over"])), "fill": attrs["fill"]}

    def numpy(self, like, *, axes, fill):
        n, m = (like.shape[a] for a in axes)
        on = np.float32(1.0 if fill == "one" else -np.inf)
        diag = np.arange(n)[:, None] == np.arange(m)[None, :]
        return np.where(diag, on, np.float32(0.0)).astype(np.float32)

    def torch(self, e, like, *, axes, fill):
        n, m = (f"{like}.shape[{a}]" for a in axes)
        eye = f"torch.eye({n}, {m}, dtype={like}.dtype, device={like}.device)"
        if fill == "one":
            return eye
        return f"torch.zeros_like({eye}).masked_fill({eye}.bool(), -math.inf)"

    def onnx(self, e, like, *, axes, fill):
        dims = [e.op("Shape", [like], start=a, end=a + 1) for a in axes]
        zeros = e.op("ConstantOfShape", [e.op("Concat", dims, axis=0)])
        eye = e.op("EyeLike", [zeros])
        if fill == "one":
            return eye
        mask = e.op("Cast", [eye], to=9)  # BOOL
        return e.op("Where", [mask, e.const_f32(-math.inf), e.const_f32(0.0)])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(bytes_moved=4 * math.prod(out_shape))

    def samples(self):
        return [
            Sample(inputs=(("N", "H", "W", "T"),), attrs={"over": ("H", "T")}),
            Sample(inputs=(("W", "C", "N"),), attrs={"over": ("W", "C"), "fill": "-inf"}),
        ]
