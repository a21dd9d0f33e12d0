"""Resampling named dims to another tensor's sizes: nearest interpolation (GENet's excite) and
(bi/tri)linear interpolation (the attention gate's resampling).

The sizes a resample produces are read at run time from a second tensor, `like`, which has the
target dims; nothing is frozen at export, so batch and spatial dims stay dynamic in ONNX.
"""

from __future__ import annotations

import math

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    BoolArg,
    ChoiceArg,
    Cost,
    DimsArg,
    Op,
    OpError,
    Sample,
    Signature,
    register,
)
from attncc.ops.layout import FrameLayout
from attncc.ops.window import rename


@register
class Interpolate(Op):
    """interpolate(x, like, over: dims, to: dims, mode) -> x with `over` resized to like's `to`.

    Nearest-neighbour (`mode="nearest"`, the default) or linear (`mode="bilinear"`) resize of
    the 1 to 3 dims `over` of x to the sizes of the dims `to` of `like` (paired by position);
    the result has x's dims with each `over` dim renamed to its `to` dim. Sizes are taken from
    `like` at run time. GENet's excite, survey eq. (46):
    `g = avg_pool(x, over=H W, k=3, stride=2, padding=1, to=Hg Wg)` then
    `interpolate(g, like=x, over=Hg Wg, to=H W)` -> [N, C, H, W]. The dims of x besides `over` are
    a batch dim and at most one channel dim.

    Semantics are torch's `F.interpolate(mode="nearest")`: source index
    min(floor(i * float32(n_in / n_out)), n_in - 1). ONNX Resize (asymmetric, floor) computes
    i / float32(n_out / n_in) instead, which rounds differently at some sizes (n_in 2 -> n_out
    82, 3 -> 123, 14 -> 92, ...), so the ONNX lowering computes torch's indices and gathers.

    `mode="bilinear"` is torch's `F.interpolate(mode="linear" | "bilinear" | "trilinear",
    align_corners=False)` for 1, 2 or 3 dims: per dim, source coordinate
    s = max(fma(float32(n_in / n_out), i + 0.5, -0.5), 0) (torch's CPU kernel fuses it), taps
    i0 = floor(s) and i1 = min(i0 + 1, n_in - 1), weights 1 - l and l = s - i0 in float32
    (Attention U-Net's resampling of φ_g and of the gate, Oktay et al. 2018). ONNX Resize
    (linear, half_pixel) is the same formula but divides by float32(n_out / n_in) unfused,
    which moves s by an ulp (outputs off by up to 9e-6 at 32 -> 82, more at larger sizes), and
    onnxruntime's linear Resize scales only trailing dims; so the ONNX lowering, like NumPy's,
    computes torch's taps and weights and blends two gathers per dim, the last dim first as
    torch's kernel does. (torch's own exporter's `pytorch_half_pixel` is wrong when n_out = 1.)

    `align_corners=true` (linear only) maps the corner samples onto each other, torch's
    `align_corners=True`: s = float32((n_in - 1) / (n_out - 1)) · i, rounded once to float32
    (0 when n_out = 1). The Residual Attention Network's most-used port upsamples its soft
    mask this way.
    """

    name = "interpolate"
    signature = Signature(
        tensors=("x", "like"),
        attrs={"over": DimsArg(required=True), "to": DimsArg(required=True),
               "mode": ChoiceArg(default="nearest", choices=("nearest", "bilinear")),
               "align_corners": BoolArg(default=False)},
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
        if attrs.get("align_corners") and attrs["mode"] != "bilinear":
            raise OpError("`align_corners` applies to linear interpolation only",
                          arg="align_corners", hints=('add `mode="bilinear"`',))
        return rename(x, attrs["over"], attrs["to"])

    def aligned_inputs(self, ins, out):
        return [None, None]  # `like` lends its sizes only

    def resolve(self, ins, out, attrs):
        x, like = ins
        over, to = attrs["over"], attrs["to"]
        batch, channel = self._check(x, like, over, to)
        return {"frame": FrameLayout.of(x, out, batch, channel, over, to),
                "axes": x.axes(over), "size_axes": like.axes(to), "mode": attrs["mode"],
                "rank": len(x.dims), "corners": bool(attrs.get("align_corners"))}

    # ---- lowerings ----
    @staticmethod
    def _source_index(n_in: int, n_out: int) -> np.ndarray:
        """torch's nearest source indices, in float32 as its CPU kernel computes them."""
        scale = np.float32(n_in) / np.float32(n_out)
        i = np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64)
        return np.minimum(i, n_in - 1)

    @staticmethod
    def _corner_taps(n_in: int, n_out: int, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """torch's linear taps with align_corners=True: s = float32(scale) * i in float32."""
        scale = np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.float32(0)
        src = (np.arange(n_out, dtype=np.float64) * np.float64(scale)).astype(np.float32)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        lam = np.clip(src - i0.astype(np.float32), 0, 1).astype(dtype)
        return i0, np.minimum(i0 + 1, n_in - 1), lam

    @staticmethod
    def _linear_taps(n_in: int, n_out: int, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """torch's linear taps i0, i1 and weight l of i1 (align_corners=False), in float32.

        torch's CPU kernel evaluates s = scale * (i + 0.5) - 0.5 as one fused multiply-add;
        in float64 the product of two float32 values and, for s >= 0, the subtraction are
        exact, so one rounding to float32 gives the fused result.
        """
        scale = np.float64(np.float32(n_in) / np.float32(n_out))
        src = (np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5
        src = np.maximum(src.astype(np.float32), np.float32(0))
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        lam = np.clip(src - i0.astype(np.float32), 0, 1).astype(dtype)
        return i0, np.minimum(i0 + 1, n_in - 1), lam

    def numpy(self, x, like, *, frame, axes, size_axes, mode, rank, corners):
        if mode == "bilinear":
            taps = self._corner_taps if corners else self._linear_taps
            for a, b in reversed(list(zip(axes, size_axes, strict=True))):
                i0, i1, lam = taps(x.shape[a], like.shape[b], x.dtype)
                lam = lam.reshape((-1,) + (1,) * (x.ndim - a - 1))
                x = np.take(x, i0, axis=a) * (1 - lam) + np.take(x, i1, axis=a) * lam
            return np.ascontiguousarray(x)
        for a, b in zip(axes, size_axes, strict=True):
            x = np.take(x, self._source_index(x.shape[a], like.shape[b]), axis=a)
        return np.ascontiguousarray(x)

    def torch(self, e, x, like, *, frame, axes, size_axes, mode, rank, corners):
        sizes = ", ".join(f"{like}.shape[{b}]" for b in size_axes)
        if mode == "bilinear":
            kind = ("linear", "bilinear", "trilinear")[len(axes) - 1]
            t = (f'F.interpolate({frame.enter_torch(x)}, size=({sizes},), mode="{kind}", '
                 f"align_corners={corners})")
        else:
            t = f'F.interpolate({frame.enter_torch(x)}, size=({sizes},), mode="nearest")'
        return frame.leave_torch(t)

    def onnx(self, e, x, like, *, frame, axes, size_axes, mode, rank, corners):
        from onnx import TensorProto

        if mode == "bilinear":
            return self._onnx_linear(e, x, like, axes, size_axes, rank, corners)
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

    def _onnx_linear(self, e, x, like, axes, size_axes, rank, corners):
        """torch's linear taps and weights computed on the graph; two gathers blended per dim."""
        from onnx import TensorProto

        f32, f64 = TensorProto.FLOAT, TensorProto.DOUBLE
        for a, b in reversed(list(zip(axes, size_axes, strict=True))):
            n_in = e.op("Shape", [x], start=a, end=a + 1)                  # [1] int64
            n_out = e.op("Shape", [like], start=b, end=b + 1)
            steps = e.op("Range", [self._scalar(e, 0), self._scalar(e, n_out), self._scalar(e, 1)])
            last = e.op("Sub", [n_in, e.const_i64((1,))])
            if corners:
                # (n_in - 1) / max(n_out - 1, 1): n_out = 1 samples index 0, as torch does
                span = e.op("Max", [e.op("Sub", [n_out, e.const_i64((1,))]), e.const_i64((1,))])
                scale = e.op("Div", [e.op("Cast", [last], to=f32), e.op("Cast", [span], to=f32)])
                src = e.op("Cast", [e.op("Mul", [e.op("Cast", [steps], to=f64),
                                                 e.op("Cast", [scale], to=f64)])], to=f32)
            else:
                scale = e.op("Div", [e.op("Cast", [n_in], to=f32),
                                     e.op("Cast", [n_out], to=f32)])
                # torch's fused multiply-add, exactly: in float64, then rounded once (see numpy)
                half = e.op("Cast", [e.const_f32(0.5)], to=f64)
                src = e.op("Sub", [e.op("Mul", [e.op("Add", [e.op("Cast", [steps], to=f64),
                                                             half]),
                                                e.op("Cast", [scale], to=f64)]), half])
                src = e.op("Max", [e.op("Cast", [src], to=f32), e.const_f32(0.0)])
            i0 = e.op("Min", [e.op("Cast", [e.op("Floor", [src])], to=TensorProto.INT64), last])
            i1 = e.op("Min", [e.op("Add", [i0, e.const_i64((1,))]), last])
            lam = e.op("Clip", [e.op("Sub", [src, e.op("Cast", [i0], to=f32)]),
                                e.const_f32(0.0), e.const_f32(1.0)])
            if rank - a > 1:  # broadcast the weights along the dims after `a`
                lam = e.op("Unsqueeze", [lam, e.const_i64(tuple(range(1, rank - a)))])
            w0 = e.op("Sub", [e.const_f32(1.0), lam])
            x = e.op("Add", [e.op("Mul", [e.op("Gather", [x, i0], axis=a), w0]),
                             e.op("Mul", [e.op("Gather", [x, i1], axis=a), lam])])
        return x

    @staticmethod
    def _scalar(e, value: int | str) -> str:
        """A 0-d int64 (Range takes scalars): a constant, or a [1] tensor squeezed."""
        one = e.const_i64((value,)) if isinstance(value, int) else value
        return e.op("Squeeze", [one, e.const_i64((0,))])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        # a copy: read the gathered elements, write the output
        if attrs.get("mode") != "bilinear":
            return Cost(bytes_moved=8 * math.prod(out_shape))
        # per output element, 2 taps per resized dim blended: 2 MACs per dim (torch's kernel)
        k = len(attrs["over"])
        return Cost(flops=4 * k * math.prod(out_shape),
                    bytes_moved=4 * math.prod(in_shapes[0]) + 4 * math.prod(out_shape))

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
            # bilinear, the attention gate's: H up, W down
            Sample(inputs=(("N", "C", "Hg", "Wg"), ("N", "C", "H", "W")),
                   attrs={"over": ("Hg", "Wg"), "to": ("H", "W"), "mode": "bilinear"},
                   sizes={"Hg": 3, "Wg": 9}),
            # linear, 1-D, batch last; 32 -> 82, where ONNX Resize's half_pixel drifts
            Sample(inputs=(("C", "L", "N"), ("T", "N")),
                   attrs={"over": ("L",), "to": ("T",), "mode": "bilinear"},
                   sizes={"L": 32, "T": 82}),
            # trilinear, no channel dim, one dim resized to 1
            Sample(inputs=(("N", "Dg", "Hg", "Wg"), ("N", "D", "H", "W")),
                   attrs={"over": ("Dg", "Hg", "Wg"), "to": ("D", "H", "W"), "mode": "bilinear"},
                   sizes={"Dg": 4, "Hg": 3, "Wg": 10, "D": 1}),
            # align_corners, up in H and down in W, and a dim resized to 1
            Sample(inputs=(("N", "C", "Hg", "Wg"), ("N", "C", "H", "W")),
                   attrs={"over": ("Hg", "Wg"), "to": ("H", "W"), "mode": "bilinear",
                          "align_corners": True},
                   sizes={"Hg": 5, "Wg": 11, "H": 13, "W": 3}),
            Sample(inputs=(("N", "C", "L"), ("N", "T")),
                   attrs={"over": ("L",), "to": ("T",), "mode": "bilinear",
                          "align_corners": True},
                   sizes={"L": 7, "T": 1}),
            # bilinear, `over` out of x's order, batch between; sizes from a permuted tensor
            Sample(inputs=(("Wg", "N", "C", "Hg"), ("H", "W", "N")),
                   attrs={"over": ("Hg", "Wg"), "to": ("H", "W"), "mode": "bilinear"},
                   sizes={"Hg": 13, "Wg": 4}),
        ]
