"""Normalisation layers over named dims."""

from __future__ import annotations

import math

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    Cost,
    DimsArg,
    FloatArg,
    Op,
    OpError,
    ParamSpec,
    Sample,
    Signature,
    perm_or_none,
    register,
)


@register
class BatchNorm(Op):
    """batch_norm(x, over: dims, eps: float = 1e-5, momentum: float = 0.1) -> x.

    Normalises each feature (the dims not in `over`; at most one) with statistics taken over
    `over`: `batch_norm(y, over=N H W)` is BatchNorm2d on [N, C, H, W]. With no feature dim left
    (CBAM's spatial map [N, H, W]) there is one feature. Training uses batch statistics and
    updates the running buffers; inference, ONNX and the NumPy reference use the buffers.
    """

    name = "batch_norm"
    signature = Signature(
        tensors=("x",),
        attrs={
            "over": DimsArg(required=True),
            "eps": FloatArg(default=1e-5, min=0.0, min_exclusive=True),
            "momentum": FloatArg(default=0.1, min=0.0, max=1.0),
        },
    )
    traits = frozenset({"has_params", "stateful"})

    def _feature(self, x: TensorType, over: tuple[str, ...]) -> str | None:
        for d in over:
            if d not in x:
                raise OpError(f"batch_norm takes statistics over `{d}` but its input has dims {x}",
                              arg="over")
        feats = [d for d in x.dims if d not in over]
        if len(feats) > 1:
            raise OpError(
                f"batch_norm normalises at most one feature dim; {x} over "
                f"`{' '.join(over)}` leaves {', '.join(feats)}", arg="over",
                hints=("add the extra dims to `over`, e.g. "
                       f"over={' '.join(over + tuple(feats[1:]))}",),
            )
        return feats[0] if feats else None

    def infer(self, ctx, ins, attrs):
        self._feature(ins[0], attrs["over"])
        return ins[0]

    def params(self, ctx, ins, attrs):
        feat = self._feature(ins[0], attrs["over"])
        n = ctx.require_size(feat, "batch_norm") if feat else 1
        return {
            "weight": ParamSpec((n,), "ones"),
            "bias": ParamSpec((n,), "zeros"),
            "running_mean": ParamSpec((n,), "zeros", buffer=True),
            "running_var": ParamSpec((n,), "ones", buffer=True),
            "num_batches_tracked": ParamSpec((), "zeros", buffer=True, dtype="int64"),
        }

    def resolve(self, ins, out, attrs):
        x = ins[0]
        over = attrs["over"]
        feat = self._feature(x, over)
        # framework layout: (one statistics dim, the feature, the other statistics dims)
        canon = (over[0],) + ((feat,) if feat else ()) + tuple(over[1:])
        perm = x.axes(canon)
        return {
            "perm": perm_or_none(perm),
            "inverse": perm_or_none(tuple(canon.index(d) for d in x.dims)),
            "unsqueeze": feat is None,
            "eps": float(attrs["eps"]),
            "momentum": float(attrs["momentum"]),
        }

    def numpy(self, x, weight, bias, running_mean, running_var, num_batches_tracked=None, *,
              perm, inverse, unsqueeze, eps, momentum):
        t = x.transpose(perm) if perm else x
        if unsqueeze:
            t = t[:, None]
        shape = (1, -1) + (1,) * (t.ndim - 2)
        scale = (weight / np.sqrt(running_var.astype(np.float64) + eps)).reshape(shape)
        y = (t - running_mean.reshape(shape)) * scale + bias.reshape(shape)
        if unsqueeze:
            y = y[:, 0]
        if inverse:
            y = y.transpose(inverse)
        return np.ascontiguousarray(y, dtype=np.float32)

    def torch(self, e, x, weight, bias, running_mean, running_var, num_batches_tracked, *,
              perm, inverse, unsqueeze, eps, momentum):
        e.stmt(f"if self.training:\n    {num_batches_tracked}.add_(1)")
        t = f"{x}.permute{perm}" if perm else x
        if unsqueeze:
            t = f"{t}.unsqueeze(1)"
        t = (f"F.batch_norm({t}, {running_mean}, {running_var}, {weight}, {bias}, "
             f"self.training, {momentum!r}, {eps!r})")
        if unsqueeze:
            t = f"{t}.squeeze(1)"
        if inverse:
            t = f"{t}.permute{inverse}"
        return t

    def onnx(self, e, x, weight, bias, running_mean, running_var, num_batches_tracked=None, *,
             perm, inverse, unsqueeze, eps, momentum):
        t = e.op("Transpose", [x], perm=list(perm)) if perm else x
        if unsqueeze:
            t = e.op("Unsqueeze", [t, e.const_i64((1,))])
        t = e.op("BatchNormalization", [t, weight, bias, running_mean, running_var],
                 epsilon=eps, momentum=1.0 - momentum)
        if unsqueeze:
            t = e.op("Squeeze", [t, e.const_i64((1,))])
        if inverse:
            t = e.op("Transpose", [t], perm=list(inverse))
        return t

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        n = math.prod(out_shape)
        return Cost(flops=2 * n, bytes_moved=8 * n)

    def samples(self):
        return [
            Sample(inputs=(("N", "C", "H", "W"),), attrs={"over": ("N", "H", "W")}),
            Sample(inputs=(("N", "H", "W"),), attrs={"over": ("N", "H", "W"), "eps": 1e-3}),
            Sample(inputs=(("H", "C", "N"),), attrs={"over": ("N", "H")}),
        ]


