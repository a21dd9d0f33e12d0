"""The k largest (or smallest) entries along a named dim: their values and their positions.

`topk` gives the values, sorted, along a new dim of size k; `topk_index` gives where they
were, as int64 indices typed `TensorType(dtype="int64")` like `argmax`'s (catalogue §3 row
31, ONNX TopK opset 11 with `largest`/`sorted`). Order among equal entries: ONNX TopK and the
NumPy lowering (a stable argsort) put the lower index first; torch.topk does not promise an
order for ties, so values always agree but the indices of tied entries may differ between
torch and the other two backends. The op samples use random normal inputs, which have no
ties.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    BoolArg,
    Cost,
    DimArg,
    InferContext,
    IntArg,
    Op,
    OpError,
    Sample,
    Signature,
    register,
)


class _TopK(Op):
    """The shared rule: `over` replaced by a new dim `as` of size k."""

    index: ClassVar[bool]
    signature = Signature(
        tensors=("x",),
        attrs={"over": DimArg(required=True, doc="the dim to select along"),
               "k": IntArg(required=True, min=1, doc="how many entries to keep"),
               "as": DimArg(required=True, new=True, doc="the new dim of size k"),
               "largest": BoolArg(default=True, doc="the largest entries (false: smallest)")},
    )
    traits = frozenset({"pure"})

    def infer(self, ctx: InferContext, ins: list[TensorType], attrs: dict[str, Any]) -> TensorType:
        (x,) = ins
        over, k, new = attrs["over"], attrs["k"], attrs["as"]
        if over not in x.real:
            raise OpError(f"{self.name} selects along `{over}` but its input has dims {x}",
                          arg="over", hints=(f"select along one of {', '.join(x.real)}",))
        if new in x:
            raise OpError(f"{self.name}'s new dim `{new}` is already a dim of {x}", arg="as",
                          hints=("the k kept entries lie along a new dim, e.g. `as=K`",))
        n = ctx.known_size(over)
        if n is not None and k > n:
            raise OpError(f"{self.name} keeps k={k} entries of `{over}`, which has only {n}",
                          arg="k", kind="hyper", hints=(f"use k <= {n}",))
        if ctx.known_size(new) not in (None, k):
            raise OpError(f"dim `{new}` already has size {ctx.known_size(new)}, not k={k}",
                          arg="as")
        ctx.new_dim(new, k)
        out = x.replace(over, (new,))
        return TensorType(out.dims, dtype="int64") if self.index else out

    def resolve(self, ins, out, attrs):
        return {"axis": ins[0].index(attrs["over"]), "k": attrs["k"],
                "largest": bool(attrs["largest"])}

    # ---- lowerings ----
    def numpy(self, x, *, axis, k, largest):
        # a stable sort of -x (or x): ties keep the lower index first, as ONNX TopK does
        order = np.argsort(-x if largest else x, axis=axis, kind="stable")
        idx = np.take(order, np.arange(k), axis=axis)
        if self.index:
            return idx.astype(np.int64)
        return np.take_along_axis(x, idx, axis=axis).astype(np.float32)

    def torch(self, e, x, *, axis, k, largest):
        part = "indices" if self.index else "values"
        return f"torch.topk({x}, {k}, dim={axis}, largest={largest}, sorted=True).{part}"

    def onnx(self, e, x, *, axis, k, largest):
        from onnx import helper

        # TopK has two outputs (values, indices); the emitter's op() names one
        base = e.fresh(f"{e.prefix}/TopK")
        values, indices = f"{base}/values", f"{base}/indices"
        e.nodes.append(helper.make_node("TopK", [x, e.const_i64((k,))], [values, indices],
                                        name=base, axis=axis, largest=int(largest), sorted=1))
        return indices if self.index else values

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        n = math.prod(in_shapes[0])
        compares = n * max(1, math.ceil(math.log2(attrs["k"] + 1)))  # a heap of size k
        out_bytes = (8 if self.index else 4) * math.prod(out_shape)
        return Cost(flops=compares, bytes_moved=4 * n + out_bytes)

    def samples(self):
        # sizes: N=2, C=6, H=5, W=7, T=3 unless a sample sets its own; k distinct from them
        return [
            # the 4 largest channels per position, the selected dim in the middle
            Sample(inputs=(("N", "C", "H"),), attrs={"over": "C", "k": 4, "as": "K"}),
            # the smallest, along the first dim
            Sample(inputs=(("W", "N", "T"),), attrs={"over": "W", "k": 5, "as": "K",
                                                    "largest": False}, sizes={"W": 11}),
            # all but one: a near-full sort, along the last dim
            Sample(inputs=(("N", "C", "W"),), attrs={"over": "W", "k": 8, "as": "S"},
                   sizes={"W": 9, "C": 4}),
            # k = 1: the maximum, kept as a size-1 dim
            Sample(inputs=(("N", "T", "C"),), attrs={"over": "T", "k": 1, "as": "One"}),
        ]


@register
class TopK(_TopK):
    """topk(x, over: dim, k: int, as: new dim, largest: bool = true) -> x with `over` -> `as`.

    The k largest entries along `over` (the k smallest with `largest=false`), sorted from the
    first pick on (descending for largest), along a new dim `as` of size k; x's other dims
    keep their places. E.g. the 8 strongest responses per channel, s: [N, C, P]:
    `topk(s, over=P, k=8, as=K)` -> [N, C, K]. `over`'s run-time size must be at least k.
    torch.topk(sorted=True) and ONNX TopK (k a constant); the gradient reaches the selected
    entries. Their positions come from `topk_index` with the same arguments.
    """

    name = "topk"
    index = False


@register
class TopKIndex(_TopK):
    """topk_index(x, over: dim, k: int, as: new dim, largest = true) -> int64 indices.

    Where `topk` with the same arguments found its entries: int64 positions along `over`,
    in the same sorted order, along the new dim `as` of size k (typed int64, like `argmax`,
    so only ops that read indices take it). E.g. s: [N, C, P]:
    `topk_index(s, over=P, k=8, as=K)` -> [N, C, K] int64 in 0 .. P - 1. Tied entries: the
    lower index first in NumPy and ONNX; torch.topk's order among ties is unspecified.
    """

    name = "topk_index"
    index = True
    traits = frozenset({"pure"})
