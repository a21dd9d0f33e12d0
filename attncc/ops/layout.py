"""Rearrangement over named dims: align (inserted by canonicalize), stack, rename."""

from __future__ import annotations

import math

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    Arg,
    Cost,
    DimArg,
    IntArg,
    Op,
    OpError,
    Sample,
    Signature,
    perm_or_none,
    register,
)


@register
class Align(Op):
    """align(x, to: type) -> `to`.  Permute x into `to`'s order; dims x lacks become size 1.

    Inserted by the canonicalize pass in front of by-name broadcasting, so lowerings of
    binary ops see operands of one rank and order.
    """

    name = "align"
    signature = Signature(tensors=("x",), attrs={"to": Arg(required=True)})
    traits = frozenset({"layout", "pure", "internal"})

    def infer(self, ctx, ins, attrs):
        (x,) = ins
        to: TensorType = attrs["to"]
        missing = [d for d in x.real if d not in to.dims]
        if missing:
            raise OpError(f"cannot align {x} to {to}: `{missing[0]}` has nowhere to go")
        return TensorType(to.dims, frozenset(d for d in to.dims if d not in x.real))

    def resolve(self, ins, out, attrs):
        x = ins[0]
        present = [d for d in out.dims if d in x.real]
        perm = x.axes(tuple(present))
        # positions in the output that are new size-1 dims
        new_axes = tuple(i for i, d in enumerate(out.dims) if d not in x.real)
        return {"perm": perm_or_none(perm), "new_axes": new_axes, "rank": out.rank}

    def numpy(self, x, *, perm, new_axes, rank):
        t = x.transpose(perm) if perm else x
        return np.expand_dims(t, new_axes) if new_axes else t

    def torch(self, e, x, *, perm, new_axes, rank):
        t = f"{x}.permute{perm}" if perm else x
        if new_axes:
            index = ", ".join("None" if i in new_axes else ":" for i in range(rank))
            t = f"{t}[{index}]"
        return t

    def onnx(self, e, x, *, perm, new_axes, rank):
        t = e.op("Transpose", [x], perm=list(perm)) if perm else x
        if new_axes:
            t = e.op("Unsqueeze", [t, e.const_i64(new_axes)])
        return t

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(bytes_moved=8 * math.prod(out_shape))

    def samples(self):
        return [Sample(inputs=(("N", "C"),), attrs={"to": TensorType(("C", "H", "N"))})]


@register
class Stack(Op):
    """stack(x..., as: new dim, at: int = 1) -> first input with `as` inserted at `at`.

    Joins tensors with the same dims along a new dim whose size is their number: CBAM's
    [max; mean] channel-pooled maps, survey eq. (80).
    """

    name = "stack"
    signature = Signature(
        tensors=("x",),
        attrs={"as": DimArg(required=True, new=True), "at": IntArg(default=1, min=0)},
        variadic=True,
    )
    traits = frozenset({"layout", "pure"})

    def infer(self, ctx, ins, attrs):
        first = ins[0]
        for other in ins[1:]:
            if set(other.dims) != set(first.dims):
                raise OpError(f"stack needs inputs with the same dims, got {first} and {other}")
        new = attrs["as"]
        if new in first:
            raise OpError(f"stack's new dim `{new}` is already a dim of {first}", arg="as")
        if attrs["at"] > first.rank:
            raise OpError(f"stack position at={attrs['at']} is past the end of {first}", arg="at",
                          kind="hyper")
        ctx.new_dim(new, len(ins))
        return first.replace(None, (new,), at=attrs["at"])

    def aligned_inputs(self, ins, out):
        return [None] + [None if t.dims == ins[0].dims else TensorType(ins[0].dims)
                         for t in ins[1:]]

    def resolve(self, ins, out, attrs):
        return {"axis": attrs["at"]}

    def numpy(self, *xs, axis):
        return np.stack(xs, axis=axis)

    def torch(self, e, *xs, axis):
        return f"torch.stack([{', '.join(xs)}], dim={axis})"

    def onnx(self, e, *xs, axis):
        axes = e.const_i64((axis,))
        return e.op("Concat", [e.op("Unsqueeze", [x, axes]) for x in xs], axis=axis)

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(bytes_moved=8 * math.prod(out_shape))

    def samples(self):
        # three inputs, so the new dim's size (3) differs from every other dim's
        return [Sample(inputs=(("N", "H", "W"), ("N", "H", "W"), ("N", "W", "H")),
                       attrs={"as": "S"}),
                Sample(inputs=(("N", "C"), ("C", "N"), ("N", "C")), attrs={"as": "B", "at": 0})]


@register
class Rename(Op):
    """rename(x, dims: names) -> x with new dim names, position by position (`x as [...]`)."""

    name = "rename"
    signature = Signature(tensors=("x",), attrs={"dims": Arg(required=True)})
    traits = frozenset({"layout", "pure", "internal"})

    def infer(self, ctx, ins, attrs):
        (x,) = ins
        new: tuple[str, ...] = attrs["dims"]
        if len(new) != x.rank:
            raise OpError(f"`as` gives {len(new)} names to a tensor with {x.rank} dims {x}")
        if len(set(new)) != len(new):
            raise OpError(f"`as` repeats a dim name in [{', '.join(new)}]")
        for old, name in zip(x.dims, new, strict=True):
            ctx.rename_dim(old, name)
        return TensorType(new)

    def numpy(self, x):
        return x

    def torch(self, e, x):
        return x

    def onnx(self, e, x):
        return e.op("Identity", [x])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost()

    def samples(self):
        return [Sample(inputs=(("N", "C"),), attrs={"dims": ("N", "D")})]


