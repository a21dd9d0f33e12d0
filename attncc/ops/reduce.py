"""Reductions over named dims: the squeeze stage's summaries (survey eq. 1 and kin)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    Cost,
    DimsArg,
    InferContext,
    IntArg,
    Op,
    OpError,
    Sample,
    Signature,
    register,
)


class _Reduce(Op):
    signature = Signature(tensors=("x",), attrs={"over": DimsArg(required=True)},
                          positional=("over",))
    traits = frozenset({"reduction", "pure"})
    onnx_op = ""
    torch_method = ""
    numpy_fn: Any = None

    def infer(self, ctx: InferContext, ins: list[TensorType], attrs: dict[str, Any]) -> TensorType:
        (x,) = ins
        missing = [d for d in attrs["over"] if d not in x]
        if missing:
            raise OpError(f"{self.name} reduces `{missing[0]}` but its input has dims {x}",
                          arg="over", hints=(f"the input's dims are {x}",))
        return x.without(attrs["over"])

    def resolve(self, ins, out, attrs):
        return {"axes": ins[0].axes(attrs["over"])}

    def numpy(self, x, *, axes):
        return self.numpy_fn(x, axis=axes).astype(np.float32)

    def torch(self, e, x, *, axes):
        return f"{x}.{self.torch_method}(dim={axes})"

    def onnx(self, e, x, *, axes):
        return e.op(self.onnx_op, [x, e.const_i64(axes)], keepdims=0)

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(flops=math.prod(in_shapes[0]), bytes_moved=4 * math.prod(in_shapes[0]))

    def samples(self):
        return [
            Sample(inputs=(("N", "C", "H", "W"),), attrs={"over": ("H", "W")}),
            Sample(inputs=(("N", "C", "H", "W"),), attrs={"over": ("C",)}),
            Sample(inputs=(("N", "C", "T"),), attrs={"over": ("N", "T")}),
        ]


@register
class Mean(_Reduce):
    """mean(x, over: dims) -> x without `over`.  SE squeeze, survey eq. (1)."""

    name = "mean"
    onnx_op = "ReduceMean"
    torch_method = "mean"
    numpy_fn = staticmethod(np.mean)


@register
class Max(_Reduce):
    """max(x, over: dims) -> x without `over`.  CBAM's max-pooled descriptors, eqs. (77)-(80)."""

    name = "max"
    onnx_op = "ReduceMax"
    torch_method = "amax"
    numpy_fn = staticmethod(np.max)


@register
class Min(_Reduce):
    """min(x, over: dims) -> x without `over`."""

    name = "min"
    onnx_op = "ReduceMin"
    torch_method = "amin"
    numpy_fn = staticmethod(np.min)


@register
class Sum(_Reduce):
    """sum(x, over: dims) -> x without `over`.  SK's branch fusion, eq. (70)."""

    name = "sum"
    onnx_op = "ReduceSum"
    torch_method = "sum"
    numpy_fn = staticmethod(np.sum)


@register
class L2(_Reduce):
    """l2(x, over: dims) -> x without `over`.  Euclidean norm sqrt(sum x^2), e.g. F.normalize."""

    name = "l2"
    onnx_op = "ReduceL2"

    def numpy(self, x, *, axes):
        return np.sqrt(np.sum(np.square(x, dtype=np.float64), axis=axes)).astype(np.float32)

    def torch(self, e, x, *, axes):
        return f"torch.linalg.vector_norm({x}, dim={axes})"


@register
class LogSumExp(_Reduce):
    """logsumexp(x, over: dims) -> x without `over`.  log sum exp x, stably m + log sum exp(x - m).

    The smooth maximum (m is the maximum over `over`); ONNX ReduceLogSumExp, where
    onnxruntime subtracts the maximum as well.
    """

    name = "logsumexp"
    onnx_op = "ReduceLogSumExp"
    torch_method = "logsumexp"

    def numpy(self, x, *, axes):
        m = np.max(x, axis=axes, keepdims=True).astype(np.float64)
        s = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
        return np.squeeze(s, axis=axes).astype(np.float32)


# the generated module's variance: the deviations from the mean, squared and summed
VAR = """
def _var(x, dims: tuple[int, ...], correction: int):
    \"\"\"Variance over `dims` with divisor n - correction, in two passes.\"\"\"
    d = x - x.mean(dim=dims, keepdim=True)
    n = 1
    for i in dims:
        n *= x.shape[i]
    return (d * d).sum(dim=dims) / (n - correction)
"""


class _Moment(_Reduce):
    """Variance-like reductions: sum (x - mean)^2 / (n - correction), n the reduced count.

    n is the product of the reduced dims' run-time sizes, so in ONNX it is read from Shape.
    """

    signature = Signature(
        tensors=("x",),
        attrs={"over": DimsArg(required=True), "correction": IntArg(required=True, min=0)},
        positional=("over",),
    )
    root = False

    def resolve(self, ins, out, attrs):
        return {"axes": ins[0].axes(attrs["over"]), "correction": int(attrs["correction"])}

    def numpy(self, x, *, axes, correction):
        v = np.var(x.astype(np.float64), axis=axes, ddof=correction)
        return (np.sqrt(v) if self.root else v).astype(np.float32)

    def torch(self, e, x, *, axes, correction):
        # two passes, as the ONNX lowering: torch.var's CPU kernel (Welford) runs 6-20x slower
        # than a mean and a sum of squares on the bench machine (42 ms vs 7 ms over
        # [8, 256, 56, 56]); the two-pass form is as accurate
        v = f"{e.helper('_var', VAR)}({x}, {axes}, {correction})"
        return f"torch.sqrt({v})" if self.root else v

    def onnx(self, e, x, *, axes, correction):
        ax = e.const_i64(axes)
        d = e.op("Sub", [x, e.op("ReduceMean", [x, ax], keepdims=1)])
        ss = e.op("ReduceSum", [e.op("Mul", [d, d]), ax], keepdims=0)
        sizes = e.op("Cast", [e.op("Gather", [e.op("Shape", [x]), ax], axis=0)], to=1)  # FLOAT
        n = e.op("ReduceProd", [sizes], keepdims=0)
        if correction:
            n = e.op("Sub", [n, e.const_f32(float(correction))])
        v = e.op("Div", [ss, n])
        return e.op("Sqrt", [v]) if self.root else v

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(flops=4 * math.prod(in_shapes[0]), bytes_moved=8 * math.prod(in_shapes[0]))

    def samples(self):
        return [
            Sample(inputs=(("N", "C", "H", "W"),), attrs={"over": ("H", "W"), "correction": 1}),
            Sample(inputs=(("N", "C", "H", "W"),), attrs={"over": ("C",), "correction": 0}),
            Sample(inputs=(("N", "C", "T"),), attrs={"over": ("T", "N"), "correction": 2}),
        ]


@register
class Var(_Moment):
    """var(x, over: dims, correction: int) -> x without `over`.  Divisor n - correction.

    No default: torch's is unbiased (1) while SimAM's energy uses sum/(HW - 1) with a mean over
    HW, and LayerNorm-like statistics use 0; the spec states which.
    """

    name = "var"


@register
class Std(_Moment):
    """std(x, over: dims, correction: int) -> x without `over`.  sqrt of `var` with that divisor."""

    name = "std"
    root = True
