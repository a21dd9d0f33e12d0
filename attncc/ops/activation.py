"""Element-wise activations: the gate stage's squashing functions and pointwise maths."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from attncc.ops.base import Cost, Op, Sample, Signature, register


class _Unary(Op):
    """A pointwise op described by data: a NumPy function, a torch template, an ONNX node.

    `numpy_fn` maps a float32 array to an array (cast back to float32 here); `torch_fmt` is a
    template over `{x}`; `onnx_op` with `onnx_attrs` is one standard ONNX node. An op whose
    lowering is not one call overrides the facet instead.
    """

    signature = Signature(tensors=("x",))
    traits = frozenset({"elementwise", "pure"})
    flops_per_element = 1
    numpy_fn: Any = None
    torch_fmt = ""
    torch_inplace_fmt = ""  # the in-place form over `{x}`, where torch has one
    onnx_op = ""
    onnx_attrs: ClassVar[dict[str, Any]] = {}

    def infer(self, ctx, ins, attrs):
        return ins[0]

    def numpy(self, x):
        with np.errstate(invalid="ignore", divide="ignore"):  # log/sqrt of x <= 0: as torch
            return np.asarray(self.numpy_fn(x), dtype=np.float32)

    def torch(self, e, x):
        return self.torch_fmt.format(x=x)

    def torch_inplace(self, e, x):
        return self.torch_inplace_fmt.format(x=x) or None

    def onnx(self, e, x):
        return e.op(self.onnx_op, [x], **self.onnx_attrs)

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        n = math.prod(out_shape)
        return Cost(flops=self.flops_per_element * n, bytes_moved=8 * n)

    def samples(self):
        return [Sample(inputs=(("N", "C", "H", "W"),)), Sample(inputs=(("N", "C"),))]


def _clip(x, low: float, high: float):
    return np.clip(x, np.float32(low), np.float32(high))


def _hard_sigmoid(x):
    return _clip(x / np.float32(6) + np.float32(0.5), 0, 1)


def _sigmoid(x):
    # branch-safe: exp never sees a large positive argument
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


_erf = np.vectorize(math.erf, otypes=[np.float64])


@register
class Relu(_Unary):
    """relu(x) -> x.  max(x, 0): the δ of the survey's equations."""

    name = "relu"
    numpy_fn = staticmethod(lambda x: np.maximum(x, np.float32(0)))
    torch_fmt, onnx_op = "torch.relu({x})", "Relu"
    torch_inplace_fmt = "torch.relu_({x})"


@register
class Relu6(_Unary):
    """relu6(x) -> x.  min(max(x, 0), 6): MobileNet-style gates (inside hard_sigmoid)."""

    name = "relu6"
    flops_per_element = 2
    numpy_fn = staticmethod(lambda x: _clip(x, 0, 6))
    torch_fmt = "F.relu6({x})"
    torch_inplace_fmt = "F.relu6({x}, inplace=True)"

    def onnx(self, e, x):
        return e.op("Clip", [x, e.const_f32(0.0), e.const_f32(6.0)])


@register
class Sigmoid(_Unary):
    """sigmoid(x) -> x.  1 / (1 + exp(-x)): the σ of the survey's equations."""

    name = "sigmoid"
    flops_per_element = 4
    numpy_fn = staticmethod(_sigmoid)
    torch_fmt, onnx_op = "torch.sigmoid({x})", "Sigmoid"
    torch_inplace_fmt = "torch.sigmoid_({x})"


@register
class HardSigmoid(_Unary):
    """hard_sigmoid(x) -> x.  clip(x / 6 + 1/2, 0, 1), torch's (not Keras's) definition.

    The cheap gate of MobileNetV3's SE variant and of coordinate attention's h-sigmoid.
    ONNX HardSigmoid defaults to alpha=0.2 (Keras); it is emitted with alpha=1/6, beta=1/2.
    """

    name = "hard_sigmoid"
    flops_per_element = 3
    numpy_fn = staticmethod(_hard_sigmoid)
    torch_fmt, onnx_op = "F.hardsigmoid({x})", "HardSigmoid"
    torch_inplace_fmt = "F.hardsigmoid({x}, inplace=True)"
    onnx_attrs: ClassVar[dict[str, Any]] = {"alpha": 1.0 / 6.0, "beta": 0.5}


@register
class HardSwish(_Unary):
    """hard_swish(x) -> x.  x * hard_sigmoid(x): MobileNetV3's h-swish, coordinate attention."""

    name = "hard_swish"
    flops_per_element = 4
    numpy_fn = staticmethod(lambda x: x * _hard_sigmoid(x))
    torch_fmt, onnx_op = "F.hardswish({x})", "HardSwish"
    torch_inplace_fmt = "F.hardswish({x}, inplace=True)"


@register
class Silu(_Unary):
    """silu(x) -> x.  x * sigmoid(x) (swish): EfficientNet's SE blocks."""

    name = "silu"
    flops_per_element = 5
    numpy_fn = staticmethod(lambda x: x * _sigmoid(x))
    torch_fmt = "F.silu({x})"
    torch_inplace_fmt = "F.silu({x}, inplace=True)"

    def onnx(self, e, x):
        return e.op("Mul", [x, e.op("Sigmoid", [x])])


@register
class Gelu(_Unary):
    """gelu(x) -> x.  x/2 * (1 + erf(x / sqrt 2)), the exact form: ViT's and BoTNet's MLPs.

    ONNX Gelu needs opset 20, so at opset 18 it is composed from Erf.
    """

    name = "gelu"
    flops_per_element = 8
    numpy_fn = staticmethod(lambda x: 0.5 * x * (1.0 + _erf(x.astype(np.float64) / math.sqrt(2))))
    torch_fmt = "F.gelu({x})"

    def onnx(self, e, x):
        erf = e.op("Erf", [e.op("Div", [x, e.const_f32(math.sqrt(2.0))])])
        half_x = e.op("Mul", [x, e.const_f32(0.5)])
        return e.op("Mul", [half_x, e.op("Add", [erf, e.const_f32(1.0)])])


@register
class Softplus(_Unary):
    """softplus(x) -> x.  log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|))."""

    name = "softplus"
    flops_per_element = 4
    numpy_fn = staticmethod(lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))))
    torch_fmt, onnx_op = "F.softplus({x})", "Softplus"


@register
class Tanh(_Unary):
    """tanh(x) -> x.  Hyperbolic tangent."""

    name = "tanh"
    flops_per_element = 4
    numpy_fn = staticmethod(np.tanh)
    torch_fmt, onnx_op = "torch.tanh({x})", "Tanh"
    torch_inplace_fmt = "torch.tanh_({x})"


@register
class Exp(_Unary):
    """exp(x) -> x.  e^x: unnormalised attention weights."""

    name = "exp"
    flops_per_element = 4
    numpy_fn = staticmethod(np.exp)
    torch_fmt, onnx_op = "torch.exp({x})", "Exp"
    torch_inplace_fmt = "torch.exp_({x})"


@register
class Log(_Unary):
    """log(x) -> x.  Natural logarithm (NaN for x < 0, as in torch and ONNX)."""

    name = "log"
    flops_per_element = 4
    numpy_fn = staticmethod(np.log)
    torch_fmt, onnx_op = "torch.log({x})", "Log"
    torch_inplace_fmt = "torch.log_({x})"


@register
class Sqrt(_Unary):
    """sqrt(x) -> x.  Square root (NaN for x < 0): e.g. SimAM's energy denominators."""

    name = "sqrt"
    flops_per_element = 4
    numpy_fn = staticmethod(np.sqrt)
    torch_fmt, onnx_op = "torch.sqrt({x})", "Sqrt"
    torch_inplace_fmt = "torch.sqrt_({x})"


@register
class Abs(_Unary):
    """abs(x) -> x.  |x|."""

    name = "abs"
    numpy_fn = staticmethod(np.abs)
    torch_fmt, onnx_op = "torch.abs({x})", "Abs"
    torch_inplace_fmt = "torch.abs_({x})"
