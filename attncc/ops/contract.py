"""Tensor contraction over named dims: the matrix products of non-local, GC and DANet."""

from __future__ import annotations

import math
import string
from typing import Any

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import Cost, DimsArg, InferContext, Op, OpError, Sample, Signature, register


@register
class Contract(Op):
    """contract(a, b, over: dims) -> a's other dims, then b's dims not in a.

    Sums the product of `a` and `b` over the named dims `over`, which both must have; every
    other dim both have is a batch dim, kept once; a dim only one has is kept. So with
    q: [N, D, H, W] and k: [N, D, Hs, Ws], `contract(q, k, over=D)` is non-local's affinity
    [N, H, W, Hs, Ws] (catalogue §4.9, survey eqs. 39-40), and `contract(x, p, over=H W)` with
    p: [N, H, W] is GC's context [N, C]. Lowered to one einsum (ONNX Einsum, opset 12).
    """

    name = "contract"
    signature = Signature(tensors=("a", "b"), attrs={"over": DimsArg(required=True)})
    traits = frozenset({"pure"})

    def infer(self, ctx: InferContext, ins: list[TensorType], attrs: dict[str, Any]) -> TensorType:
        a, b = ins
        over: tuple[str, ...] = attrs["over"]
        if not over:
            raise OpError("contract needs at least one dim to sum over", arg="over",
                          hints=("for a product without a sum, multiply: `a * b`",))
        if len(set(over)) != len(over):
            raise OpError(f"contract names a dim twice in `over={' '.join(over)}`", arg="over")
        shared = [d for d in a.dims if d in b]
        for d in over:
            if d not in a or d not in b:
                which = "either input" if d not in a and d not in b else (
                    f"`b` {b}" if d in a else f"`a` {a}")
                raise OpError(
                    f"contract sums over `{d}`, which {which} lacks (a: {a}, b: {b})", arg="over",
                    hints=(f"sum over dims both have: {' '.join(shared)}" if shared
                           else "the inputs share no dim; rename one side's dim first",))
        if len(set(a.dims) | set(b.dims)) > len(string.ascii_lowercase):
            raise OpError("contract handles at most 26 distinct dims", arg="over")
        return TensorType(tuple(d for d in a.dims if d not in over)
                          + tuple(d for d in b.dims if d not in a))

    def resolve(self, ins, out, attrs):
        a, b = ins
        names = list(dict.fromkeys(a.dims + b.dims))
        letter = {d: string.ascii_lowercase[i] for i, d in enumerate(names)}
        side = lambda t: "".join(letter[d] for d in t.dims)  # noqa: E731
        return {"equation": f"{side(a)},{side(b)}->{side(out)}"}

    def numpy(self, a, b, *, equation):
        return np.einsum(equation, a.astype(np.float64), b.astype(np.float64)).astype(np.float32)

    def torch(self, e, a, b, *, equation):
        return f"torch.einsum({equation!r}, {a}, {b})"

    def onnx(self, e, a, b, *, equation):
        return e.op("Einsum", [a, b], equation=equation)

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        # the output starts with a's kept dims, so a's numel over their product is the size of
        # the summed dims; every output element is a dot product of that length
        a_shape, b_shape = in_shapes
        kept = math.prod(out_shape[: len(a_shape) - len(attrs["over"])])
        summed = math.prod(a_shape) // kept if kept else 0
        macs = math.prod(out_shape) * summed
        n = math.prod(a_shape) + math.prod(b_shape) + math.prod(out_shape)
        return Cost(flops=2 * macs, bytes_moved=4 * n)

    def samples(self):
        return [
            # non-local affinity: queries against sub-sampled keys
            Sample(inputs=(("N", "D", "H", "W"), ("N", "D", "Hs", "Ws")), attrs={"over": ("D",)},
                   sizes={"D": 4, "Hs": 3, "Ws": 8}),
            # non-local aggregation: attention map times values, over the key grid
            Sample(inputs=(("N", "H", "W", "Hs", "Ws"), ("N", "D", "Hs", "Ws")),
                   attrs={"over": ("Ws", "Hs")}, sizes={"D": 4, "Hs": 3, "Ws": 8}),
            # GC context: features weighted by a spatial softmax
            Sample(inputs=(("N", "C", "H", "W"), ("W", "N", "H")), attrs={"over": ("H", "W")}),
            # no batch dim, b's kept dim first: a plain matrix product
            Sample(inputs=(("C", "T"), ("D", "C")), attrs={"over": ("C",)}, sizes={"D": 4}),
        ]
