"""Reductions over named dims: the squeeze stage's summaries (survey eq. 1 and kin)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import Cost, DimsArg, InferContext, Op, OpError, Sample, Signature, register


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
