"""Resampling named dims to another tensor's sizes: nearest interpolation (GENet's excite).

The sizes a resample produces are read at run time from a second tensor, `like`, which has the
target dims; nothing is frozen at export, so batch and spatial dims stay dynamic in ONNX.
"""

from __future__ import annotations

import math

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import Cost, DimsArg, Op, OpError, Sample, Signature, register
from attncc.ops.layout import FrameLayout
from attncc.ops.window import rename


@register
class Interpolate(Op):
    """interpolate(x, like, over: dims, to: dims) -> x with `over` resized to like's `to`.

    Nearest-neighbour resize of the 1 to 3 dims `over` of x to the sizes of the dims `to` of
    `like` (paired by position); the result has x's dims with each `over` dim renamed to its
    `to` dim. Sizes are taken from `like` at run time. GENet's excite, survey eq. (46):
    `g = avg_pool(x, over=H W, k=3, stride=2, padding=1, to=Hg Wg)` then
    `interpolate(g, like=x, over=Hg Wg, to=H W)` -> [N, C, H, W]. The dims of x besides `over` are
    a batch dim and at most one channel dim.

    Semantics are torch's `F.interpolate(mode="nearest")`: source index
    min(floor(i * float32(n_in / n_out)), n_in - 1). ONNX Resize (asymmetric, floor) computes
    i / float32(n_out / n_in) instead, which rounds differently at some sizes (n_in 2 -> n_out
    82, 3 -> 123, 14 -> 92, ...), so the ONNX lowering computes torch's indices and gathers.
    """

    name = "interpolate"
    signature = Signature(
        tensors=("x", "like"),
        attrs={"over": DimsArg(required=True), "to": DimsArg(required=True)},
    )
    traits = frozenset({"pure"})

    def _check(self, x: TensorType, like: TensorType, over: tuple[str, ...],
               to: tuple[str, ...]) -> tuple[str, str | None]:
        """Checks the dims; returns x's batch dim and channel dim (or None)."""
        if not 1 <= len(over) <= 3:
            raise OpError(f"interpolate resizes 1 to 3 dims, not {len(over)}", arg="over")
        if len(set(over)) != len(over):
            raise OpError(f"interpolate names a dim twice in `over={' '.join(over)}`", arg="over")
        for d in over:
            if d not in x.real:
                raise OpError(f"interpolate resizes `{d}` but its input has dims {x}", arg="over",
                              hints=(f"resize some of {', '.join(x.real)}",))
        if len(to) != len(over):
            raise OpError(f"`to` names {len(to)} dims for the {len(over)} resized dims "
                          f"`{' '.join(over)}`", arg="to",
                          hints=("pair each resized dim with one dim of `like`",))
        if len(set(to)) != len(to):
            raise OpError(f"`to` names a dim twice: `{' '.join(to)}`", arg="to")
        for src, dst in zip(over, to, strict=True):
            if dst not in like.real:
                raise OpError(f"`{dst}` is not a dim of the size-giving tensor {like}", arg="to",
                              hints=(f"take sizes from some of {', '.join(like.real)}",))
            if dst == src:
                raise OpError(f"`{dst}` would be resized to its own size", arg="to",
                              hints=("resize a dim of another size, e.g. a pooled `Hg`",))
            if dst in x:
                raise OpError(f"interpolate would give two dims named `{dst}`", arg="to")
        return FrameLayout.split(x, over, self.name)

    def infer(self, ctx, ins, attrs):
        x, like = ins
        self._check(x, like, attrs["over"], attrs["to"])
        return rename(x, attrs["over"], attrs["to"])

    def aligned_inputs(self, ins, out):
        return [None, None]  # `like` lends its sizes only

    def resolve(self, ins, out, attrs):
        x, like = ins
        over, to = attrs["over"], attrs["to"]
        batch, channel = self._check(x, like, over, to)
        return {"frame": FrameLayout.of(x, out, batch, channel, over, to),
                "axes": x.axes(over), "size_axes": like.axes(to)}

    # ---- lowerings ----
    @staticmethod
    def _source_index(n_in: int, n_out: int) -> np.ndarray:
        """torch's nearest source indices, in float32 as its CPU kernel computes them."""
        scale = np.float32(n_in) / np.float32(n_out)
        i = np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64)
        return np.minimum(i, n_in - 1)

    def numpy(self, x, like, *, frame, axes, size_axes):
        for a, b in zip(axes, size_axes, strict=True):
            x = np.take(x, self._source_index(x.shape[a], like.shape[b]), axis=a)
        return np.ascontiguousarray(x)

    def torch(self, e, x, like, *, frame, axes, size_axes):
        sizes = ", ".join(f"{like}.shape[{b}]" for b in size_axes)
        t = f'F.interpolate({frame.enter_torch(x)}, size=({sizes},), mode="nearest")'
        return frame.leave_torch(t)

    def onnx(self, e, x, like, *, frame, axes, size_axes):
        from onnx import TensorProto

        for a, b in zip(axes, size_axes, strict=True):
            n_in = e.op("Shape", [x], start=a, end=a + 1)                  # [1] int64
            n_out = e.op("Shape", [like], start=b, end=b + 1)
            scale = e.op("Div", [e.op("Cast", [n_in], to=TensorProto.FLOAT),
                                 e.op("Cast", [n_out], to=TensorProto.FLOAT)])
            steps = e.op("Range", [self._scalar(e, 0), self._scalar(e, n_out),
                                   self._scalar(e, 1)])
            src = e.op("Floor", [e.op("Mul", [e.op("Cast", [steps], to=TensorProto.FLOAT),
                                              scale])])
            last = e.op("Sub", [n_in, e.const_i64((1,))])
            index = e.op("Min", [e.op("Cast", [src], to=TensorProto.INT64), last])
            x = e.op("Gather", [x, index], axis=a)
        return x

    @staticmethod
    def _scalar(e, value: int | str) -> str:
        """A 0-d int64 (Range takes scalars): a constant, or a [1] tensor squeezed."""
        one = e.const_i64((value,)) if isinstance(value, int) else value
        return e.op("Squeeze", [one, e.const_i64((0,))])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        # a copy: read the gathered elements, write the output
        return Cost(bytes_moved=8 * math.prod(out_shape))

    def samples(self):
        # sizes distinct from every other dim's; some up-, some down-sampling, and pairs where
        # torch's index rounding differs from ONNX Resize's (3 -> 123, 2 -> 82)
        return [
            # GENet: a pooled grid back to the input's
            Sample(inputs=(("N", "C", "Hg", "Wg"), ("N", "C", "H", "W")),
                   attrs={"over": ("Hg", "Wg"), "to": ("H", "W")},
                   sizes={"Hg": 3, "Wg": 9, "H": 4, "W": 7}),
            # 1-D, channel before the resized dim, batch last; sizes from a permuted tensor
            Sample(inputs=(("C", "L", "N"), ("T", "N")),
                   attrs={"over": ("L",), "to": ("T",)}, sizes={"L": 3, "T": 123}),
            # no channel dim; `over` listed out of order
            Sample(inputs=(("N", "Hg", "Wg"), ("W", "N", "H")),
                   attrs={"over": ("Wg", "Hg"), "to": ("W", "H")},
                   sizes={"Hg": 4, "Wg": 3, "H": 82, "W": 9}),
        ]
