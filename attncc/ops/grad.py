"""Gradient control: ops that are the identity in the forward pass."""

from __future__ import annotations

from attncc.ops.base import Cost, Op, Sample, Signature, register


@register
class StopGradient(Op):
    """stop_gradient(x) -> x.  The identity forward; no gradient flows back through it.

    EMANet's and HamNet's iterations run without gradient (the code's `torch.no_grad()` /
    one-step gradient). Torch lowers it to `.detach()`, ONNX to Identity (an inference graph
    has no gradients), NumPy to the array itself.
    """

    name = "stop_gradient"
    signature = Signature(tensors=("x",))
    traits = frozenset({"pure"})

    def infer(self, ctx, ins, attrs):
        return ins[0]

    def numpy(self, x):
        return x

    def torch(self, e, x):
        return f"{x}.detach()"

    def onnx(self, e, x):
        return e.op("Identity", [x])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(flops=0, bytes_moved=0)

    def samples(self):
        return [Sample(inputs=(("N", "C", "H", "W"),)), Sample(inputs=(("N", "C"),))]
