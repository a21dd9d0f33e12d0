"""Element-wise activations: the gate stage's squashing functions."""

from __future__ import annotations

import math

import numpy as np

from attncc.ops.base import Cost, Op, Sample, Signature, register


class _Unary(Op):
    signature = Signature(tensors=("x",))
    traits = frozenset({"elementwise", "pure"})
    flops_per_element = 1

    def infer(self, ctx, ins, attrs):
        return ins[0]

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        n = math.prod(out_shape)
        return Cost(flops=self.flops_per_element * n, bytes_moved=8 * n)

    def samples(self):
        return [Sample(inputs=(("N", "C", "H", "W"),)), Sample(inputs=(("N", "C"),))]


@register
class Relu(_Unary):
    """relu(x) -> x.  max(x, 0): the δ of the survey's equations."""

    name = "relu"

    def numpy(self, x):
        return np.maximum(x, np.float32(0))

    def torch(self, e, x):
        return f"torch.relu({x})"

    def onnx(self, e, x):
        return e.op("Relu", [x])


@register
class Sigmoid(_Unary):
    """sigmoid(x) -> x.  1 / (1 + exp(-x)): the σ of the survey's equations."""

    name = "sigmoid"
    flops_per_element = 4

    def numpy(self, x):
        # branch-safe: exp never sees a large positive argument
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.float32)

    def torch(self, e, x):
        return f"torch.sigmoid({x})"

    def onnx(self, e, x):
        return e.op("Sigmoid", [x])


@register
class Tanh(_Unary):
    """tanh(x) -> x.  Hyperbolic tangent."""

    name = "tanh"
    flops_per_element = 4

    def numpy(self, x):
        return np.tanh(x).astype(np.float32)

    def torch(self, e, x):
        return f"torch.tanh({x})"

    def onnx(self, e, x):
        return e.op("Tanh", [x])
