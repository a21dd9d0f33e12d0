"""Normalisation layers over named dims."""

from __future__ import annotations

import math

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    BoolArg,
    Cost,
    DimArg,
    DimsArg,
    FloatArg,
    IntArg,
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
    """batch_norm(x, over: dims, eps: float = 1e-5, momentum: float = 0.1, init_weight = 1.0) -> x.

    Normalises each feature (the dims not in `over`; at most one) with statistics taken over
    `over`: `batch_norm(y, over=N H W)` is BatchNorm2d on [N, C, H, W]. With no feature dim left
    (CBAM's spatial map [N, H, W]) there is one feature. Training uses batch statistics and
    updates the running buffers; inference, ONNX and the NumPy reference use the buffers.
    `init_weight` is γ's initial value: 0 for non-local's output BN and CBAM-ResNet's spatial BN.
    """

    name = "batch_norm"
    signature = Signature(
        tensors=("x",),
        attrs={
            "over": DimsArg(required=True),
            "eps": FloatArg(default=1e-5, min=0.0, min_exclusive=True),
            "momentum": FloatArg(default=0.1, min=0.0, max=1.0),
            "init_weight": FloatArg(default=1.0),
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
            "weight": _filled((n,), attrs["init_weight"]),
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
        # contiguous: eager batch_norm keeps a permuted input's strides, its meta kernel does
        # not, and torch.compile's traced strides must match the real ones (else a later
        # view fails under aot_autograd)
        t = f"{x}.permute{perm}.contiguous()" if perm else x
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
            Sample(inputs=(("H", "C", "N"),), attrs={"over": ("N", "H"), "init_weight": 0.0}),
        ]


def _filled(shape: tuple[int, ...], value: float) -> ParamSpec:
    """A parameter initialised to one constant (`ones`/`zeros` where they say it)."""
    if value == 1.0:
        return ParamSpec(shape, "ones")
    if value == 0.0:
        return ParamSpec(shape, "zeros")
    return ParamSpec(shape, "constant", init_args=(float(value),))


def _normalise_last(t: np.ndarray, k: int, eps: float) -> np.ndarray:
    """(t - mean) / sqrt(var + eps) over the last k axes, biased variance, in float64."""
    t = t.astype(np.float64)
    axes = tuple(range(t.ndim - k, t.ndim))
    d = t - t.mean(axis=axes, keepdims=True)
    return d / np.sqrt((d * d).mean(axis=axes, keepdims=True) + eps)


def _onnx_normalise(e, t: str, axes: tuple[int, ...], eps: float) -> str:
    """(t - mean) / sqrt(var + eps) over `axes` from ReduceMean: shapes stay dynamic."""
    ax = e.const_i64(axes)
    d = e.op("Sub", [t, e.op("ReduceMean", [t, ax], keepdims=1)])
    var = e.op("ReduceMean", [e.op("Mul", [d, d]), ax], keepdims=1)
    return e.op("Div", [d, e.op("Sqrt", [e.op("Add", [var, e.const_f32(eps)])])])


def _eps_arg() -> FloatArg:
    return FloatArg(default=1e-5, min=0.0, min_exclusive=True)


@register
class LayerNorm(Op):
    """layer_norm(x, over: dims, eps: float = 1e-5, affine: bool = true) -> x.

    Normalises over the named dims `over` (per position of the other dims), then scales and
    shifts with a weight and bias shaped like `over` (in that order): ViT's LN over D, GC
    block's LN inside its [C/r] transform. ONNX LayerNormalization (opset 17) normalises the
    trailing axes, so `over` is moved last and back; without `affine` it is composed from
    ReduceMean on the axes where they are.
    """

    name = "layer_norm"
    signature = Signature(
        tensors=("x",),
        attrs={"over": DimsArg(required=True), "eps": _eps_arg(), "affine": BoolArg(default=True)},
        positional=("over",),
    )
    traits = frozenset({"has_params", "pure"})

    def _check(self, x: TensorType, over: tuple[str, ...]) -> None:
        if not over:
            raise OpError("layer_norm needs at least one dim to normalise over", arg="over")
        for d in over:
            if d not in x:
                raise OpError(f"layer_norm normalises over `{d}` but its input has dims {x}",
                              arg="over", hints=(f"the input's dims are {x}",))
        if len(set(over)) != len(over):
            raise OpError(f"layer_norm names a dim twice in `over={' '.join(over)}`", arg="over")

    def infer(self, ctx, ins, attrs):
        self._check(ins[0], attrs["over"])
        return ins[0]

    def params(self, ctx, ins, attrs):
        self._check(ins[0], attrs["over"])
        if not attrs["affine"]:
            return {}
        shape = tuple(ctx.require_size(d, "layer_norm's weight") for d in attrs["over"])
        return {"weight": ParamSpec(shape, "ones"), "bias": ParamSpec(shape, "zeros")}

    def resolve(self, ins, out, attrs):
        x, over = ins[0], attrs["over"]
        self._check(x, over)
        canon = tuple(d for d in x.dims if d not in over) + tuple(over)
        return {
            "perm": perm_or_none(x.axes(canon)),
            "inverse": perm_or_none(tuple(canon.index(d) for d in x.dims)),
            "axes": x.axes(over),
            "eps": float(attrs["eps"]),
        }

    def numpy(self, x, weight=None, bias=None, *, perm, inverse, axes, eps):
        t = x.transpose(perm) if perm else x
        y = _normalise_last(t, len(axes), eps)
        if weight is not None:
            y = y * weight + bias
        if inverse:
            y = y.transpose(inverse)
        return np.ascontiguousarray(y, dtype=np.float32)

    def torch(self, e, x, weight=None, bias=None, *, perm, inverse, axes, eps):
        t = f"{x}.permute{perm}" if perm else x
        if weight is not None:
            t = f"F.layer_norm({t}, {weight}.shape, {weight}, {bias}, {eps!r})"
        else:
            shape = "(" + "".join(f"{x}.shape[{a}], " for a in axes) + ")"
            t = f"F.layer_norm({t}, {shape}, None, None, {eps!r})"
        return f"{t}.permute{inverse}" if inverse else t

    def onnx(self, e, x, weight=None, bias=None, *, perm, inverse, axes, eps):
        if weight is None:
            return _onnx_normalise(e, x, axes, eps)
        t = e.op("Transpose", [x], perm=list(perm)) if perm else x
        t = e.op("LayerNormalization", [t, weight, bias], axis=-len(axes), epsilon=eps)
        return e.op("Transpose", [t], perm=list(inverse)) if inverse else t

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        n = math.prod(out_shape)
        return Cost(flops=8 * n, bytes_moved=8 * n + 4 * sum(
            math.prod(s) for s in param_shapes.values()))

    def samples(self):
        return [
            Sample(inputs=(("N", "T", "C"),), attrs={"over": ("C",)}),
            Sample(inputs=(("N", "C", "H", "W"),), attrs={"over": ("C",), "eps": 1e-3}),
            Sample(inputs=(("N", "C", "H", "W"),), attrs={"over": ("W", "C")}),
            Sample(inputs=(("N", "C", "H", "W"),), attrs={"over": ("H", "W"), "affine": False}),
        ]


@register
class GroupNorm(Op):
    """group_norm(x, groups: int, channel: dim, eps: float = 1e-5) -> x.

    GroupNorm (Wu & He 2018) with per-channel weight and bias: x's first dim is the batch;
    each sample's channels split into `groups` groups, normalised over the group's channels
    and every other dim (SA-Net's shuffle attention, GCT-style gates). ONNX GroupNormalization
    at opset 18 takes per-group scale, so it is composed: Reshape [N, G, -1] (dynamic sizes),
    ReduceMean, Reshape back to the input's Shape, per-channel affine.
    """

    name = "group_norm"
    signature = Signature(
        tensors=("x",),
        attrs={"groups": IntArg(required=True, min=1), "channel": DimArg(required=True),
               "eps": _eps_arg()},
        positional=("groups",),
    )
    traits = frozenset({"has_params", "pure"})

    def _canon(self, x: TensorType, channel: str) -> tuple[str, ...]:
        if channel not in x:
            raise OpError(f"group_norm's channel `{channel}` is not among its input's dims {x}",
                          arg="channel")
        if x.rank < 2 or x.dims[0] == channel:
            raise OpError(f"group_norm needs a batch dim before channel `{channel}`, got {x}",
                          arg="channel", hints=("the input's first dim is the batch",))
        return (x.dims[0], channel, *(d for d in x.dims[1:] if d != channel))

    def infer(self, ctx, ins, attrs):
        self._canon(ins[0], attrs["channel"])
        return ins[0]

    def params(self, ctx, ins, attrs):
        self._canon(ins[0], attrs["channel"])
        c, g = ctx.require_size(attrs["channel"], "group_norm"), attrs["groups"]
        if c % g:
            raise OpError(f"groups={g} must divide the {c} channels of `{attrs['channel']}`",
                          arg="groups", kind="hyper")
        return {"weight": ParamSpec((c,), "ones"), "bias": ParamSpec((c,), "zeros")}

    def resolve(self, ins, out, attrs):
        x = ins[0]
        canon = self._canon(x, attrs["channel"])
        return {
            "perm": perm_or_none(x.axes(canon)),
            "inverse": perm_or_none(tuple(canon.index(d) for d in x.dims)),
            "groups": attrs["groups"],
            "rank": x.rank,
            "eps": float(attrs["eps"]),
        }

    def numpy(self, x, weight, bias, *, perm, inverse, groups, rank, eps):
        t = x.transpose(perm) if perm else x
        y = _normalise_last(t.reshape(t.shape[0], groups, -1), 1, eps).reshape(t.shape)
        tail = (1,) * (rank - 2)
        y = y * weight.reshape((-1, *tail)) + bias.reshape((-1, *tail))
        if inverse:
            y = y.transpose(inverse)
        return np.ascontiguousarray(y, dtype=np.float32)

    def torch(self, e, x, weight, bias, *, perm, inverse, groups, rank, eps):
        t = f"{x}.permute{perm}" if perm else x
        # the ATen op: F.group_norm refuses a batch of one whose groups hold one value each
        # ("Expected more than 1 value per channel"), where the normalised value is just 0
        t = f"torch.group_norm({t}, {groups}, {weight}, {bias}, {eps!r})"
        return f"{t}.permute{inverse}" if inverse else t

    def onnx(self, e, x, weight, bias, *, perm, inverse, groups, rank, eps):
        t = e.op("Transpose", [x], perm=list(perm)) if perm else x
        g = e.op("Reshape", [t, e.const_i64((0, groups, -1))])
        y = e.op("Reshape", [_onnx_normalise(e, g, (2,), eps), e.op("Shape", [t])])
        if rank > 2:
            tail = e.const_i64(tuple(range(1, rank - 1)))
            weight, bias = (e.op("Unsqueeze", [p, tail]) for p in (weight, bias))
        y = e.op("Add", [e.op("Mul", [y, weight]), bias])
        return e.op("Transpose", [y], perm=list(inverse)) if inverse else y

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        n = math.prod(out_shape)
        return Cost(flops=8 * n, bytes_moved=8 * n + 8 * param_shapes["weight"][0])

    def samples(self):
        return [
            Sample(inputs=(("N", "C", "H", "W"),), attrs={"groups": 2, "channel": "C"}),
            Sample(inputs=(("N", "H", "W", "C"),), attrs={"groups": 3, "channel": "C",
                                                          "eps": 1e-3}),
            Sample(inputs=(("N", "C"),), attrs={"groups": 3, "channel": "C"}),
        ]
