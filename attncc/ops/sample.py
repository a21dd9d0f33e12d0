"""Sampling at computed coordinates: affine grids, grid sampling and deformable convolution.

The spatial-attention ops of survey §3.2: a spatial transformer (STN, eqs. 34-35) predicts an
affine θ, `affine_grid` turns it into a sampling grid and `grid_sample` reads the input there;
RAM's / DRAM's glimpse sensor is the same pair with a translation θ at several scales
(eqs. 22-26); deformable convolution (DCN v1/v2, eqs. 36-38) samples each of the k² taps of a
convolution at a learned fractional offset.

Coordinates follow torch: a grid's last dim holds (x, y) = (width, height) normalised to
[-1, 1]; with `align_corners=false` -1 and 1 are the outer edges of the border pixels, so pixel
i of n has its centre at (2i + 1) / n - 1. Every lowering stays at ONNX opset 18: GridSample
(opset 16, modes `bilinear` / `nearest`, the spelling torch uses) is used directly, while
AffineGrid (opset 20) and DeformConv (opset 19) are composed from Range, Einsum and GridSample.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    BoolArg,
    ChoiceArg,
    Cost,
    DimArg,
    DimsArg,
    FloatArg,
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
from attncc.ops.window import Window, register_window_dims, window_dims

_MODES = ("bilinear", "nearest")
_PADDINGS = ("zeros", "border")


# ---- shared NumPy kernels (float64 inside, float32 out) ----
def _unnormalize(g: np.ndarray, n: int, align_corners: bool) -> np.ndarray:
    """Normalised coordinates in [-1, 1] -> pixel coordinates (torch's grid_sampler rule)."""
    if align_corners:
        return (g + 1) / 2 * (n - 1)
    return ((g + 1) * n - 1) / 2


def _gather(x: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """x [N, C, H, W] at integer pixels yy, xx [N, ...]; zero outside -> [N, ..., C]."""
    n, _, h, w = x.shape
    valid = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    b = np.arange(n).reshape((n,) + (1,) * (yy.ndim - 1))
    v = x[b, :, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
    return np.where(valid[..., None], v, 0.0)


def _bilinear(x: np.ndarray, iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
    """Bilinear interpolation at pixel coordinates, zero outside: G(q, p) = g(qy, py) g(qx, px)
    with g(a, b) = max(0, 1 - |a - b|) over the four neighbours q of p (DCN eqs. 3-4)."""
    y0, x0 = np.floor(iy), np.floor(ix)
    out = 0.0
    for dy in (0, 1):
        for dx in (0, 1):
            yy, xx = y0 + dy, x0 + dx
            wgt = (1 - np.abs(iy - yy)) * (1 - np.abs(ix - xx))
            out = out + _gather(x, yy.astype(np.int64), xx.astype(np.int64)) * wgt[..., None]
    return out


def _scale_table(levels: int, scale: float, ratio: float) -> list[float]:
    return [scale * ratio**k for k in range(levels)]


def _theta_factors(transform: str, levels: int, scale: float, ratio: float,
                   level_dim: bool) -> np.ndarray:
    """What θ (as [.., 2, 3]) is multiplied by (affine) or added to (translation), per level."""
    rows = []
    for s in _scale_table(levels, scale, ratio):
        if transform == "affine":  # scale the linear part, keep the translation
            rows.append([[s, s, 1.0], [s, s, 1.0]])
        else:  # the linear part of a translation θ is s times the identity
            rows.append([[s, 0.0, 0.0], [0.0, s, 0.0]])
    t = np.array(rows)  # float64: torch's float64 modules keep every digit
    return t if level_dim else t[0]


def _const_array(e, values: np.ndarray) -> str:
    """A float32 initializer holding `values` (the emitter's constants are scalars)."""
    name = e.fresh("const_f32_array")
    e.initializers[name] = np.ascontiguousarray(values, dtype=np.float32)
    return name


def _size(e, t: str, axis: int) -> str:
    """A [1] int64 tensor: the run-time size of one axis."""
    return e.op("Shape", [t], start=axis, end=axis + 1)


def _centres(e, n: str) -> str:
    """[n] float32 pixel centres (2i + 1) / n - 1 for a [1] int64 size n (align_corners=False)."""
    from onnx import TensorProto

    f32 = TensorProto.FLOAT
    steps = e.op("Range", [_scalar(e, 0), e.op("Squeeze", [n, e.const_i64((0,))]), _scalar(e, 1)])
    i = e.op("Cast", [steps], to=f32)
    twice = e.op("Add", [e.op("Mul", [i, e.const_f32(2.0)]), e.const_f32(1.0)])
    return e.op("Sub", [e.op("Div", [twice, e.op("Cast", [n], to=f32)]), e.const_f32(1.0)])


def _onnx_mode(e, mode: str) -> str:
    """GridSample's name for `mode` at the model's opset: opset 20 renamed bilinear to linear."""
    return "linear" if mode == "bilinear" and e.opset >= 20 else mode


def _scalar(e, value: int) -> str:
    return e.op("Squeeze", [e.const_i64((value,)), e.const_i64((0,))])


@register
class AffineGrid(Op):
    """affine_grid(theta, like=x, over: dims, as: dims, transform="affine", ...) -> the grid.

    Further attributes: along, height, width, scale = 1, levels = 1, ratio = 2.

    The sampling grid of a spatial transformer (Jaderberg et al., NIPS 2015; survey eqs. 34-35):
    for each output pixel (x_t, y_t) of the grid `over` = (height dim, width dim), the source
    coordinates (x_s, y_s) = A_θ (x_t, y_t, 1) in normalised [-1, 1] units, torch's
    `F.affine_grid(θ, size, align_corners=False)`: output pixel j of n sits at (2j + 1)/n - 1.
    θ has one dim `along` (default: its last) holding `transform="affine"`: 6 numbers, the
    2 × 3 matrix row-major (θ11 θ12 θ13 θ21 θ22 θ23, torch's `θ.view(-1, 2, 3)`), or
    `transform="translation"`: 2 numbers (tx, ty) with an identity linear part (RAM's glimpse
    location l). Its other dims are batch dims kept in the result:
    `affine_grid(theta, like=x, over=H W, as=P)` with theta: [N, A], x: [N, C, H, W] gives
    [N, H, W, P], P = (x, y) of size 2. The grid's sizes come from the optional tensor `like`
    (which has the `over` dims) at run time, or from `height=` and `width=`.
    `scale` multiplies θ's linear part (the crop's size); `levels=K` with `as=L P` adds a
    level dim L of K grids sharing one centre, level k scaled by scale · ratio^k (RAM's
    multi-resolution retina: each patch twice the width of the previous).
    ONNX: AffineGrid needs opset 20, so the base grid is built from Range and applied with
    Einsum.
    """

    name = "affine_grid"
    signature = Signature(
        tensors=("theta", "like"),
        attrs={
            "over": DimsArg(required=True, doc="the grid's height and width dims"),
            "as": DimsArg(required=True, doc="the coordinate dim (size 2), after a level dim"),
            "transform": ChoiceArg(default="affine", choices=("affine", "translation")),
            "along": DimArg(default=None, doc="θ's parameter dim (default: its last)"),
            "height": IntArg(default=None, min=1, max=4096),
            "width": IntArg(default=None, min=1, max=4096),
            "scale": FloatArg(default=1.0, min=0.0, min_exclusive=True),
            "levels": IntArg(default=1, min=1, max=16),
            "ratio": FloatArg(default=2.0, min=0.0, min_exclusive=True),
        },
        optional=("like",),
    )
    traits = frozenset({"pure"})

    def _layout(self, ins: list[TensorType], attrs: dict[str, Any]):
        theta = ins[0]
        like = ins[1] if len(ins) == 2 else None
        along = attrs["along"] or (theta.dims[-1] if theta.dims else None)
        if along is None or along not in theta:
            raise OpError(f"θ {theta} has no dim `{along}` holding its parameters", arg="along",
                          hints=("name θ's parameter dim: `along=A`",))
        batch = tuple(d for d in theta.dims if d != along)
        over, names = attrs["over"], attrs["as"]
        if len(over) != 2 or len(set(over)) != 2:
            raise OpError(f"affine_grid makes a 2-D grid: `over` names its height and width "
                          f"dims, not `{' '.join(over)}`", arg="over")
        for d in over:
            if d in batch:
                raise OpError(f"affine_grid would give two dims named `{d}`", arg="over")
        if not 1 <= len(names) <= 2 or len(set(names)) != len(names):
            raise OpError(f"`as` names the coordinate dim, or a level dim and the coordinate "
                          f"dim, not `{' '.join(names)}`", arg="as", hints=("as=P", "as=L P"))
        for d in names:
            if d in batch or d in over:
                raise OpError(f"affine_grid would give two dims named `{d}`", arg="as")
        if len(names) == 1 and attrs["levels"] != 1:
            raise OpError(f"levels={attrs['levels']} needs a dim for the levels", arg="as",
                          hints=(f"as=L {names[0]}",))
        if like is not None:
            for key in ("height", "width"):
                if attrs[key] is not None:
                    raise OpError(f"the grid's sizes come from `like` {like}; `{key}` is not "
                                  f"needed", arg=key)
            for d in over:
                if d not in like.real:
                    raise OpError(f"`like` {like} has no dim `{d}`", arg="over",
                                  hints=(f"take the sizes of some of {', '.join(like.real)}",))
        elif attrs["height"] is None or attrs["width"] is None:
            raise OpError("affine_grid needs the grid's size: a tensor with the `over` dims "
                          "(affine_grid(theta, like=x, over=H W, ...)) or `height=` and "
                          "`width=`", arg="over")
        return along, batch, over, names, like

    def infer(self, ctx, ins, attrs):
        along, batch, over, names, like = self._layout(ins, attrs)
        want = 6 if attrs["transform"] == "affine" else 2
        try:
            n = ctx.require_size(along, "affine_grid's θ")
        except OpError as err:
            raise OpError(err.message, arg="along", hints=err.hints) from None
        if n != want:
            what = ("6 numbers, a 2 × 3 matrix row-major" if want == 6
                    else "2 numbers (tx, ty)")
            raise OpError(f"a {attrs['transform']} θ holds {what}, but `{along}` has size {n}",
                          arg="along" if attrs["along"] else "transform",
                          hints=('transform="affine" takes 6, transform="translation" 2',))
        news = [(names[-1], 2, "as")]
        if len(names) == 2:
            news.append((names[0], attrs["levels"], "levels"))
        if like is None:
            news += [(over[0], attrs["height"], "height"), (over[1], attrs["width"], "width")]
        for dim, size, arg in news:
            try:
                ctx.new_dim(dim, size)
            except OpError as err:
                raise OpError(err.message, arg=arg) from None
        return TensorType((*batch, *names[:-1], *over, names[-1]))

    def aligned_inputs(self, ins, out):
        return [None] * len(ins)

    def resolve(self, ins, out, attrs):
        along, _, over, names, like = self._layout(ins, attrs)
        return {"axis": ins[0].index(along), "rank": ins[0].rank,
                "transform": attrs["transform"],
                "size_axes": like.axes(over) if like is not None else None,
                "sizes": (attrs["height"], attrs["width"]), "scale": attrs["scale"],
                "levels": attrs["levels"], "level_dim": len(names) == 2,
                "ratio": attrs["ratio"]}

    # ---- lowerings: θ (batch..., 6 | 2) -> θ' (batch..., [L,] 2, 3) -> base grid @ θ'ᵀ ----
    def numpy(self, theta, like=None, *, axis, rank, transform, size_axes, sizes, scale, levels,
              level_dim, ratio):
        h, w = (like.shape[a] for a in size_axes) if like is not None else sizes
        th = np.moveaxis(theta, axis, -1).astype(np.float64)
        f = _theta_factors(transform, levels, scale, ratio, level_dim)
        if transform == "affine":
            th = th.reshape((*th.shape[:-1], 2, 3))
            th = (th[..., None, :, :] if level_dim else th) * f
        else:
            t = np.concatenate([np.zeros((*th.shape, 2)), th[..., None]], axis=-1)
            th = (t[..., None, :, :] if level_dim else t) + f
        xs = (2 * np.arange(w) + 1) / w - 1
        ys = (2 * np.arange(h) + 1) / h - 1
        base = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None], np.ones((1, 1))), -1)
        return np.einsum("hwk,...ck->...hwc", base, th).astype(np.float32)

    def torch(self, e, theta, like=None, *, axis, rank, transform, size_axes, sizes, scale,
              levels, level_dim, ratio):
        t = theta if axis == rank - 1 else f"{theta}.movedim({axis}, -1)"
        f = _theta_factors(transform, levels, scale, ratio, level_dim).tolist()
        const = f"torch.tensor({f!r}, dtype={theta}.dtype, device={theta}.device)"
        if transform == "affine":
            th = f"{t}.unflatten(-1, (2, 3))"
            if level_dim:
                th = f"{th}.unsqueeze(-3) * {const}"
            elif scale != 1.0:
                th = f"{th} * {const}"
        else:
            th = f"F.pad({t}.unsqueeze(-1), (2, 0))"
            th = f"{th}.unsqueeze(-3) + {const}" if level_dim else f"{th} + {const}"
        h, w = ((f"{like}.shape[{a}]" for a in size_axes) if like is not None
                else (str(s) for s in sizes))
        e.stmt(f"_theta = {th}")  # [..., 2, 3]; a temporary used by the next line only
        return (f"F.affine_grid(_theta.reshape(-1, 2, 3), [_theta.numel() // 6, 1, {h}, {w}], "
                f"align_corners=False).reshape(*_theta.shape[:-2], {h}, {w}, 2)")

    def onnx(self, e, theta, like=None, *, axis, rank, transform, size_axes, sizes, scale, levels,
             level_dim, ratio):
        perm = list(range(rank))
        perm.append(perm.pop(axis))
        t = e.op("Transpose", [theta], perm=perm) if perm_or_none(tuple(perm)) else theta
        f = _const_array(e, _theta_factors(transform, levels, scale, ratio, level_dim))
        if transform == "affine":
            lead = e.op("Shape", [t], start=0, end=rank - 1)
            th = e.op("Reshape", [t, e.op("Concat", [lead, e.const_i64((2, 3))], axis=0)])
            if level_dim:
                th = e.op("Mul", [e.op("Unsqueeze", [th, e.const_i64((-3,))]), f])
            elif scale != 1.0:
                th = e.op("Mul", [th, f])
        else:
            last = _const_array(e, np.array([0.0, 0.0, 1.0]))
            th = e.op("Mul", [e.op("Unsqueeze", [t, e.const_i64((-1,))]), last])  # [.., 2, 3]
            if level_dim:
                th = e.op("Unsqueeze", [th, e.const_i64((-3,))])
            th = e.op("Add", [th, f])
        if like is not None:
            h, w = (_size(e, like, a) for a in size_axes)
        else:
            h, w = (e.const_i64((s,)) for s in sizes)
        xs = e.op("Unsqueeze", [_centres(e, w), e.const_i64((0,))])  # [1, W]
        ys = e.op("Unsqueeze", [_centres(e, h), e.const_i64((1,))])  # [H, 1]
        shape = e.op("Concat", [h, w], axis=0)
        planes = [e.op("Unsqueeze", [e.op("Expand", [p, shape]), e.const_i64((2,))])
                  for p in (xs, ys, e.const_f32(1.0))]
        base = e.op("Concat", planes, axis=2)  # [H, W, 3]: (x, y, 1)
        return e.op("Einsum", [base, th], equation="hwk,...ck->...hwc")

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        # each output coordinate is a 3-term dot product
        return Cost(flops=4 * math.prod(out_shape),
                    bytes_moved=4 * (math.prod(in_shapes[0]) + math.prod(out_shape)))

    def samples(self):
        return [
            # STN: θ [N, A=6], sizes from the input map
            Sample(inputs=(("N", "A"), ("N", "C", "H", "W")),
                   attrs={"over": ("H", "W"), "as": ("P",)},
                   sizes={"N": 3, "A": 6, "P": 2, "C": 4}),
            # RAM's retina: a translation θ (the location) at 5 scales, fixed 4 x 8 grid
            Sample(inputs=(("N", "P"),),
                   attrs={"over": ("Gh", "Gw"), "as": ("L", "P"), "transform": "translation",
                          "height": 4, "width": 8, "scale": 0.3, "levels": 5},
                   sizes={"N": 3, "P": 2, "Gh": 4, "Gw": 8, "L": 5}),
            # θ with two batch dims, its parameters first; sizes from a permuted tensor; scaled
            Sample(inputs=(("A", "N", "T"), ("W", "N", "H")),
                   attrs={"over": ("H", "W"), "as": ("Q",), "along": "A", "scale": 0.5},
                   sizes={"N": 4, "A": 6, "Q": 2}),
            # affine with levels, ratio 3
            Sample(inputs=(("N", "A"), ("N", "H", "W")),
                   attrs={"over": ("H", "W"), "as": ("L", "P"), "levels": 3, "ratio": 3.0},
                   sizes={"N": 4, "A": 6, "P": 2, "L": 3}),
        ]


@register
class GridSample(Op):
    """grid_sample(x, grid, over: dims, to: dims = over, along, mode, padding, align_corners).

    Reads x at the normalised coordinates of `grid`: torch's `F.grid_sample`, ONNX GridSample
    (opset 16). x has a batch dim, a channel dim and the two sampled dims `over` (height,
    width); grid has the same batch dim, the output dims `to` (height, width), the coordinate
    dim `along` (default: its last; size 2, (x, y) order) and possibly more dims, each sampled
    alike: `grid_sample(x, grid, over=H W)` with x: [N, C, H, W] and grid: [N, H, W, P] is an
    STN's sampler (survey eq. 35); with grid [N, L, Gh, Gw, P] the result is [N, C, L, Gh, Gw].
    `mode` is "bilinear" or "nearest" (round half to even), `padding` "zeros" (outside reads
    0) or "border" (coordinates clamped to the edge pixels), `align_corners` as in torch.
    """

    name = "grid_sample"
    signature = Signature(
        tensors=("x", "grid"),
        attrs={
            "over": DimsArg(required=True, doc="x's sampled dims: height, width"),
            "to": DimsArg(default=None, doc="grid's output dims: height, width"),
            "along": DimArg(default=None, doc="grid's coordinate dim (default: its last)"),
            "mode": ChoiceArg(default="bilinear", choices=_MODES),
            "padding": ChoiceArg(default="zeros", choices=_PADDINGS),
            "align_corners": BoolArg(default=False),
        },
    )
    traits = frozenset({"pure"})

    def _layout(self, x: TensorType, grid: TensorType, attrs: dict[str, Any]):
        over = attrs["over"]
        if len(over) != 2 or len(set(over)) != 2:
            raise OpError(f"grid_sample samples two dims (height, width), not "
                          f"`{' '.join(over)}`", arg="over")
        for d in over:
            if d not in x.real:
                raise OpError(f"grid_sample samples `{d}` but its input has dims {x}",
                              arg="over")
        coord = attrs["along"] or grid.dims[-1]
        if coord not in grid:
            raise OpError(f"the grid {grid} has no coordinate dim `{coord}`", arg="along")
        if coord in x:
            raise OpError(f"the grid's coordinate dim `{coord}` is also a dim of x {x}",
                          arg="along", hints=("name the grid's (x, y) dim: `along=P`",))
        to = attrs["to"] or over
        if len(to) != 2 or len(set(to)) != 2:
            raise OpError(f"`to` names the grid's height and width dims, not `{' '.join(to)}`",
                          arg="to")
        for d in to:
            if d not in grid or d == coord:
                raise OpError(f"the grid {grid} has no output dim `{d}`", arg="to",
                              hints=("name the grid's height and width: `to=Ho Wo`",))
            if d in x and d not in over:
                raise OpError(f"grid_sample would give two dims named `{d}`", arg="to")
        rest = [d for d in x.dims if d not in over]
        batch = [d for d in rest if d in grid]
        chan = [d for d in rest if d not in grid]
        if len(rest) != 2 or len(batch) != 1:
            raise OpError(f"grid_sample needs x with a batch dim (shared with the grid), a "
                          f"channel dim and `{' '.join(over)}`; got x {x} and grid {grid}",
                          arg="over", hints=("reduce or merge other dims first",))
        extra = tuple(d for d in grid.dims if d not in (*batch, *to, coord))
        for d in extra:
            if d in x:
                raise OpError(f"the grid's dim `{d}` is also a dim of x {x}", arg="grid")
        return batch[0], chan[0], over, to, extra, coord

    def infer(self, ctx, ins, attrs):
        x, grid = ins
        batch, chan, _, to, extra, coord = self._layout(x, grid, attrs)
        size = ctx.known_size(coord)
        if size is None:
            try:
                size = ctx.require_size(coord, "grid_sample's coordinate dim")
            except OpError as err:
                raise OpError(err.message, arg="along", hints=err.hints) from None
        if size != 2:
            raise OpError(f"the grid's coordinate dim `{coord}` has size {size}, not 2 (x, y)",
                          arg="along")
        return TensorType((batch, chan, *extra, *to))

    def aligned_inputs(self, ins, out):
        return [None, None]  # the lowerings permute: `over`'s order is an attribute

    def resolve(self, ins, out, attrs):
        x, grid = ins
        batch, chan, over, to, extra, coord = self._layout(x, grid, attrs)
        return {"mode": attrs["mode"], "padding": attrs["padding"],
                "align_corners": attrs["align_corners"], "nextra": len(extra),
                "perm_x": perm_or_none(x.axes((batch, chan, *over))),
                "perm_g": perm_or_none(grid.axes((batch, *extra, *to, coord)))}

    def numpy(self, x, grid, *, mode, padding, align_corners, nextra, perm_x, perm_g):
        x = x.transpose(perm_x) if perm_x else x
        grid = grid.transpose(perm_g) if perm_g else grid
        n, c, h, w = x.shape
        g = grid.reshape(grid.shape[0], -1, grid.shape[-2], 2).astype(np.float64)
        ix = _unnormalize(g[..., 0], w, align_corners)
        iy = _unnormalize(g[..., 1], h, align_corners)
        if padding == "border":
            ix, iy = np.clip(ix, 0, w - 1), np.clip(iy, 0, h - 1)
        xd = x.astype(np.float64)
        if mode == "nearest":
            v = _gather(xd, np.rint(iy).astype(np.int64), np.rint(ix).astype(np.int64))
        else:
            v = _bilinear(xd, iy, ix)
        y = np.moveaxis(v, -1, 1)  # [N, C, M, Wo]
        return np.ascontiguousarray(y.reshape((n, c, *grid.shape[1:-1])), dtype=np.float32)

    def torch(self, e, x, grid, *, mode, padding, align_corners, nextra, perm_x, perm_g):
        x = f"{x}.permute{perm_x}" if perm_x else x
        grid = f"{grid}.permute{perm_g}" if perm_g else grid
        g = f"{grid}.flatten(1, {nextra + 1})" if nextra else grid
        y = (f'F.grid_sample({x}, {g}, mode="{mode}", padding_mode="{padding}", '
             f"align_corners={align_corners})")
        return f"{y}.unflatten(2, {grid}.shape[1:-2])" if nextra else y

    def onnx(self, e, x, grid, *, mode, padding, align_corners, nextra, perm_x, perm_g):
        x = e.op("Transpose", [x], perm=list(perm_x)) if perm_x else x
        grid = e.op("Transpose", [grid], perm=list(perm_g)) if perm_g else grid
        g = grid
        if nextra:
            tail = e.op("Shape", [grid], start=-2)
            shape = e.op("Concat", [e.const_i64((0, -1)), tail], axis=0)
            g = e.op("Reshape", [grid, shape])
        y = e.op("GridSample", [x, g], mode=_onnx_mode(e, mode), padding_mode=padding,
                 align_corners=int(align_corners))
        if nextra:
            lead = e.op("Shape", [x], start=0, end=2)
            mid = e.op("Shape", [grid], start=1, end=-1)
            y = e.op("Reshape", [y, e.op("Concat", [lead, mid], axis=0)])
        return y

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        # bilinear: 4 taps weighted per output element (weights shared over channels)
        taps = 4 if attrs.get("mode", "bilinear") == "bilinear" else 1
        return Cost(flops=2 * taps * math.prod(out_shape),
                    bytes_moved=4 * (taps * math.prod(out_shape) + math.prod(in_shapes[1])
                                     + math.prod(out_shape)))

    def samples(self):
        return [
            # an STN's sampler: bilinear, zeros outside; grid values ~N(0, 1) leave the map
            Sample(inputs=(("N", "C", "H", "W"), ("N", "Ho", "Wo", "P")),
                   attrs={"over": ("H", "W"), "to": ("Ho", "Wo")},
                   sizes={"N": 3, "Ho": 4, "Wo": 8, "P": 2}),
            # nearest, border, align_corners; x and grid permuted, the coordinate dim first
            Sample(inputs=(("C", "H", "N", "W"), ("P", "Wo", "N", "Ho")),
                   attrs={"over": ("H", "W"), "to": ("Ho", "Wo"), "along": "P",
                          "mode": "nearest", "padding": "border", "align_corners": True},
                   sizes={"N": 3, "Ho": 4, "Wo": 8, "P": 2}),
            # a grid with a level dim (RAM's retina); bilinear, border
            Sample(inputs=(("N", "C", "H", "W"), ("N", "L", "Ho", "Wo", "P")),
                   attrs={"over": ("H", "W"), "to": ("Ho", "Wo"), "padding": "border"},
                   sizes={"N": 3, "L": 9, "Ho": 4, "Wo": 8, "P": 2}),
            # the output keeps x's dim names (an STN with the input's size), nearest, zeros
            Sample(inputs=(("N", "C", "H", "W"), ("N", "H", "W", "P")),
                   attrs={"over": ("H", "W"), "mode": "nearest"}, sizes={"N": 3, "P": 2}),
        ]


@register
class DeformConv(Op):
    """deform_conv(x, offset, In -> Out, over: dims, k: int = 3, ...) -> [batch, Out, to...].

    Further attributes, as conv's: stride, padding, dilation, groups, bias, to; and modulated.

    Deformable convolution (Dai et al., ICCV 2017; survey eqs. 36-38): each of the k² taps p_n
    of output p_0 reads x bilinearly at p_0 + p_n + Δp_n, y(p_0) = Σ_n w(p_n) x(p_0 + p_n + Δp_n)
    (+ bias); with `modulated=true` (DCNv2, Zhu et al., CVPR 2019) each tap is also scaled by
    Δm_n ∈ (0, 1). x: [batch, In, over...]; offset: [batch, O, to...] (`to` = over for a window
    that keeps the size) in the layout of torchvision's `deform_conv2d` and mmcv: channel 2n is
    Δy and 2n + 1 is Δx of tap n, taps row-major (n = i·k + j), so O = 2k²; with `modulated`
    O = 3k², the last k² channels being the mask's logits, Δm = σ(logits) — the output of
    mmcv's ModulatedDeformConv2dPack.conv_offset (chunks o1, o2, mask; offset = cat(o1, o2)).
    Positions outside x read 0. Parameters as a conv's: weight [Out, In/groups, k, k], bias
    [Out]. Torch and ONNX (DeformConv needs opset 19) sample all taps with one grid sample
    (align_corners=False, zeros) and contract with the weight in an einsum.
    """

    name = "deform_conv"
    signature = Signature(
        tensors=("x", "offset"),
        attrs={
            "map": MapArg(required=True),
            "over": DimsArg(required=True),
            "k": IntArg(default=3, min=1, max=15),
            "stride": IntArg(default=1, min=1, max=63),
            "padding": IntArg(default=None, min=0),
            "dilation": IntArg(default=1, min=1, max=64),
            "groups": IntArg(default=1, min=1),
            "bias": BoolArg(default=True),
            "modulated": BoolArg(default=False),
            "to": DimsArg(default=None),
        },
        positional=("map",),
    )
    traits = frozenset({"has_params", "pure"})

    @staticmethod
    def _window(attrs: dict[str, Any]) -> Window:
        k, dil, pad = attrs["k"], attrs["dilation"], attrs["padding"]
        return Window(k, attrs["stride"], dil * (k - 1) // 2 if pad is None else pad, dil)

    def _layout(self, x: TensorType, offset: TensorType, attrs: dict[str, Any]):
        m: Map = attrs["map"]
        if len(m.src) != 1 or len(m.dst) != 1:
            raise OpError(f"deform_conv maps one channel dim to one, not `{m}`", arg="map",
                          hints=("e.g. `C -> Co`",))
        cin, cout = m.src[0], m.dst[0]
        over = attrs["over"]
        if len(over) != 2:
            raise OpError(f"deform_conv is 2-D: `over` names two dims, not `{' '.join(over)}`",
                          arg="over")
        culprit = ("padding" if attrs["padding"] is not None
                   else "stride" if attrs["stride"] != 1 else "k")
        to = window_dims(self.name, x, over, attrs["to"], self._window(attrs), culprit)
        if cin not in x or cin in over:
            raise OpError(f"deform_conv maps channel dim `{cin}` but its input has dims {x}",
                          arg="map")
        batch = [d for d in x.dims if d != cin and d not in over]
        if len(batch) != 1:
            raise OpError(f"deform_conv needs exactly one dim besides the channel and `over` "
                          f"dims, found {len(batch)} in {x}", arg="over")
        if cout != cin and (cout in x or cout in to):
            raise OpError(f"deform_conv would give two dims named `{cout}`", arg="map")
        odims = [d for d in offset.dims if d != batch[0] and d not in to]
        if batch[0] not in offset or any(d not in offset for d in to) or len(odims) != 1:
            raise OpError(f"the offsets must be [{batch[0]}, O, {', '.join(to)}] (O = 2k², or "
                          f"3k² when modulated), got {offset}", arg="offset")
        return batch[0], cin, cout, over, to, odims[0]

    def infer(self, ctx, ins, attrs):
        x, offset = ins
        batch, _, cout, over, to, odim = self._layout(x, offset, attrs)
        register_window_dims(ctx, self.name, over, to, self._window(attrs))
        k = attrs["k"]
        want = (3 if attrs["modulated"] else 2) * k * k
        try:
            n = ctx.require_size(odim, "deform_conv's offsets")
        except OpError as err:
            raise OpError(err.message, arg="offset", hints=err.hints) from None
        if n != want:
            what = ("2k² offsets and k² mask logits" if attrs["modulated"]
                    else "2k² offsets (Δy, Δx per tap)")
            raise OpError(f"with k={k} the offsets need {want} channels ({what}), but `{odim}` "
                          f"has {n}", arg="offset",
                          hints=("modulated=true takes 3k² channels, modulated=false 2k²",))
        return TensorType((batch, cout, *to))

    def params(self, ctx, ins, attrs):
        _, cin, cout, _, _, _ = self._layout(*ins, attrs)
        n_in, n_out = ctx.require_size(cin, "deform_conv"), ctx.require_size(cout, "deform_conv")
        g, k = attrs["groups"], attrs["k"]
        if n_in % g or n_out % g:
            raise OpError(f"groups={g} must divide both channel counts ({n_in} -> {n_out})",
                          arg="groups", kind="hyper")
        fan_in = n_in // g * k * k
        specs = {"weight": ParamSpec((n_out, n_in // g, k, k), "kaiming_uniform", fan_in=fan_in)}
        if attrs["bias"]:
            specs["bias"] = ParamSpec((n_out,), "uniform_fan_in", fan_in=fan_in)
        return specs

    def aligned_inputs(self, ins, out):
        return [None, None]  # the lowerings permute: `over`'s order is an attribute

    def resolve(self, ins, out, attrs):
        x, offset = ins
        batch, cin, _, over, to, odim = self._layout(x, offset, attrs)
        w = self._window(attrs)
        return {"k": attrs["k"], "stride": w.stride, "padding": w.padding,
                "dilation": w.dilation, "groups": attrs["groups"],
                "modulated": attrs["modulated"],
                "perms": (perm_or_none(x.axes((batch, cin, *over))),
                          perm_or_none(offset.axes((batch, odim, *to))))}

    # ---- lowerings ----
    def numpy(self, x, offset, weight, bias=None, *, k, stride, padding, dilation, groups,
              modulated, perms):
        x, offset = (t.transpose(p) if p else t for t, p in zip((x, offset), perms, strict=True))
        n, c = x.shape[:2]
        ho, wo = offset.shape[2:]
        k2 = k * k
        off = offset[:, : 2 * k2].astype(np.float64).reshape(n, k2, 2, ho, wo)
        oy = (np.arange(ho) * stride - padding)[:, None]
        ox = (np.arange(wo) * stride - padding)[None, :]
        xd = x.astype(np.float64)
        cols = np.empty((n, c, k2, ho, wo))
        for t in range(k2):  # eq. (38): tap p_n = (i, j) * dilation, read at p_0 + p_n + Δp_n
            i, j = divmod(t, k)
            v = _bilinear(xd, oy + i * dilation + off[:, t, 0], ox + j * dilation + off[:, t, 1])
            cols[:, :, t] = np.moveaxis(v, -1, 1)
        if modulated:
            # the sigmoid as 0.5 (1 + tanh(z / 2)): no overflow in exp at large |z|
            z = offset[:, 2 * k2 :].astype(np.float64)
            cols *= (0.5 * (1 + np.tanh(0.5 * z)))[:, None]
        co, cg = weight.shape[:2]
        wg = weight.astype(np.float64).reshape(groups, co // groups, cg, k2)
        y = np.einsum("ngcthw,goct->ngohw", cols.reshape(n, groups, cg, k2, ho, wo), wg)
        y = y.reshape(n, co, ho, wo)
        if bias is not None:
            y = y + bias.reshape(1, -1, 1, 1)
        return y.astype(np.float32)

    def torch(self, e, x, offset, weight, bias=None, *, k, stride, padding, dilation, groups,
              modulated, perms):
        if perms[0]:
            x = f"{x}.permute{perms[0]}"
        if perms[1]:
            e.stmt(f"_offset = {offset}.permute{perms[1]}")
            offset = "_offset"
        k2 = k * k
        like = f"dtype={offset}.dtype, device={offset}.device"
        # temporaries (a leading underscore: never a spec name), used by the lines after them
        e.stmt(f"_taps = torch.arange({k}, {like}) * {dilation}")
        e.stmt(f"_py = {offset}[:, 0:{2 * k2}:2] + (_taps.repeat_interleave({k})[:, None, None] "
               f"+ torch.arange({offset}.shape[2], {like})[:, None] * {stride} - {padding})")
        e.stmt(f"_px = {offset}[:, 1:{2 * k2}:2] + (_taps.repeat({k})[:, None, None] "
               f"+ torch.arange({offset}.shape[3], {like}) * {stride} - {padding})")
        e.stmt(f"_grid = torch.stack(((2 * _px + 1) / {x}.shape[3] - 1, "
               f"(2 * _py + 1) / {x}.shape[2] - 1), -1).flatten(1, 2)")
        cols = (f'F.grid_sample({x}, _grid, mode="bilinear", padding_mode="zeros", '
                f"align_corners=False).unflatten(2, ({k2}, -1))")
        if modulated:
            cols = f"{cols} * torch.sigmoid({offset}[:, {2 * k2}:]).unsqueeze(1)"
        if groups == 1:
            y = f'torch.einsum("ncthw,oct->nohw", {cols}, {weight}.flatten(2))'
        else:
            y = (f'torch.einsum("ngcthw,goct->ngohw", ({cols}).unflatten(1, ({groups}, -1)), '
                 f"{weight}.unflatten(0, ({groups}, -1)).flatten(3)).flatten(1, 2)")
        return f"{y} + {bias}[:, None, None]" if bias is not None else y

    def onnx(self, e, x, offset, weight, bias=None, *, k, stride, padding, dilation, groups,
             modulated, perms):
        from onnx import TensorProto

        x, offset = (e.op("Transpose", [t], perm=list(p)) if p else t
                     for t, p in zip((x, offset), perms, strict=True))
        f32 = TensorProto.FLOAT
        k2 = k * k
        co, cg = e.param_shape(weight)[:2]
        ho, wo = _size(e, offset, 2), _size(e, offset, 3)

        def axis_positions(n: str) -> str:  # [n] float: i * stride - padding
            steps = e.op("Range", [_scalar(e, 0), e.op("Squeeze", [n, e.const_i64((0,))]),
                                   _scalar(e, 1)])
            return e.op("Sub", [e.op("Mul", [e.op("Cast", [steps], to=f32),
                                             e.const_f32(float(stride))]),
                                e.const_f32(float(padding))])

        def taps(values: list[int]) -> str:  # [k², 1, 1] float
            t = e.op("Cast", [e.const_i64(values)], to=f32)
            return e.op("Reshape", [t, e.const_i64((k2, 1, 1))])

        ty = taps([(t // k) * dilation for t in range(k2)])
        tx = taps([(t % k) * dilation for t in range(k2)])
        oy = e.op("Unsqueeze", [axis_positions(ho), e.const_i64((1,))])  # [Ho, 1]
        ox = axis_positions(wo)  # [Wo]

        def part(start: int, end: int, step: int) -> str:
            return e.op("Slice", [offset, e.const_i64((start,)), e.const_i64((end,)),
                                  e.const_i64((1,)), e.const_i64((step,))])

        py = e.op("Add", [part(0, 2 * k2, 2), e.op("Add", [ty, oy])])  # [N, k², Ho, Wo]
        px = e.op("Add", [part(1, 2 * k2, 2), e.op("Add", [tx, ox])])

        def normalise(p: str, axis: int) -> str:  # (2p + 1) / n - 1
            n = e.op("Cast", [_size(e, x, axis)], to=f32)
            twice = e.op("Add", [e.op("Mul", [p, e.const_f32(2.0)]), e.const_f32(1.0)])
            return e.op("Unsqueeze", [e.op("Sub", [e.op("Div", [twice, n]), e.const_f32(1.0)]),
                                      e.const_i64((-1,))])

        grid = e.op("Concat", [normalise(px, 3), normalise(py, 2)], axis=-1)  # [N,k²,Ho,Wo,2]
        grid = e.op("Reshape", [grid, e.op("Concat", [e.const_i64((0, -1)), wo,
                                                      e.const_i64((2,))], axis=0)])
        cols = e.op("GridSample", [x, grid], mode=_onnx_mode(e, "bilinear"),
                    padding_mode="zeros",
                    align_corners=0)  # [N, C, k² Ho, Wo]
        cols = e.op("Reshape", [cols, e.op("Concat", [e.const_i64((0, 0, k2, -1)), wo],
                                           axis=0)])  # [N, C, k², Ho, Wo]
        if modulated:
            mask = e.op("Sigmoid", [part(2 * k2, 3 * k2, 1)])
            cols = e.op("Mul", [cols, e.op("Unsqueeze", [mask, e.const_i64((1,))])])
        if groups == 1:
            wt = e.op("Reshape", [weight, e.const_i64((co, cg, k2))])
            y = e.op("Einsum", [cols, wt], equation="ncthw,oct->nohw")
        else:
            cols = e.op("Reshape", [cols, e.op("Concat", [
                e.const_i64((0, groups, cg, k2, -1)), wo], axis=0)])
            wt = e.op("Reshape", [weight, e.const_i64((groups, co // groups, cg, k2))])
            y = e.op("Einsum", [cols, wt], equation="ngcthw,goct->ngohw")
            y = e.op("Reshape", [y, e.op("Concat", [e.const_i64((0, co, -1)), wo], axis=0)])
        if bias is not None:
            y = e.op("Add", [y, e.op("Reshape", [bias, e.const_i64((co, 1, 1))])])
        return y

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        n, c = in_shapes[0][:2]
        k2 = attrs["k"] ** 2
        samples = n * c * k2 * math.prod(out_shape[2:])
        macs = math.prod(out_shape) * math.prod(param_shapes["weight"][1:])
        flops = 2 * macs + 8 * samples + (samples if attrs["modulated"] else 0)
        params = sum(math.prod(s) for s in param_shapes.values())
        return Cost(flops=flops, bytes_moved=4 * (math.prod(in_shapes[0]) + math.prod(in_shapes[1])
                                                  + math.prod(out_shape) + params))

    def samples(self):
        return [
            # DCN v1: 3 x 3, offsets 2k² = 18
            Sample(inputs=(("N", "C", "H", "W"), ("N", "O", "H", "W")),
                   attrs={"map": Map(("C",), ("D",)), "over": ("H", "W")},
                   sizes={"O": 18, "D": 4}),
            # DCN v2 (modulated), grouped, no bias; x channels-last, offsets permuted
            Sample(inputs=(("N", "H", "W", "C"), ("W", "O", "N", "H")),
                   attrs={"map": Map(("C",), ("D",)), "over": ("H", "W"), "groups": 2,
                          "bias": False, "modulated": True},
                   sizes={"O": 27, "D": 4}),
            # strided and dilated, output dims renamed; 5 x 7 -> 3 x 4
            Sample(inputs=(("N", "C", "H", "W"), ("N", "O", "Hs", "Ws")),
                   attrs={"map": Map(("C",), ("D",)), "over": ("H", "W"), "stride": 2,
                          "dilation": 2, "padding": 2, "to": ("Hs", "Ws"), "modulated": True},
                   sizes={"O": 27, "D": 8, "Hs": 3, "Ws": 4}),
            # a 1 x 1 deformable conv C -> C, k=1 (2 offsets per position)
            Sample(inputs=(("N", "C", "H", "W"), ("N", "O", "H", "W")),
                   attrs={"map": Map(("C",), ("C",)), "over": ("H", "W"), "k": 1},
                   sizes={"O": 2, "N": 3}),
        ]
