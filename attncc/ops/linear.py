"""Learned linear maps over named dims: dense and convolution (the excite stage's workhorses)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    BoolArg,
    Cost,
    DimsArg,
    InferContext,
    IntArg,
    Map,
    MapArg,
    Op,
    OpError,
    ParamSpec,
    Sample,
    Signature,
    perm_or_none,
    register,
)
from attncc.ops.layout import FrameLayout
from attncc.ops.window import Window, register_window_dims, rename, window_dims


def _one_dim(side: tuple[str, ...], what: str, op: str, allow_none: bool) -> str | None:
    if len(side) > 1:
        raise OpError(f"{op} maps one dim at a time, not `{' '.join(side)}` ({what})", arg="map")
    if not side and not allow_none:
        raise OpError(f"{op} needs a {what} dim, not `()`", arg="map")
    return side[0] if side else None


def _linear_params(shape: tuple[int, ...], fan_in: int,
                   attrs: dict[str, Any]) -> dict[str, ParamSpec]:
    """Weight (and bias) of a dense or conv map: PyTorch's default init, or zeros.

    `zero_init=true` starts a residual branch as the identity (GC block's last transform).
    """
    zero = attrs["zero_init"]
    specs = {"weight": ParamSpec(shape, "zeros" if zero else "kaiming_uniform", fan_in=fan_in)}
    if attrs["bias"]:
        specs["bias"] = ParamSpec((shape[0],), "zeros" if zero else "uniform_fan_in",
                                  fan_in=fan_in)
    return specs


@register
class Dense(Op):
    """dense(x, In -> Out, bias: bool = true, zero_init: bool = false) -> x with In -> Out.

    A learned linear map of one named dim: SE's FC layers, survey eq. (2); CBAM's shared MLP.
    `In -> ()` maps the dim to a single number and drops it: an attention score per position
    (soft attention's `w·tanh(...)`, survey eq. (33)).
    """

    name = "dense"
    signature = Signature(
        tensors=("x",),
        attrs={"map": MapArg(required=True), "bias": BoolArg(default=True),
               "zero_init": BoolArg(default=False)},
        positional=("map",),
    )
    traits = frozenset({"has_params", "pure"})

    def _dims(self, x: TensorType, m: Map) -> tuple[str, str | None]:
        src = _one_dim(m.src, "source", self.name, allow_none=False)
        dst = _one_dim(m.dst, "destination", self.name, allow_none=True)
        assert src is not None
        if src not in x:
            raise OpError(f"dense maps dim `{src}` but its input has dims {x}", arg="map",
                          hints=(f"map one of the input's dims: {', '.join(x.dims)}",))
        if dst is not None and dst != src and dst in x:
            raise OpError(f"dense would give two dims named `{dst}`", arg="map",
                          hints=("name the new dim differently, e.g. with `dim D = ...`",))
        return src, dst

    def infer(self, ctx: InferContext, ins: list[TensorType], attrs: dict[str, Any]) -> TensorType:
        (x,) = ins
        src, dst = self._dims(x, attrs["map"])
        return x.replace(src, (dst,) if dst else ())

    def params(self, ctx, ins, attrs):
        src, dst = self._dims(ins[0], attrs["map"])
        n_in = ctx.require_size(src, "dense")
        n_out = ctx.require_size(dst, "dense") if dst else 1
        return _linear_params((n_out, n_in), n_in, attrs)

    def resolve(self, ins, out, attrs):
        src, dst = self._dims(ins[0], attrs["map"])
        return {"axis": ins[0].index(src), "rank": ins[0].rank, "drop": dst is None}

    def numpy(self, x, weight, bias=None, *, axis, rank, drop):
        y = np.moveaxis(x, axis, -1) @ weight.T
        if bias is not None:
            y = y + bias
        y = y[..., 0] if drop else np.moveaxis(y, -1, axis)
        return y.astype(np.float32)

    def torch(self, e, x, weight, bias=None, *, axis, rank, drop):
        b = bias if bias is not None else "None"
        moved = x if axis == rank - 1 else f"{x}.movedim({axis}, -1)"
        y = f"F.linear({moved}, {weight}, {b})"
        if drop:
            return f"{y}.squeeze(-1)"
        return y if axis == rank - 1 else f"{y}.movedim(-1, {axis})"

    def onnx(self, e, x, weight, bias=None, *, axis, rank, drop):
        if rank == 2 and axis == 1 and not drop:
            ins = [x, weight] + ([bias] if bias is not None else [])
            return e.op("Gemm", ins, transB=1)
        perm = list(range(rank))
        perm.append(perm.pop(axis))  # the mapped dim goes last for MatMul
        xt = e.op("Transpose", [x], perm=perm) if perm_or_none(tuple(perm)) else x
        y = e.op("MatMul", [xt, e.op("Transpose", [weight], perm=[1, 0])])
        if bias is not None:
            y = e.op("Add", [y, bias])
        if drop:  # the remaining dims are already in the output's order
            return e.op("Squeeze", [y, e.const_i64((-1,))])
        if perm_or_none(tuple(perm)):
            inverse = [perm.index(i) for i in range(rank)]
            y = e.op("Transpose", [y], perm=inverse)
        return y

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        # every output element is a dot product over the mapped dim, on whichever axis it is
        macs = math.prod(out_shape) * param_shapes["weight"][1]
        return Cost(flops=2 * macs, bytes_moved=_bytes(in_shapes, out_shape, param_shapes))

    def samples(self):
        return [
            Sample(inputs=(("N", "C"),), attrs={"map": Map(("C",), ("D",))}, sizes={"D": 3}),
            Sample(inputs=(("N", "C", "H"),), attrs={"map": Map(("C",), ("D",)), "bias": False},
                   sizes={"D": 4}),
            # a score per position: C is mapped to one number and dropped
            Sample(inputs=(("N", "C", "H"),), attrs={"map": Map(("C",), ())}),
        ]


@register
class Conv(Op):
    """conv(x, In -> Out, over, k, stride=1, dilation=1, groups=1, padding, bias, zero_init, to).

    Convolution over the named dims `over` (1-D, 2-D or 3-D by their number), with channels
    `In` mapped to `Out` (default `() -> ()`); `()` means a single implicit channel, so
    `conv(z, over=C, k=k)` is ECA's 1-D convolution across channels (survey eq. 11) and
    `conv(z, S -> (), over=H W, k=7)` is CBAM's spatial gate (eq. 80). Padding defaults to
    dilation * (k - 1) // 2, which keeps the sizes for odd k and stride 1; a window that
    resizes the dims renames them with `to=`:
    `conv(x, C -> C, over=H W, k=3, stride=2, groups=C, to=Hs Ws)`.
    """

    name = "conv"
    signature = Signature(
        tensors=("x",),
        attrs={
            "map": MapArg(default=Map((), ())),
            "over": DimsArg(required=True),
            "k": IntArg(required=True, min=1, max=4096),
            "stride": IntArg(default=1, min=1, max=63),
            "dilation": IntArg(default=1, min=1, max=64),
            "groups": IntArg(default=1, min=1),
            "padding": IntArg(default=None, min=0),
            "bias": BoolArg(default=True),
            "zero_init": BoolArg(default=False),
            "to": DimsArg(default=None),
        },
        positional=("map",),
    )
    traits = frozenset({"has_params", "pure"})

    def _layout(self, x: TensorType, attrs: dict[str, Any]):
        m: Map = attrs["map"]
        cin = _one_dim(m.src, "source", self.name, allow_none=True)
        cout = _one_dim(m.dst, "destination", self.name, allow_none=True)
        over = attrs["over"]
        # a resizing window without `to`: point at what resized it
        culprit = ("padding" if attrs["padding"] is not None
                   else "stride" if attrs["stride"] != 1 else "k")
        to = window_dims(self.name, x, over, attrs["to"], self._window(attrs), culprit)
        if cin is not None and cin not in x:
            raise OpError(f"conv maps channel dim `{cin}` but its input has dims {x}", arg="map")
        if cin is not None and cin in over:
            raise OpError(f"`{cin}` cannot be both the channel dim and a conv dim", arg="map")
        batch = [d for d in x.dims if d != cin and d not in over]
        if len(batch) != 1:
            raise OpError(
                f"conv needs exactly one dim besides the channel and `over` dims, found "
                f"{len(batch)} in {x}", arg="over",
                hints=("the remaining dim is the batch; reduce or merge the others first",),
            )
        if cout is not None and cout != cin and (cout in x or cout in to):
            raise OpError(f"conv would give two dims named `{cout}`", arg="map")
        return batch[0], cin, cout, over, to

    @staticmethod
    def _window(attrs: dict[str, Any]) -> Window:
        k, dil, pad = attrs["k"], attrs["dilation"], attrs["padding"]
        return Window(k, attrs["stride"], dil * (k - 1) // 2 if pad is None else pad, dil)

    def infer(self, ctx, ins, attrs):
        (x,) = ins
        _, cin, cout, over, to = self._layout(x, attrs)
        register_window_dims(ctx, self.name, over, to, self._window(attrs))
        y = rename(x, over, to)
        if cin is None:
            return y.replace(None, (cout,), at=1) if cout is not None else y
        return y.replace(cin, (cout,) if cout is not None else ())

    def params(self, ctx, ins, attrs):
        _, cin, cout, over, _ = self._layout(ins[0], attrs)
        n_in = ctx.require_size(cin, "conv") if cin else 1
        n_out = ctx.require_size(cout, "conv") if cout else 1
        g = attrs["groups"]
        if n_in % g or n_out % g:
            raise OpError(f"groups={g} must divide both channel counts ({n_in} -> {n_out})",
                          arg="groups", kind="hyper")
        k = attrs["k"]
        fan_in = n_in // g * k ** len(over)
        return _linear_params((n_out, n_in // g) + (k,) * len(over), fan_in, attrs)

    def resolve(self, ins, out, attrs):
        x = ins[0]
        batch, cin, cout, over, to = self._layout(x, attrs)
        w = self._window(attrs)
        return {"frame": FrameLayout.of(x, out, batch, cin, over, to, out_channel=cout),
                "nd": len(over), "stride": w.stride, "padding": w.padding,
                "dilation": w.dilation, "groups": attrs["groups"]}

    # ---- lowerings: move to (batch, channel, *spatial), convolve, move back ----
    def numpy(self, x, weight, bias=None, *, frame, nd, stride, padding, dilation, groups):
        y = _conv_nd(frame.enter_numpy(x), weight, bias, stride, padding, dilation, groups)
        return np.ascontiguousarray(frame.leave_numpy(y), dtype=np.float32)

    def torch(self, e, x, weight, bias=None, *, frame, nd, stride, padding, dilation, groups):
        b = bias if bias is not None else "None"
        t = (f"F.conv{nd}d({frame.enter_torch(x)}, {weight}, {b}, {stride}, {padding}, "
             f"{dilation}, {groups})")
        return frame.leave_torch(t)

    def onnx(self, e, x, weight, bias=None, *, frame, nd, stride, padding, dilation, groups):
        t = frame.enter_onnx(e, x)
        k = e.param_shape(weight)[2:]
        ins = [t, weight] + ([bias] if bias is not None else [])
        t = e.op("Conv", ins, kernel_shape=list(k), pads=[padding] * (2 * nd),
                 dilations=[dilation] * nd, group=groups, strides=[stride] * nd)
        return frame.leave_onnx(e, t)

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        # MACs = outputs x (input channels per group) x kernel taps = outputs x weight[0].numel;
        # dilation spreads the taps without adding any, and padding keeps the `over` sizes
        macs = math.prod(out_shape) * math.prod(param_shapes["weight"][1:])
        return Cost(flops=2 * macs, bytes_moved=_bytes(in_shapes, out_shape, param_shapes))

    def samples(self):
        return [
            Sample(inputs=(("N", "C"),), attrs={"over": ("C",), "k": 3, "bias": False}),
            Sample(inputs=(("N", "S", "H", "W"),),
                   attrs={"map": Map(("S",), ()), "over": ("H", "W"), "k": 3}, sizes={"S": 3}),
            Sample(inputs=(("N", "C", "H", "W"),),
                   attrs={"map": Map(("C",), ("D",)), "over": ("W", "H"), "k": 3,
                          "dilation": 2, "groups": 2}, sizes={"C": 4, "D": 6}),
        ]


def _bytes(in_shapes, out_shape, param_shapes) -> int:
    """float32 traffic of one pass: read the input and the parameters, write the output."""
    n = math.prod(in_shapes[0]) + math.prod(out_shape)
    return 4 * (n + sum(math.prod(shape) for shape in param_shapes.values()))


def _conv_nd(x, w, b, stride, padding, dilation, groups):
    """Direct N-d convolution (cross-correlation, as in every framework) in NumPy."""
    nd = x.ndim - 2
    pad = [(0, 0), (0, 0)] + [(padding, padding)] * nd
    xp = np.pad(x, pad)
    n = x.shape[0]
    cout, cin_g = w.shape[:2]
    k = w.shape[2:]
    out_sp = [(xp.shape[2 + i] - dilation * (k[i] - 1) - 1) // stride + 1 for i in range(nd)]
    y = np.zeros((n, cout, *out_sp), dtype=np.float64)
    cout_g = cout // groups
    for g in range(groups):
        xg = xp[:, g * cin_g : (g + 1) * cin_g]
        wg = w[g * cout_g : (g + 1) * cout_g]
        for tap in np.ndindex(*k):
            sl = tuple(slice(tap[i] * dilation, tap[i] * dilation + stride * (out_sp[i] - 1) + 1,
                             stride) for i in range(nd))
            patch = xg[(slice(None), slice(None), *sl)]  # n, cin_g, *out_sp
            wt = wg[(slice(None), slice(None), *tap)]  # cout_g, cin_g
            y[:, g * cout_g : (g + 1) * cout_g] += np.einsum("nc...,oc->no...", patch, wt)
    if b is not None:
        y += b.reshape((1, cout) + (1,) * nd)
    return y.astype(np.float32)
