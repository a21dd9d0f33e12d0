"""Normalised exponentials over named dims: the weights of non-local, GC and SK attention."""

from __future__ import annotations

import math

import numpy as np

from attncc.ops.base import Cost, DimsArg, Op, OpError, Sample, Signature, register


@register
class Softmax(Op):
    """softmax(x, over: dims) -> x.  exp(x - max) / sum exp(x - max) over one or more dims.

    Non-local's pairwise weights over (Hs Ws), GC block's context weights over (H W), SK's
    selection across its branch dim B (eq. 71).
    """

    name = "softmax"
    signature = Signature(tensors=("x",), attrs={"over": DimsArg(required=True)},
                          positional=("over",))
    traits = frozenset({"pure"})

    def infer(self, ctx, ins, attrs):
        (x,) = ins
        over = attrs["over"]
        if not over:
            raise OpError("softmax needs at least one dim to normalise over", arg="over")
        missing = [d for d in over if d not in x]
        if missing:
            raise OpError(f"softmax normalises over `{missing[0]}` but its input has dims {x}",
                          arg="over", hints=(f"the input's dims are {x}",))
        if len(set(over)) != len(over):
            raise OpError(f"softmax names a dim twice in `over={' '.join(over)}`", arg="over")
        return x

    def resolve(self, ins, out, attrs):
        return {"axes": ins[0].axes(attrs["over"])}

    def numpy(self, x, *, axes):
        z = np.exp(x.astype(np.float64) - np.max(x, axis=axes, keepdims=True))
        return (z / np.sum(z, axis=axes, keepdims=True)).astype(np.float32)

    def torch(self, e, x, *, axes):
        if len(axes) == 1:
            return f"torch.softmax({x}, dim={axes[0]})"
        first, last = min(axes), max(axes)
        if sorted(axes) == list(range(first, last + 1)):
            # adjacent dims: one softmax over them flattened (a view when x is contiguous
            # there), one temporary instead of the three of exp(x - logsumexp(x))
            sizes = ", ".join(f"{x}.shape[{i}]" for i in range(first, last + 1))
            return (f"torch.softmax({x}.flatten({first}, {last}), dim={first})"
                    f".unflatten({first}, ({sizes}))")
        # exp(x - logsumexp x): stable, and right for run-time sizes with no reshape
        return f"torch.exp({x} - torch.logsumexp({x}, dim={axes}, keepdim=True))"

    def onnx(self, e, x, *, axes):
        if len(axes) == 1:
            return e.op("Softmax", [x], axis=axes[0])
        ax = e.const_i64(axes)
        z = e.op("Exp", [e.op("Sub", [x, e.op("ReduceMax", [x, ax], keepdims=1)])])
        return e.op("Div", [z, e.op("ReduceSum", [z, ax], keepdims=1)])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        n = math.prod(in_shapes[0])
        return Cost(flops=5 * n, bytes_moved=8 * n)

    def samples(self):
        return [
            Sample(inputs=(("N", "C", "H", "W"),), attrs={"over": ("H", "W")}),
            Sample(inputs=(("N", "C", "T"),), attrs={"over": ("C",)}),
            Sample(inputs=(("N", "B", "C"),), attrs={"over": ("B",)}, sizes={"B": 4}),
            Sample(inputs=(("N", "C", "H", "W"),), attrs={"over": ("W", "N")}),
        ]
