"""Windowed pooling over named dims: avg_pool and max_pool (sub-sampling, GENet's gather)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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
from attncc.ops.layout import FrameLayout
from attncc.ops.window import Window, register_window_dims, rename, window_dims


class _Pool(Op):
    """The shared rule of the windowed poolings; `kind` picks the kernel."""

    kind: ClassVar[str]
    signature = Signature(
        tensors=("x",),
        attrs={
            "over": DimsArg(required=True),
            "k": IntArg(required=True, min=1, max=63),
            "stride": IntArg(default=None, min=1, max=63),
            "padding": IntArg(default=0, min=0),
            "to": DimsArg(default=None),
        },
    )
    traits = frozenset({"pure"})

    def _window(self, attrs: dict[str, Any]) -> Window:
        k, pad = attrs["k"], attrs["padding"]
        if 2 * pad > k:
            raise OpError(f"padding={pad} is more than half the window k={k}", arg="padding",
                          kind="hyper", hints=(f"use padding <= {k // 2}",))
        return Window(k, attrs["stride"] or k, pad)

    def _check(self, x: TensorType, attrs: dict[str, Any]) -> tuple[tuple[str, ...], int]:
        """The output names of the `over` dims, and the stride."""
        w = self._window(attrs)
        to = window_dims(self.name, x, attrs["over"], attrs["to"], w)
        FrameLayout.split(x, attrs["over"], self.name)
        return to, w.stride

    def infer(self, ctx: InferContext, ins: list[TensorType], attrs: dict[str, Any]) -> TensorType:
        (x,) = ins
        to, _ = self._check(x, attrs)
        register_window_dims(ctx, self.name, attrs["over"], to, self._window(attrs))
        return rename(x, attrs["over"], to)

    def resolve(self, ins, out, attrs):
        (x,) = ins
        to, stride = self._check(x, attrs)
        batch, channel = FrameLayout.split(x, attrs["over"], self.name)
        return {"frame": FrameLayout.of(x, out, batch, channel, attrs["over"], to),
                "nd": len(to), "k": attrs["k"], "stride": stride, "padding": attrs["padding"]}

    # ---- lowerings: move to (batch, channel, *pooled), pool, move back ----
    def numpy(self, x, *, frame, nd, k, stride, padding):
        t = frame.enter_numpy(x).astype(np.float64)
        grid = t.shape[2:]
        fill = -np.inf if self.kind == "max" else 0.0
        t = np.pad(t, [(0, 0), (0, 0)] + [(padding, padding)] * nd, constant_values=fill)
        axes = tuple(range(2, 2 + nd))
        taps = tuple(range(-nd, 0))
        step = (slice(None), slice(None)) + (slice(None, None, stride),) * nd
        windows = sliding_window_view(t, (k,) * nd, axis=axes)[step]
        if self.kind == "max":
            y = windows.max(axis=taps)
        else:  # count_include_pad=False: divide by the taps inside the input
            inside = np.pad(np.ones(grid), padding)
            count = sliding_window_view(inside, (k,) * nd)[step[2:]].sum(axis=taps)
            y = windows.sum(axis=taps) / count
        return np.ascontiguousarray(frame.leave_numpy(y), dtype=np.float32)

    def torch(self, e, x, *, frame, nd, k, stride, padding):
        t = frame.enter_torch(x)
        if self.kind == "max":
            t = f"F.max_pool{nd}d({t}, {k}, {stride}, {padding})"
        else:
            t = f"F.avg_pool{nd}d({t}, {k}, {stride}, {padding}, count_include_pad=False)"
        return frame.leave_torch(t)

    def onnx(self, e, x, *, frame, nd, k, stride, padding):
        t = frame.enter_onnx(e, x)
        window = {"kernel_shape": [k] * nd, "strides": [stride] * nd, "pads": [padding] * 2 * nd}
        if self.kind == "max":
            t = e.op("MaxPool", [t], **window)
        else:
            t = e.op("AveragePool", [t], count_include_pad=0, **window)
        return frame.leave_onnx(e, t)

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        # one compare or add per window tap (avg adds one divide per output)
        taps = attrs["k"] ** len(attrs["over"])
        n_out = math.prod(out_shape)
        flops = n_out * (taps + (1 if self.kind == "avg" else 0))
        return Cost(flops=flops, bytes_moved=4 * (math.prod(in_shapes[0]) + n_out))

    def samples(self):
        # sizes chosen so every pooled size differs from every other dim's
        return [
            # non-local's key sub-sampling: 2x2 windows, stride 2, over a permuted grid
            Sample(inputs=(("N", "C", "H", "W"),),
                   attrs={"over": ("W", "H"), "k": 2, "to": ("Ws", "Hs")},
                   sizes={"H": 9, "W": 11}),
            # no channel dim, padded overlapping windows (the padding is excluded from means)
            Sample(inputs=(("T", "N"),), attrs={"over": ("T",), "k": 3, "stride": 2,
                                                "padding": 1, "to": ("U",)},
                   sizes={"T": 9}),
            # size-keeping window: the names stay
            Sample(inputs=(("N", "H", "W", "C"),), attrs={"over": ("H", "W"), "k": 3,
                                                           "stride": 1, "padding": 1}),
            # 3-D, channel before batch
            Sample(inputs=(("C", "T", "H", "W", "N"),),
                   attrs={"over": ("T", "H", "W"), "k": 2, "stride": 2,
                          "to": ("Tp", "Hp", "Wp")}, sizes={"T": 8, "H": 7, "W": 11}),
        ]


@register
class AvgPool(_Pool):
    """avg_pool(x, over: dims, k: int, stride: int = k, padding: int = 0, to: dims = over).

    Mean over k x ... x k windows of the 1 to 3 dims `over`; the dims besides them are a batch
    dim and at most one channel dim (the first is the batch). Padding is left out of each
    window's mean (count_include_pad=False). A size-changing window renames the pooled dims:
    `avg_pool(x, over=H W, k=2, to=Hs Ws)`. GENet's gather (survey eq. 23), catalogue row 14.
    """

    name = "avg_pool"
    kind = "avg"


@register
class MaxPool(_Pool):
    """max_pool(x, over: dims, k: int, stride: int = k, padding: int = 0, to: dims = over).

    Maximum over k x ... x k windows of the 1 to 3 dims `over` (padding never wins); otherwise
    as avg_pool. Non-local's key/value sub-sampling (catalogue §4.9):
    `max_pool(x, over=H W, k=2, to=Hs Ws)` -> [N, C, Hs, Ws].
    """

    name = "max_pool"
    kind = "max"
