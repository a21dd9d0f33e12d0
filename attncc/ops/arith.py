"""Arithmetic with broadcasting by name: + - * / and scalar constants.

Operands are aligned to the result's dims by the canonicalize pass, so the lowerings here see
tensors of equal rank and order (with size-1 dims where an operand lacked a dim).
"""

from __future__ import annotations

import math

import numpy as np

from attncc.dims import TensorType, broadcast
from attncc.ops.base import Cost, FloatArg, Op, OpError, Sample, Signature, register


class _Binary(Op):
    signature = Signature(tensors=("a", "b"))
    traits = frozenset({"elementwise", "binary", "pure"})
    symbol = ""
    verb = ""
    onnx_op = ""

    def infer(self, ctx, ins, attrs):
        a, b = ins
        out = broadcast(a, b)
        if out is None:
            raise OpError(
                f"cannot {self.verb} {a} and {b}",
                hints=("broadcasting is by name: one operand's dims must all appear in the "
                       "other's",),
            )
        return out

    def aligned_inputs(self, ins, out):
        # a rank-0 operand (a number) broadcasts as it is
        return [None if t.dims == out.dims or not t.dims else TensorType(out.dims) for t in ins]

    def numpy(self, a, b):
        return self.apply(a, b).astype(np.float32)

    def torch(self, e, a, b):
        return f"{a} {self.symbol} {b}"

    def torch_inplace(self, e, a, b):
        return f"{a}.{self.name}_({b})"  # Tensor.add_, sub_, mul_, div_

    def onnx(self, e, a, b):
        return e.op(self.onnx_op, [a, b])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        n = math.prod(out_shape)
        return Cost(flops=n, bytes_moved=12 * n)

    def samples(self):
        return [
            Sample(inputs=(("N", "C", "H", "W"), ("N", "C"))),
            Sample(inputs=(("N", "H", "W"), ("N", "C", "H", "W"))),
            Sample(inputs=(("N", "C"), ("C", "N"))),
        ]


@register
class Add(_Binary):
    """add(a, b) -> broadcast(a, b).  `a + b`."""

    name = "add"
    symbol, verb, onnx_op = "+", "add", "Add"
    traits = _Binary.traits | {"commutative"}
    apply = staticmethod(np.add)


@register
class Sub(_Binary):
    """sub(a, b) -> broadcast(a, b).  `a - b`."""

    name = "sub"
    symbol, verb, onnx_op = "-", "subtract", "Sub"
    apply = staticmethod(np.subtract)


@register
class Mul(_Binary):
    """mul(a, b) -> broadcast(a, b).  `a * b`: every gate's application, e.g. SE eq. (2)."""

    name = "mul"
    symbol, verb, onnx_op = "*", "multiply", "Mul"
    traits = _Binary.traits | {"commutative"}
    apply = staticmethod(np.multiply)


@register
class Div(_Binary):
    """div(a, b) -> broadcast(a, b).  `a / b`."""

    name = "div"
    symbol, verb, onnx_op = "/", "divide", "Div"
    apply = staticmethod(np.divide)


class _Extremum(_Binary):
    """Element-wise max/min; torch's `maximum`/`minimum` take tensors only, so a number
    operand (an inlined `scalar`) becomes a clamp bound instead."""

    traits = _Binary.traits | {"commutative"}
    torch_fn = ""
    clamp = ""

    def torch(self, e, a, b):
        if _is_number(b):
            return f"torch.{self.clamp}({a}, {b})"
        if _is_number(a):
            return f"torch.{self.clamp}({b}, {a})"
        return f"torch.{self.torch_fn}({a}, {b})"

    def torch_inplace(self, e, a, b):
        return None  # no Tensor.maximum_


def _is_number(expr: str) -> bool:
    try:
        float(expr)
    except ValueError:
        return False
    return True


@register
class Maximum(_Extremum):
    """maximum(a, b) -> broadcast(a, b).  The element-wise larger operand, e.g. `maximum(x, 0)`."""

    name = "maximum"
    verb, onnx_op, torch_fn, clamp = "take the maximum of", "Max", "maximum", "clamp_min"
    apply = staticmethod(np.maximum)


@register
class Minimum(_Extremum):
    """minimum(a, b) -> broadcast(a, b).  The element-wise smaller operand."""

    name = "minimum"
    verb, onnx_op, torch_fn, clamp = "take the minimum of", "Min", "minimum", "clamp_max"
    apply = staticmethod(np.minimum)


@register
class Neg(Op):
    """neg(x) -> x.  `-x`."""

    name = "neg"
    signature = Signature(tensors=("x",))
    traits = frozenset({"elementwise", "pure"})

    def infer(self, ctx, ins, attrs):
        return ins[0]

    def numpy(self, x):
        return np.negative(x)

    def torch(self, e, x):
        return f"-{x}"

    def onnx(self, e, x):
        return e.op("Neg", [x])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        n = math.prod(out_shape)
        return Cost(flops=n, bytes_moved=8 * n)

    def samples(self):
        return [Sample(inputs=(("N", "C"),))]


@register
class Scalar(Op):
    """scalar(value: float) -> [].  A number inside a tensor expression, e.g. `x * 0.5`."""

    name = "scalar"
    signature = Signature(tensors=(), attrs={"value": FloatArg(required=True)})
    traits = frozenset({"constant", "pure", "internal"})

    def infer(self, ctx, ins, attrs):
        return TensorType(())

    def resolve(self, ins, out, attrs):
        return {"value": float(attrs["value"])}

    def numpy(self, *, value):
        return np.array(value, dtype=np.float32)

    def torch(self, e, *, value):
        return repr(float(value))

    def onnx(self, e, *, value):
        return e.const_f32(value)

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost()

    def samples(self):
        return [Sample(inputs=(), attrs={"value": 0.25})]
