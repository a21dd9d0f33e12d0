"""Cutting a dim into named pieces: the `a, b = split(x, L -> H W)` construct's op.

Each piece is one `narrow` node. A piece's size, and where it starts, are the run-time sizes
of the piece dims (H, W), so the node takes, after the tensor it cuts, one "witness" tensor
per piece dim up to its own: a tensor that has that dim, whose shape gives its size (the
elaborator picks them, e.g. the block input declaring H). No size is frozen at export.
"""

from __future__ import annotations

import math

import numpy as np

from attncc.ops.base import Cost, DimArg, DimsArg, Op, OpError, Sample, Signature, register


@register
class Narrow(Op):
    """narrow(x, witness..., along: dim, pieces: dims) -> x with `along` cut to pieces[-1].

    The last of `pieces` is this node's piece; the ones before it come first along `along`.
    Coordinate attention's split of the joined [H + W] map back into H and W, survey eq. (104).
    """

    name = "narrow"
    signature = Signature(
        tensors=("x",),
        attrs={"along": DimArg(required=True), "pieces": DimsArg(required=True)},
        variadic=True,
    )
    traits = frozenset({"layout", "pure", "internal"})

    def infer(self, ctx, ins, attrs):
        x, *witnesses = ins
        along, pieces = attrs["along"], attrs["pieces"]
        if along not in x:
            raise OpError(f"split cuts `{along}` but its input has dims {x}", arg="along")
        if len(witnesses) != len(pieces):
            raise OpError(f"narrow needs one witness per piece, got {len(witnesses)}")
        for w, d in zip(witnesses, pieces, strict=True):
            if d not in w.real:
                raise OpError(f"the witness of `{d}` has dims {w}")
        piece = pieces[-1]
        if piece in x and piece != along:
            raise OpError(f"split would give two dims named `{piece}`", arg="pieces")
        return x.replace(along, (piece,))

    def aligned_inputs(self, ins, out):
        return [None] * len(ins)  # witnesses lend sizes only

    def resolve(self, ins, out, attrs):
        x, *witnesses = ins
        return {"axis": x.index(attrs["along"]),
                "size_axes": tuple(w.index(d) for w, d in zip(witnesses, attrs["pieces"],
                                                               strict=True))}

    def numpy(self, x, *witnesses, axis, size_axes):
        sizes = [w.shape[a] for w, a in zip(witnesses, size_axes, strict=True)]
        start = sum(sizes[:-1])
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, start + sizes[-1])
        return np.ascontiguousarray(x[tuple(index)])

    def torch(self, e, x, *witnesses, axis, size_axes):
        sizes = [f"{w}.shape[{a}]" for w, a in zip(witnesses, size_axes, strict=True)]
        start = " + ".join(sizes[:-1]) or "0"
        return f"{x}.narrow({axis}, {start}, {sizes[-1]})"

    def onnx(self, e, x, *witnesses, axis, size_axes):
        sizes = [e.op("Shape", [w], start=a, end=a + 1)
                 for w, a in zip(witnesses, size_axes, strict=True)]
        start = e.const_i64((0,))
        for s in sizes[:-1]:
            start = e.op("Add", [start, s])
        end = e.op("Add", [start, sizes[-1]])
        return e.op("Slice", [x, start, end, e.const_i64((axis,))])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(bytes_moved=8 * math.prod(out_shape))

    def samples(self):
        # x: [N, C, L] cut into H then W; the witnesses carry H and W
        return [
            Sample(inputs=(("N", "C", "L"), ("N", "H"), ("W", "N", "H")),
                   attrs={"along": "L", "pieces": ("H", "W")}, sizes={"L": 12}),
            Sample(inputs=(("L", "C"), ("H", "N")),
                   attrs={"along": "L", "pieces": ("H",)}, sizes={"L": 9}),
        ]


