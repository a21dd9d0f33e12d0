"""Reshapes over named dims: `merge` several dims into one and `unmerge` one into several.

Both are permute + reshape, row-major: merging `H W -> P` gives P index h * W + w. The
lowerings never freeze a run-time size: torch flattens or unflattens, ONNX computes the
target shape from `Shape` at run time (a merged size is a `ReduceProd` of the pieces).
`unmerge` takes the pieces' run-time sizes from a witness tensor (`like=t`, a tensor that has
those dims, as `split`'s narrow nodes do); pieces of static size need none, and one piece
may be left for the reshape to infer.
"""

from __future__ import annotations

import math

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    Arg,
    Cost,
    Map,
    MapArg,
    Op,
    OpError,
    Sample,
    Signature,
    perm_or_none,
    register,
)


def _check_names(names: tuple[str, ...], role: str) -> None:
    if len(set(names)) != len(names):
        raise OpError(f"{role} names a dim twice: `{' '.join(names)}`", arg="map")


def _declare(ctx, name: str, size: int | None) -> None:
    """Declare an output dim; a run-time size never overrides one the block already fixes."""
    if size is None and ctx.known_size(name) is not None:
        return
    try:
        ctx.new_dim(name, size)
    except OpError as err:
        raise OpError(err.message, arg="map", hints=err.hints) from None


@register
class Merge(Op):
    """merge(x, map: dims -> new dim) -> x with the listed dims replaced by one dim.

    `merge(x, H W -> P)`: the dims H, W (adjacent or not) become P, row-major in the listed
    order (P = h * W + w), placed where the first of them stands in x; P's size is the
    product, known at run time only if a piece is. Nonlocal-style [N, C, HW] views, PSANet's
    HW x HW maps, the bilinear pooling's c' x c' channels.
    """

    name = "merge"
    signature = Signature(tensors=("x",), attrs={"map": MapArg(required=True, new_dst=True)},
                          positional=("map",))
    traits = frozenset({"layout", "pure"})

    def infer(self, ctx, ins, attrs):
        (x,) = ins
        src, dst = attrs["map"].src, attrs["map"].dst
        if len(dst) != 1:
            raise OpError(f"merge makes one dim, not `{' '.join(dst) or '()'}`", arg="map",
                          hints=("e.g. `merge(x, H W -> P)`",))
        if not src:
            raise OpError("merge needs the dims to merge, e.g. `merge(x, H W -> P)`", arg="map")
        _check_names(src, "merge")
        for d in src:
            if d not in x:
                raise OpError(f"merge takes `{d}` but its input has dims {x}", arg="map",
                              hints=(f"merge some of {', '.join(x.dims)}",))
        new = dst[0]
        if new in x:
            raise OpError(f"merge's new dim `{new}` is already a dim of {x}", arg="map",
                          hints=("the merged dim needs a new name",))
        sizes = [ctx.known_size(d) for d in src]
        _declare(ctx, new, None if None in sizes else math.prod(sizes))
        return self._out(x, src, new)

    @staticmethod
    def _out(x: TensorType, src: tuple[str, ...], new: str) -> TensorType:
        first = min(x.index(d) for d in src)
        kept = [d for d in x.dims if d not in src]
        at = sum(1 for d in x.dims[:first] if d not in src)
        return TensorType((*kept[:at], new, *kept[at:]))

    def resolve(self, ins, out, attrs):
        (x,) = ins
        src, new = attrs["map"].src, attrs["map"].dst[0]
        at = out.index(new)
        order = (*out.dims[:at], *src, *out.dims[at + 1 :])
        return {"perm": perm_or_none(x.axes(order)), "start": at, "count": len(src)}

    def numpy(self, x, *, perm, start, count):
        t = x.transpose(perm) if perm else x
        shape = (*t.shape[:start], math.prod(t.shape[start : start + count]),
                 *t.shape[start + count :])
        return np.ascontiguousarray(t).reshape(shape)

    def torch(self, e, x, *, perm, start, count):
        t = f"{x}.permute{perm}" if perm else x
        return f"{t}.flatten({start}, {start + count - 1})" if count > 1 else t

    def onnx(self, e, x, *, perm, start, count):
        t = e.op("Transpose", [x], perm=list(perm)) if perm else x
        if count == 1:
            return t
        parts = []
        if start > 0:
            parts.append(e.op("Shape", [t], start=0, end=start))
        group = e.op("Shape", [t], start=start, end=start + count)
        parts.append(e.op("ReduceProd", [group], keepdims=1))
        parts.append(e.op("Shape", [t], start=start + count))  # maybe empty: Concat allows it
        shape = e.op("Concat", parts, axis=0)
        return e.op("Reshape", [t, shape])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(bytes_moved=8 * math.prod(out_shape))

    def samples(self):
        return [
            Sample(inputs=(("N", "C", "H", "W"),), attrs={"map": _map(("H", "W"), ("P",))}),
            # not adjacent, listed against x's order: P = w * H + h, placed at W's position
            Sample(inputs=(("N", "W", "C", "H"),), attrs={"map": _map(("H", "W"), ("P",))}),
            Sample(inputs=(("C", "N", "T", "H"),), attrs={"map": _map(("T", "C", "H"), ("L",))},
                   sizes={"C": 4}),
            Sample(inputs=(("C", "T", "N"),), attrs={"map": _map(("N", "C"), ("B",))}),
        ]


@register
class Unmerge(Op):
    """unmerge(x, map: dim -> dims, like: tensor?) -> x with one dim cut into several.

    The inverse of `merge`: `unmerge(x, P -> H W, like=t)` reshapes P into H, W row-major,
    in P's place. Each piece's size comes from the witness `like` when it has that dim (so it
    stays a run-time size), else from the block's static size; at most one piece may have
    neither, and the reshape infers it from P.
    """

    name = "unmerge"
    signature = Signature(tensors=("x", "like"), optional=("like",),
                          attrs={"map": MapArg(required=True, new_dst=True),
                                 "sizes": Arg(doc="set by the shape rule, not by a spec")},
                          positional=("map",))
    traits = frozenset({"layout", "pure"})

    def infer(self, ctx, ins, attrs):
        x, *like = ins
        src, dst = attrs["map"].src, attrs["map"].dst
        if len(src) != 1:
            raise OpError(f"unmerge cuts one dim, not `{' '.join(src) or '()'}`", arg="map",
                          hints=("e.g. `unmerge(x, P -> H W, like=t)`",))
        if not dst:
            raise OpError("unmerge needs the dims to make, e.g. `P -> H W`", arg="map")
        _check_names(dst, "unmerge")
        (old,) = src
        if old not in x:
            raise OpError(f"unmerge cuts `{old}` but its input has dims {x}", arg="map",
                          hints=(f"cut one of {', '.join(x.dims)}",))
        for d in dst:
            if d in x and d != old:
                raise OpError(f"unmerge would give two dims named `{d}`", arg="map")
        witness = like[0].real if like else ()
        sizes = {d: ctx.known_size(d) for d in dst}
        free = [d for d in dst if sizes[d] is None and d not in witness]
        if len(free) > 1:
            raise OpError(
                f"unmerge cannot tell the sizes of `{' '.join(free)}`: they are known only at "
                f"run time", arg="map",
                hints=("pass a tensor that has them: `like=x`",
                       "or fix their sizes as hyperparameters"))
        total = ctx.known_size(old)
        fixed = [sizes[d] for d in dst if sizes[d] is not None]
        if total is not None and len(fixed) == len(dst) and math.prod(fixed) != total:
            raise OpError(f"unmerge cuts `{old}` = {total} into "
                          f"{' * '.join(map(str, fixed))} = {math.prod(fixed)}", arg="map")
        for d in dst:
            size = sizes[d]
            others = [sizes[o] for o in dst if o != d]
            if size is None and total is not None and None not in others:
                if total % math.prod(others):
                    raise OpError(f"unmerge cannot cut `{old}` = {total} into pieces of "
                                  f"{' * '.join(map(str, others))} and `{d}`", arg="map")
                size = total // math.prod(others)
                if d in witness:
                    continue  # the witness sizes it; a static size here would pin a run-time dim
            _declare(ctx, d, size)
        # the lowerings never see the IR's dim table: the static sizes travel as an attribute
        # that no spec can set (`Arg` kind); -1 marks the piece the reshape infers
        attrs["sizes"] = tuple(-1 if d in free else (sizes[d] or -1) for d in dst)
        return x.replace(old, dst)

    def aligned_inputs(self, ins, out):
        return [None] * len(ins)  # the witness lends sizes only

    def resolve(self, ins, out, attrs):
        x, *like = ins
        (old,), dst = attrs["map"].src, attrs["map"].dst
        witness = like[0] if like else None
        # per piece: (axis of the witness, or -1) and (static size, or -1: inferred)
        shape = tuple((witness.index(d) if witness is not None and d in witness.real else -1,
                       size) for d, size in zip(dst, attrs["sizes"], strict=True))
        return {"axis": x.index(old), "shape": shape}

    def numpy(self, x, *like, axis, shape):
        sizes = [like[0].shape[a] if a >= 0 else s for a, s in shape]
        return x.reshape((*x.shape[:axis], *sizes, *x.shape[axis + 1 :]))

    def torch(self, e, x, *like, axis, shape):
        sizes = [f"{like[0]}.shape[{a}]" if a >= 0 else str(s) for a, s in shape]
        return f"{x}.unflatten({axis}, ({', '.join(sizes)},))"

    def onnx(self, e, x, *like, axis, shape):
        parts = []
        if axis > 0:
            parts.append(e.op("Shape", [x], start=0, end=axis))
        parts += [e.op("Shape", [like[0]], start=a, end=a + 1) if a >= 0 else e.const_i64((s,))
                  for a, s in shape]
        parts.append(e.op("Shape", [x], start=axis + 1))  # maybe empty: Concat allows it
        return e.op("Reshape", [x, e.op("Concat", parts, axis=0)])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(bytes_moved=8 * math.prod(out_shape))

    def samples(self):
        return [
            # every piece from the witness (whose dims come in another order)
            Sample(inputs=(("N", "C", "P"), ("W", "N", "H")),
                   attrs={"map": _map(("P",), ("H", "W"))}, sizes={"P": 35}),
            # static pieces, no witness; the cut dim first
            Sample(inputs=(("P", "N", "C"),), attrs={"map": _map(("P",), ("W", "T"))},
                   sizes={"P": 21}),
            # one piece from the witness, one static, the last inferred from P
            Sample(inputs=(("N", "L"), ("H", "N")), attrs={"map": _map(("L",), ("H", "T", "D"))},
                   sizes={"L": 60, "D": 4}),
        ]


def _map(src: tuple[str, ...], dst: tuple[str, ...]) -> Map:
    return Map(src, dst)
