"""Hard selection over named dims: the index of the largest entry, and gathering by index.

`argmax` gives int64 indices, typed `TensorType(dtype="int64")`; `take` reads them (it lists
`index` in `Op.int_inputs`), and the elaborator refuses them to every op that does not, so an
index never meets arithmetic. STA's argmax frame per
region, survey eq. (154), is `take(x, argmax(s, over=T), along=T)`.
"""

from __future__ import annotations

import math

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    Cost,
    DimArg,
    Op,
    OpError,
    Sample,
    Signature,
    perm_or_none,
    register,
)


@register
class ArgMax(Op):
    """argmax(x, over: dim) -> int64 indices, x without `over`.  First index on ties.

    The position of the largest entry along one dim, as torch.argmax and ONNX ArgMax
    (keepdims=0, select_last_index=0) give it: ties go to the first index in all three
    backends. No gradient flows through indices; a block's output gets its gradient through
    the `take` that uses them. STA's most attentive frame per region, survey eq. (154).
    """

    name = "argmax"
    signature = Signature(tensors=("x",), attrs={"over": DimArg(required=True)},
                          positional=("over",))
    traits = frozenset({"reduction", "pure"})

    def infer(self, ctx, ins, attrs):
        (x,) = ins
        over = attrs["over"]
        if over not in x.real:
            raise OpError(f"argmax runs over `{over}` but its input has dims {x}", arg="over",
                          hints=(f"pick one of {', '.join(x.real)}",))
        return TensorType(x.without((over,)).dims, dtype="int64")

    def resolve(self, ins, out, attrs):
        return {"axis": ins[0].index(attrs["over"])}

    def numpy(self, x, *, axis):
        return np.argmax(x, axis=axis).astype(np.int64)  # numpy, too, takes the first maximum

    def torch(self, e, x, *, axis):
        return f"torch.argmax({x}, dim={axis})"

    def onnx(self, e, x, *, axis):
        return e.op("ArgMax", [x], axis=axis, keepdims=0, select_last_index=0)

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        n = math.prod(in_shapes[0])
        return Cost(flops=n, bytes_moved=4 * n + 8 * math.prod(out_shape))

    def samples(self):
        return [
            Sample(inputs=(("N", "T", "C"),), attrs={"over": "T"}),
            # over the first dim, a rank-3 input with a dim of its own
            Sample(inputs=(("H", "N", "K"),), attrs={"over": "H"}, sizes={"K": 4}),
        ]


@register
class Take(Op):
    """take(x, index, along: dim) -> x without `along`.  y[..] = x[.., along=index[..], ..].

    Gathers one entry of x along `along` per position of x's other dims, at the int64 position
    `index` gives (from `argmax`). The index has some of x's other dims and broadcasts over
    the rest by name: with x: [N, T, C, K, R, W] and index: [N, K] (a frame per sample and
    region), `take(x, index, along=T)` is [N, C, K, R, W], STA's eq. (154). Indices must lie
    in 0 .. size(along) - 1. Lowered to torch.take_along_dim and ONNX GatherElements (the
    index expanded to x's shape), both exact; the gradient reaches x at the gathered entries.
    """

    name = "take"
    signature = Signature(tensors=("x", "index"), attrs={"along": DimArg(required=True)})
    traits = frozenset({"pure"})
    int_inputs = ("index",)

    def _check(self, x: TensorType, index: TensorType, along: str) -> None:
        if x.dtype != "float32":
            raise OpError(f"take gathers from a float tensor, not {x}", arg="x")
        if index.dtype != "int64":
            raise OpError(f"take's index must be int64 indices, got {index}", arg="index",
                          hints=("compute the index with `argmax(s, over=...)`",))
        if along not in x.real:
            raise OpError(f"take gathers along `{along}` but its input has dims {x}",
                          arg="along", hints=(f"gather along one of {', '.join(x.real)}",))
        if along in index:
            raise OpError(f"the index {index} has the gathered dim `{along}`", arg="index",
                          hints=("the index gives one position along it: reduce it away, "
                                 f"e.g. `argmax(s, over={along})`",))
        extra = [d for d in index.dims if d not in x.real]
        if extra:
            raise OpError(f"the index {index} has `{extra[0]}`, which x {x} lacks",
                          arg="index", hints=("an index has some of x's other dims and "
                                              "broadcasts over the rest",))

    def infer(self, ctx, ins, attrs):
        x, index = ins
        self._check(x, index, attrs["along"])
        return x.without((attrs["along"],))

    def aligned_inputs(self, ins, out):
        return [None, None]  # the index is laid out by the lowering (resolve)

    def resolve(self, ins, out, attrs):
        x, index = ins
        along = attrs["along"]
        present = tuple(d for d in x.dims if d in index.dims)
        return {"axis": x.index(along), "perm": perm_or_none(index.axes(present)),
                "new_axes": tuple(i for i, d in enumerate(x.dims) if d not in index.dims),
                "rank": x.rank}

    # ---- lowerings: the index in x's order, size 1 where it lacks a dim (and at `along`) ----
    def numpy(self, x, index, *, axis, perm, new_axes, rank):
        i = index.transpose(perm) if perm else index
        i = np.expand_dims(i, new_axes)
        i = np.broadcast_to(i, (*x.shape[:axis], 1, *x.shape[axis + 1:]))
        return np.take_along_axis(x, i, axis=axis).squeeze(axis)

    def torch(self, e, x, index, *, axis, perm, new_axes, rank):
        i = f"{index}.permute{perm}" if perm else index
        sel = ", ".join("None" if k in new_axes else ":" for k in range(rank))
        return f"torch.take_along_dim({x}, {i}[{sel}], dim={axis}).squeeze({axis})"

    def onnx(self, e, x, index, *, axis, perm, new_axes, rank):
        i = e.op("Transpose", [index], perm=list(perm)) if perm else index
        i = e.op("Unsqueeze", [i, e.const_i64(new_axes)])
        # GatherElements does not broadcast: expand the index to x's shape, 1 along `axis`
        parts = [e.op("Shape", [x], end=axis)] if axis else []
        parts.append(e.const_i64((1,)))
        parts.append(e.op("Shape", [x], start=axis + 1))
        shape = e.op("Concat", parts, axis=0)
        i = e.op("Expand", [i, shape])
        return e.op("Squeeze", [e.op("GatherElements", [x, i], axis=axis),
                                e.const_i64((axis,))])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        n = math.prod(out_shape)
        return Cost(flops=0, bytes_moved=4 * n + 8 * math.prod(in_shapes[1]) + 4 * n)

    def samples(self):
        idx = lambda *dims: TensorType(dims, dtype="int64")  # noqa: E731
        return [
            # STA: a frame per (sample, region), broadcast over channels and the region's rows
            Sample(inputs=(("N", "T", "C", "K", "R", "W"), idx("N", "K")),
                   attrs={"along": "T"}, sizes={"K": 4, "R": 8}),
            # the index in another order than x, gathered dim last
            Sample(inputs=(("N", "C", "H", "T"), idx("H", "N")), attrs={"along": "T"}),
            # gathered dim first; an index with every other dim
            Sample(inputs=(("T", "N", "C"), idx("C", "N")), attrs={"along": "T"}),
            # a rank-0 index: one position for everything
            Sample(inputs=(("N", "T", "C"), idx()), attrs={"along": "T"}),
        ]
