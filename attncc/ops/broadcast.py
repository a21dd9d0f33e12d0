"""Explicit broadcasting: lay a tensor out over another tensor's dims (BAM's `expand_as`)."""

from __future__ import annotations

from attncc.dims import TensorType
from attncc.ops.base import OpError, Sample, Signature, register
from attncc.ops.layout import Align


@register
class Expand(Align):
    """expand(x, like) -> x over like's dims.  The dims x lacks broadcast (size 1, no copy).

    By-name broadcasting refuses `[N, C] * [N, H, W]` because neither operand's dims contain
    the other's; an outer broadcast has to be asked for. BAM (survey eqs. 83-86, and its code's
    `expand_as`) multiplies its channel and spatial maps this way:
    `expand(c, like=x) * expand(s, like=x)`.
    """

    name = "expand"
    signature = Signature(tensors=("x", "like"))
    traits = frozenset({"layout", "pure"})

    def infer(self, ctx, ins, attrs):
        x, like = ins
        missing = [d for d in x.real if d not in like.dims]
        if missing:
            raise OpError(f"cannot expand {x} over {like}: `{missing[0]}` is not among its dims",
                          arg="like", hints=("`like` must have every dim of `x`",))
        return TensorType(like.dims, frozenset(d for d in like.dims if d not in x.real))

    def resolve(self, ins, out, attrs):
        return super().resolve(ins[:1], out, attrs)

    # `like` only lends its dims: the lowerings ignore its value
    def numpy(self, x, like, **kw):
        return super().numpy(x, **kw)

    def torch(self, e, x, like, **kw):
        return super().torch(e, x, **kw)

    def onnx(self, e, x, like, **kw):
        return super().onnx(e, x, **kw)

    def samples(self):
        return [Sample(inputs=(("N", "C"), ("N", "C", "H", "W"))),
                Sample(inputs=(("W", "N"), ("N", "C", "H", "W")))]
