"""Rearrangement over named dims: align (inserted by canonicalize), stack, concat, rename.

Also the shared helper that moves named dims into a framework's (batch, channel, *spatial)
layout and back (`FrameLayout`), for ops lowered to framework kernels (pooling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    Arg,
    Cost,
    DimArg,
    DimsArg,
    InferContext,
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




@register
class Concat(Op):
    """concat(x..., along: dims, as: new dim) -> first input with its `along` dim renamed `as`.

    Joins tensors end to end along one dim: `along=C` when every input has `C`, or one name
    per input (`along=C1 C2`) for dims of different sizes. The other dims must agree as sets;
    inputs in another order are aligned to the first one. The joined dim is new (`as`, sized
    by the sum of the inputs' sizes, or known only at run time). CBAM-style descriptor joins,
    CA's [H; W] strip concatenation (catalogue row 6).
    """

    name = "concat"
    signature = Signature(
        tensors=("x",),
        attrs={"along": DimsArg(required=True), "as": DimArg(required=True, new=True)},
        variadic=True,
    )
    traits = frozenset({"layout", "pure"})

    def _along(self, ins: list[TensorType], attrs: dict[str, Any]) -> tuple[str, ...]:
        along = attrs["along"]
        if len(along) == 1:
            along = along * len(ins)
        elif len(along) != len(ins):
            raise OpError(
                f"concat joins {len(ins)} tensors but `along` names {len(along)} dims",
                arg="along", hints=("give one dim that every input has, or one per input",))
        for i, (t, d) in enumerate(zip(ins, along, strict=True)):
            if d not in t:
                raise OpError(f"concat joins along `{d}` but input {i + 1} has dims {t}",
                              arg="along", hints=(f"join along one of {', '.join(t.dims)}",))
        rest = set(ins[0].dims) - {along[0]}
        for i, (t, d) in enumerate(zip(ins, along, strict=True)):
            if set(t.dims) - {d} != rest:
                raise OpError(
                    f"concat needs inputs that differ only in the joined dim, got {ins[0]} and "
                    f"{t} (input {i + 1})", arg="along",
                    hints=("align the other dims first (reduce, rename or broadcast them)",))
        return along

    def infer(self, ctx: InferContext, ins: list[TensorType], attrs: dict[str, Any]) -> TensorType:
        along = self._along(ins, attrs)
        new = attrs["as"]
        if new in ins[0] or new in along:
            raise OpError(f"concat's new dim `{new}` is already a dim of its inputs", arg="as",
                          hints=("the joined dim changes size, so it needs a new name",))
        sizes = [ctx.known_size(d) for d in along]
        total = None if None in sizes else sum(sizes)
        if total is not None or ctx.known_size(new) is None:
            try:
                ctx.new_dim(new, total)
            except OpError as err:
                raise OpError(err.message, arg="as") from None
        return ins[0].replace(along[0], (new,))

    def aligned_inputs(self, ins, out):
        # the joined dim of each input is the one it has that the output lacks; every input
        # takes the first one's order, its own joined dim in the first one's place
        joined = [next(d for d in t.dims if d not in out) for t in ins]
        wants = [tuple(j if d == joined[0] else d for d in ins[0].dims) for j in joined]
        return [None if t.dims == w else TensorType(w) for t, w in zip(ins, wants, strict=True)]

    def resolve(self, ins, out, attrs):
        return {"axis": out.index(attrs["as"])}

    def numpy(self, *xs, axis):
        return np.concatenate(xs, axis=axis)

    def torch(self, e, *xs, axis):
        return f"torch.cat([{', '.join(xs)}], dim={axis})"

    def onnx(self, e, *xs, axis):
        return e.op("Concat", list(xs), axis=axis)

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(bytes_moved=8 * math.prod(out_shape))

    def samples(self):
        return [
            # one dim shared by all (sizes add up: 3 x W=7 -> 21), the second input permuted
            Sample(inputs=(("N", "C", "W"), ("W", "N", "C"), ("N", "C", "W")),
                   attrs={"along": ("W",), "as": "V"}),
            # one dim per input, of different sizes (H=5 + T=3 -> 8)
            Sample(inputs=(("N", "H", "C"), ("C", "T", "N")),
                   attrs={"along": ("H", "T"), "as": "L"}),
        ]


@dataclass(frozen=True)
class FrameLayout:
    """How named dims move into a framework kernel's (batch, channel, *spatial) layout and back.

    `perm_in` orders the input as (batch, channel?, *spatial); with no channel dim one of size 1
    is inserted at axis 1 (`unsqueeze`) and taken out again after the kernel; `perm_out` orders
    the kernel's result as the op's output. Built once in an op's `resolve`; the lowerings call
    the `enter_*` / `leave_*` pairs around the kernel.
    """

    perm_in: tuple[int, ...] | None
    unsqueeze: bool  # the input has no channel dim: insert one of size 1
    perm_out: tuple[int, ...] | None
    squeeze: bool  # the output has no channel dim: take the kernel's size-1 channel out

    @staticmethod
    def of(x: TensorType, out: TensorType, batch: str, channel: str | None,
           spatial: tuple[str, ...], out_spatial: tuple[str, ...],
           out_channel: str | bool | None = True) -> FrameLayout:
        """`out_channel=True` (the default) means the output keeps the input's channel."""
        chan = (channel,) if channel else ()
        if out_channel is True:
            out_channel = channel
        out_chan = (out_channel,) if out_channel else ()
        canon_out = (batch, *out_chan, *out_spatial)
        return FrameLayout(perm_or_none(x.axes((batch, *chan, *spatial))), channel is None,
                           perm_or_none(tuple(canon_out.index(d) for d in out.dims)),
                           out_channel is None)

    @staticmethod
    def split(x: TensorType, over: tuple[str, ...], op: str) -> tuple[str, str | None]:
        """Batch and channel among the dims of `x` not in `over`: one or two of them, in order."""
        rest = [d for d in x.dims if d not in over]
        if not 1 <= len(rest) <= 2:
            raise OpError(
                f"{op} needs one or two dims besides `{' '.join(over)}` (batch, then channel), "
                f"found {len(rest)} in {x}", arg="over",
                hints=("reduce or merge the other dims first",))
        return rest[0], (rest[1] if len(rest) == 2 else None)

    def enter_numpy(self, x):
        x = x.transpose(self.perm_in) if self.perm_in else x
        return x[:, None] if self.unsqueeze else x

    def leave_numpy(self, y):
        y = y[:, 0] if self.squeeze else y
        return y.transpose(self.perm_out) if self.perm_out else y

    def enter_torch(self, t: str) -> str:
        t = f"{t}.permute{self.perm_in}" if self.perm_in else t
        return f"{t}.unsqueeze(1)" if self.unsqueeze else t

    def leave_torch(self, t: str) -> str:
        t = f"{t}.squeeze(1)" if self.squeeze else t
        return f"{t}.permute{self.perm_out}" if self.perm_out else t

    def enter_onnx(self, e, t: str) -> str:
        t = e.op("Transpose", [t], perm=list(self.perm_in)) if self.perm_in else t
        return e.op("Unsqueeze", [t, e.const_i64((1,))]) if self.unsqueeze else t

    def leave_onnx(self, e, t: str) -> str:
        t = e.op("Squeeze", [t, e.const_i64((1,))]) if self.squeeze else t
        return e.op("Transpose", [t], perm=list(self.perm_out)) if self.perm_out else t
