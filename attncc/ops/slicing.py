"""Cutting and widening one named dim at a time: `slice` (a strided sub-range) and `pad`.

Both change a dim's size, and a dim name stands for one size everywhere in a block, so the
result's dim takes a new name (`as=`), as pooling's `to=` does. The new dim's size is known
when the input's is, else only at run time: nothing is frozen at ONNX export (catalogue §3
rows 8 and 9: TAM's temporal shifts, attention-gate crops, circular padding).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    ChoiceArg,
    Cost,
    DimArg,
    DimsArg,
    FloatArg,
    InferContext,
    IntArg,
    Op,
    OpError,
    Sample,
    Signature,
    perm_or_none,
    register,
)

INT64_MAX = 2**63 - 1  # ONNX Slice's "to the end"


def _declare(ctx: InferContext, op: str, new: str, size: int | None) -> None:
    """Size a dim the op creates; a run-time size leaves a spec's own declaration alone."""
    if size is None and ctx.known_size(new) is not None:
        return  # declared by the spec (`dim`); only the run time can check it
    try:
        ctx.new_dim(new, size)
    except OpError as err:
        raise OpError(f"{op}: {err.message}", arg="as", hints=err.hints) from None


def _fresh_name(op: str, x: TensorType, old: str, new: str) -> None:
    """`new` names a resized `old`: it must be a name x does not use."""
    if new == old:
        raise OpError(f"{op} changes the size of `{old}`, so the result's dim needs a new name",
                      arg="as", hints=(f"name it, e.g. `as={old}s`",))
    if new in x:
        raise OpError(f"{op} would give two dims named `{new}` ({x} has one)", arg="as",
                      hints=("pick a name the input does not use",))


@register
class Slice(Op):
    """slice(x, along: dim, start, end, step, as: new dim) -> x with `along` cut, named `as`.

    Keeps the entries start, start + step, ... before `end` along one dim, as Python's
    `x[start:end:step]` does: a negative `start` or `end` counts from the end of the run-time
    size (-1 is the last entry), out-of-range bounds are clamped, `end` left out runs to the
    end, and `step` is at least 1. The cut dim gets the new name `as`, sized at compile time
    when `along`'s size is fixed (an empty result is then an error), else at run time. A slice
    that is empty at every size (`start=3, end=2`, `start=-1, end=-2`) is an error.
    E.g. TAM-style neighbours in time, x: [N, C, T]: `prev = slice(x, along=T, end=-1, as=Tm)`
    and `next = slice(x, along=T, start=1, as=Tm)`, both [N, C, Tm] with Tm = T - 1; every
    other column: `slice(x, along=W, step=2, as=W2)`. Lowered to torch indexing
    (`x[:, :, 1::2]`), NumPy basic slicing and ONNX Slice (opset 13) with constant starts,
    ends, axes and steps; ONNX's own rule for negative and out-of-range bounds is Python's.
    """

    name = "slice"
    signature = Signature(
        tensors=("x",),
        attrs={"along": DimArg(required=True, doc="the dim to cut"),
               "start": IntArg(default=0, doc="first index kept; negative counts from the end"),
               "end": IntArg(default=None, doc="index to stop before; left out: the end"),
               "step": IntArg(default=1, min=1, doc="stride between kept entries"),
               "as": DimArg(required=True, new=True, doc="name of the cut dim")},
    )
    traits = frozenset({"layout", "pure"})

    @staticmethod
    def length(n: int, start: int, end: int | None, step: int) -> int:
        """How many entries `[start:end:step]` keeps of a dim of size n (Python's rule)."""
        return len(range(n)[start:end:step])

    def _check(self, x: TensorType, attrs: dict[str, Any]) -> None:
        along, start, end = attrs["along"], attrs["start"], attrs["end"]
        if along not in x.real:
            raise OpError(f"slice cuts `{along}` but its input has dims {x}", arg="along",
                          hints=(f"cut one of {', '.join(x.real)}",))
        _fresh_name("slice", x, along, attrs["as"])
        if end is not None and (start >= 0) == (end >= 0) and end <= start:
            raise OpError(f"slice [{start}:{end}] is empty at every size of `{along}`",
                          arg="end", kind="hyper",
                          hints=(f"`end` must come after `start`, e.g. end={start + 1}"
                                 if start != -1 else "leave `end` out to run to the end",))

    def infer(self, ctx, ins, attrs):
        (x,) = ins
        self._check(x, attrs)
        along, new = attrs["along"], attrs["as"]
        n = ctx.known_size(along)
        size = None if n is None else self.length(n, attrs["start"], attrs["end"], attrs["step"])
        if size == 0:
            end = "" if attrs["end"] is None else attrs["end"]
            raise OpError(f"slice [{attrs['start']}:{end}:{attrs['step']}] of `{along}` "
                          f"(size {n}) keeps nothing", arg="start", kind="hyper",
                          hints=(f"start and end lie within -{n} .. {n}",))
        _declare(ctx, "slice", new, size)
        return x.replace(along, (new,))

    def resolve(self, ins, out, attrs):
        return {"axis": ins[0].index(attrs["along"]), "start": attrs["start"],
                "end": attrs["end"], "step": attrs["step"]}

    # ---- lowerings: every backend's own slicing, which all follow Python's bounds rule ----
    def numpy(self, x, *, axis, start, end, step):
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, end, step)
        return np.ascontiguousarray(x[tuple(index)])

    def torch(self, e, x, *, axis, start, end, step):
        cut = f"{start or ''}:{'' if end is None else end}" + (f":{step}" if step != 1 else "")
        return f"{x}[{', '.join([':'] * axis + [cut])}]"

    def onnx(self, e, x, *, axis, start, end, step):
        stop = INT64_MAX if end is None else end
        return e.op("Slice", [x, e.const_i64((start,)), e.const_i64((stop,)),
                              e.const_i64((axis,)), e.const_i64((step,))])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(bytes_moved=8 * math.prod(out_shape))

    def samples(self):
        # sizes: N=2, C=6, H=5, W=7, T=3 unless a sample sets its own
        return [
            # a negative start against the size: the last four of W=7, in the middle
            Sample(inputs=(("N", "C", "W"),), attrs={"along": "W", "start": -4, "as": "V"}),
            # both bounds and a step; the cut dim first
            Sample(inputs=(("T", "N", "C"),), attrs={"along": "T", "start": 1, "end": 10,
                                                    "step": 3, "as": "U"}, sizes={"T": 11}),
            # a negative end (drop the last two), the cut dim last
            Sample(inputs=(("N", "C", "H"),), attrs={"along": "H", "end": -2, "as": "Hc"},
                   sizes={"H": 13}),
            # every other entry from the start; bounds beyond the size are clamped
            Sample(inputs=(("N", "C", "H", "W"),),
                   attrs={"along": "C", "start": -100, "end": 100, "step": 2, "as": "D"},
                   sizes={"C": 8}),
        ]


@register
class Pick(Op):
    """pick(x, along: dim, index) -> x without `along`: the entry `index` of that dim.

    Internal: the algebra pass writes it when it splits a sum over a stacked dim into one
    term per stacked tensor (SK's `sum(a * stack(u1, u2), over=B)` becomes
    `pick(a, B, 0) * u1 + pick(a, B, 1) * u2`, with no [N, B, C, H, W] tensor). The dim's size
    is fixed (a stack's), so the index is checked at compile time. Lowered to torch's
    `x.select` (a view), NumPy `take` and ONNX Gather with a scalar index, which drops the axis.
    """

    name = "pick"
    signature = Signature(
        tensors=("x",),
        attrs={"along": DimArg(required=True, doc="the dim to index"),
               "index": IntArg(required=True, min=0, doc="which entry")},
    )
    traits = frozenset({"layout", "pure", "internal"})

    def infer(self, ctx, ins, attrs):
        (x,) = ins
        along = attrs["along"]
        if along not in x.real:
            raise OpError(f"pick indexes `{along}` but its input has dims {x}", arg="along")
        size = ctx.require_size(along, "pick")
        if attrs["index"] >= size:
            raise OpError(f"pick index {attrs['index']} is past `{along}` (size {size})",
                          arg="index")
        return TensorType(tuple(d for d in x.dims if d != along), x.bcast, x.dtype)

    def resolve(self, ins, out, attrs):
        return {"axis": ins[0].index(attrs["along"]), "index": attrs["index"]}

    def numpy(self, x, *, axis, index):
        return np.ascontiguousarray(np.take(x, index, axis=axis))

    def torch(self, e, x, *, axis, index):
        return f"{x}.select({axis}, {index})"

    def onnx(self, e, x, *, axis, index):
        one = e.op("Gather", [x, e.const_i64((index,))], axis=axis)
        return e.op("Squeeze", [one, e.const_i64((axis,))])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(bytes_moved=8 * math.prod(out_shape))

    def samples(self):
        return [
            Sample(inputs=(("N", "B", "C"),), attrs={"along": "B", "index": 1},
                   sizes={"B": 3}),
            Sample(inputs=(("N", "C", "H", "B"),), attrs={"along": "B", "index": 0},
                   sizes={"B": 4}),
        ]


PAD_MODES = ("constant", "reflect", "replicate", "circular")
_NUMPY_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
                "circular": "wrap"}
_ONNX_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


@register
class Pad(Op):
    """pad(x, over: dims, width, before, after, mode, value, as: new dims) -> x, `over` widened.

    Widens each of the 1 to 3 dims `over` by `before` entries in front and `after` behind;
    `width` sets both at once (`before`/`after` given as well override their side), and every
    `over` dim gets the same widths (pad one dim at a time for different ones). The padded
    dims get new names `as`, one per `over` dim, sized n + before + after. Modes, as torch's
    `F.pad`: "constant" fills with `value`; "reflect" mirrors without repeating the edge
    (needs before, after < n); "replicate" repeats the edge entry; "circular" wraps around
    (needs before, after <= n). The limits are checked at compile time where n is fixed; at
    run time torch and NumPy raise, while onnxruntime's result is unspecified.
    E.g. a circular ECA-style neighbourhood over channels, y: [N, C]:
    `pad(y, over=C, width=1, mode="circular", as=Cp)` -> [N, Cp], Cp = C + 2; a one-pixel
    zero border `pad(x, over=H W, width=1, as=Hp Wp)` -> [N, C, Hp, Wp].
    Lowered to torch `F.pad` (the `over` dims moved last, the others flattened to one, which
    every mode accepts), `np.pad` (edge, wrap) and ONNX Pad with an `axes` input (opset 18:
    constant, reflect, edge); ONNX's "wrap" needs opset 19, so "circular" becomes per dim a
    Concat of the tail Slice, the tensor and the head Slice.
    """

    name = "pad"
    signature = Signature(
        tensors=("x",),
        attrs={"over": DimsArg(required=True, doc="the 1 to 3 dims to widen"),
               "width": IntArg(default=None, min=0, doc="entries added on both sides"),
               "before": IntArg(default=None, min=0, doc="entries added in front"),
               "after": IntArg(default=None, min=0, doc="entries added behind"),
               "mode": ChoiceArg(default="constant", choices=PAD_MODES,
                                 doc="what the new entries hold"),
               "value": FloatArg(default=0.0, doc="the fill of mode \"constant\""),
               "as": DimsArg(required=True, doc="names of the padded dims, one per `over`")},
    )
    traits = frozenset({"pure"})

    @staticmethod
    def widths(attrs: dict[str, Any]) -> tuple[int, int]:
        width = attrs["width"] or 0
        before = width if attrs["before"] is None else attrs["before"]
        after = width if attrs["after"] is None else attrs["after"]
        return before, after

    def _check(self, x: TensorType, attrs: dict[str, Any]) -> tuple[int, int]:
        over, new, mode = attrs["over"], attrs["as"], attrs["mode"]
        if not 1 <= len(over) <= 3:
            raise OpError(f"pad widens 1 to 3 dims, not {len(over)}", arg="over",
                          hints=("pad the others with a second pad",))
        if len(set(over)) != len(over):
            raise OpError(f"pad names a dim twice in `over={' '.join(over)}`", arg="over")
        for d in over:
            if d not in x.real:
                raise OpError(f"pad widens `{d}` but its input has dims {x}", arg="over",
                              hints=(f"pad some of {', '.join(x.real)}",))
        if len(new) != len(over):
            raise OpError(f"`as` names {len(new)} dims for the {len(over)} padded dims "
                          f"`{' '.join(over)}`", arg="as",
                          hints=("give each padded dim a new name, e.g. `as="
                                 + " ".join(f"{d}p" for d in over) + "`",))
        if len(set(new)) != len(new):
            raise OpError(f"`as` names a dim twice: `{' '.join(new)}`", arg="as")
        for old, name in zip(over, new, strict=True):
            _fresh_name("pad", x, old, name)
        before, after = self.widths(attrs)
        if before == after == 0:
            raise OpError("pad adds nothing: every width is 0", arg="width", kind="hyper",
                          hints=("set `width`, or `before` / `after`",))
        if mode != "constant" and attrs["value"] != 0.0:
            raise OpError(f'`value` fills mode "constant" only, not "{mode}"', arg="value",
                          hints=('leave `value` out, or use mode="constant"',))
        return before, after

    def infer(self, ctx, ins, attrs):
        (x,) = ins
        before, after = self._check(x, attrs)
        mode = attrs["mode"]
        for old, new in zip(attrs["over"], attrs["as"], strict=True):
            n = ctx.known_size(old)
            if n is not None and mode in ("reflect", "circular"):
                limit = n - 1 if mode == "reflect" else n
                if max(before, after) > limit:
                    what = "less than" if mode == "reflect" else "at most"
                    raise OpError(
                        f'pad mode "{mode}" needs widths {what} the size of `{old}` ({n}), '
                        f"got before={before}, after={after}", arg="mode", kind="hyper",
                        hints=('mode "replicate" or "constant" takes any width',))
            _declare(ctx, "pad", new, None if n is None else n + before + after)
        mapping = dict(zip(attrs["over"], attrs["as"], strict=True))
        return TensorType(tuple(mapping.get(d, d) for d in x.dims))

    def resolve(self, ins, out, attrs):
        (x,) = ins
        over, new = attrs["over"], attrs["as"]
        rest = tuple(d for d in x.dims if d not in over)
        canon_out = rest + tuple(new)
        before, after = self.widths(attrs)
        return {"axes": x.axes(over), "lead": x.axes(rest),
                "perm_in": perm_or_none(x.axes(rest + tuple(over))),
                "perm_out": perm_or_none(tuple(canon_out.index(d) for d in out.dims)),
                "before": before, "after": after, "mode": attrs["mode"],
                "value": float(attrs["value"])}

    # ---- lowerings ----
    def numpy(self, x, *, axes, lead, perm_in, perm_out, before, after, mode, value):
        for a in axes:
            n = x.shape[a]
            if (mode == "reflect" and max(before, after) >= n) or (
                    mode == "circular" and max(before, after) > n):
                raise ValueError(f'pad mode "{mode}": widths {before}, {after} too large for a '
                                 f"dim of size {n}")
        widths = [(before, after) if a in axes else (0, 0) for a in range(x.ndim)]
        extra = {"constant_values": value} if mode == "constant" else {}
        return np.pad(x, widths, mode=_NUMPY_MODES[mode], **extra).astype(np.float32)

    def torch(self, e, x, *, axes, lead, perm_in, perm_out, before, after, mode, value):
        # F.pad's non-constant modes take (C, *padded) or (N, C, *padded): move the padded
        # dims last and flatten the others into one leading dim (or add one)
        t = f"{x}.permute{perm_in}" if perm_in else x
        k = len(lead)
        if k == 0:
            t = f"{t}.unsqueeze(0)"
        elif k > 1:
            t = f"{t}.flatten(0, {k - 1})"
        pads = (before, after) * len(axes)
        extra = f", value={value!r}" if mode == "constant" else ""
        t = f"F.pad({t}, {pads}, mode={mode!r}{extra})"
        if k == 0:
            t = f"{t}.squeeze(0)"
        elif k > 1:
            sizes = ", ".join(f"{x}.shape[{a}]" for a in lead)
            t = f"{t}.unflatten(0, ({sizes}))"
        return f"{t}.permute{perm_out}" if perm_out else t

    def onnx(self, e, x, *, axes, lead, perm_in, perm_out, before, after, mode, value):
        if mode != "circular":
            pads = e.const_i64((before,) * len(axes) + (after,) * len(axes))
            fill = e.const_f32(value) if mode == "constant" else ""
            return e.op("Pad", [x, pads, fill, e.const_i64(axes)], mode=_ONNX_MODES[mode])
        # "wrap" is opset 19: per dim, [the last `before` entries, x, the first `after` ones]
        t = x
        for a in axes:
            parts = []
            if before:
                parts.append(e.op("Slice", [t, e.const_i64((-before,)),
                                            e.const_i64((INT64_MAX,)), e.const_i64((a,))]))
            parts.append(t)
            if after:
                parts.append(e.op("Slice", [t, e.const_i64((0,)), e.const_i64((after,)),
                                            e.const_i64((a,))]))
            t = e.op("Concat", parts, axis=a)
        return t

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(bytes_moved=4 * (math.prod(in_shapes[0]) + math.prod(out_shape)))

    def samples(self):
        # sizes: N=2, C=6, H=5, W=7, T=3 unless a sample sets its own; padded sizes distinct
        return [
            # a zero border around a 2-D map, the padded dims in the middle
            Sample(inputs=(("N", "H", "W", "C"),),
                   attrs={"over": ("H", "W"), "width": 2, "as": ("Hp", "Wp")},
                   sizes={"C": 4}),
            # a constant fill, one-sided, over a permuted pair
            Sample(inputs=(("N", "C", "H", "W"),),
                   attrs={"over": ("W", "H"), "before": 2, "mode": "constant", "value": -1.5,
                          "as": ("Wp", "Hp")}, sizes={"H": 8}),
            # reflect: widths below the size, before != after
            Sample(inputs=(("N", "C", "H", "W"),),
                   attrs={"over": ("H", "W"), "width": 3, "after": 4, "mode": "reflect",
                          "as": ("Hp", "Wp")}, sizes={"H": 9, "W": 11}),
            # replicate over the first dim, widths beyond the size
            Sample(inputs=(("T", "N", "C"),),
                   attrs={"over": ("T",), "before": 5, "after": 4, "mode": "replicate",
                          "as": ("Tp",)}),
            # circular over channels only (ECA's wrap-around neighbours), no other dims
            Sample(inputs=(("C",),), attrs={"over": ("C",), "width": 2, "mode": "circular",
                                            "as": ("Cp",)}),
            # circular, 3-D, widths up to the size, several other dims flattened
            Sample(inputs=(("N", "T", "C", "H", "W"),),
                   attrs={"over": ("T", "H", "W"), "before": 3, "after": 1,
                          "mode": "circular", "as": ("Tp", "Hp", "Wp")},
                   sizes={"C": 4, "W": 8}),
            # reflect, 1-D, no other dim but the batch
            Sample(inputs=(("W", "N"),), attrs={"over": ("W",), "width": 6, "mode": "reflect",
                                                "as": ("Wp",)}, sizes={"W": 9}),
        ]
