"""Local windows over named dims (im2col) and the position tensors local attention needs.

`unfold` gives every position its k-neighbourhood as new window dims (SASA, LR-Net, SAN: survey
§3.2.7, catalogue rows 27-29); `rel_grid` is the compile-time grid of window offsets (LR-Net's
geometry prior); `coords` is the run-time grid of normalised coordinates (SAN's position
encoding, which depends on the map's size).
"""

from __future__ import annotations

import math

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    Arg,
    ChoiceArg,
    Cost,
    DimsArg,
    InferContext,
    IntArg,
    Op,
    OpError,
    ParamSpec,
    Sample,
    Signature,
    check_over,
    register,
)
from attncc.ops.const import ConstantBuffer

PADS = ("zeros", "reflect")


def _new_dims(op: str, x: TensorType, over: tuple[str, ...], new: tuple[str, ...],
              key: str = "as") -> None:
    """`over` are distinct dims of x; `new` (one per `over` dim) are distinct new names."""
    check_over(op, x, over)
    if len(new) != len(over):
        raise OpError(f"`{key}` names {len(new)} dim{'s' if len(new) != 1 else ''} for the "
                      f"{len(over)} dims "
                      f"`{' '.join(over)}`", arg=key,
                      hints=(f"name one new dim per dim of `over`, e.g. "
                             f"`{key}={' '.join(f'K{d.lower()}' for d in over)}`",))
    if len(set(new)) != len(new):
        raise OpError(f"`{key}` names a dim twice: `{' '.join(new)}`", arg=key)
    for d in new:
        if d in x:
            raise OpError(f"{op} would give two dims named `{d}`", arg=key,
                          hints=("the window dims are new: give them new names",))


@register
class Unfold(Op):
    """unfold(x, over: dims, k: int?, dilation: int = 1, as: dims, pad) -> x, then `as`.

    The k-neighbourhood of every position as new window dims (im2col with "same" size):
    `unfold(v, over=H W, k=7, as=Kh Kw)` on [N, C, H, W] is [N, C, H, W, Kh, Kw] with
    out[n, c, h, w, i, j] = v[n, c, h + d(i - (k-1)/2), w + d(j - (k-1)/2)] (d the dilation),
    positions outside the map being zero (`pad="zeros"`) or mirrored without repeating the
    edge (`pad="reflect"`, torch's ReflectionPad; it needs d(k-1)/2 < the map's size). One
    dim works the same (`unfold(x, over=T, k=3, as=K)`). A window dim's size is its kernel
    size: `k` gives every window that size; without `k` each `as` dim must already have a
    (odd) size, so `dim Kw = 5` makes a 7 x 5 window. The local attentions of SASA, LR-Net and
    SAN (survey §3.2.7, eqs. 41-44) contract queries with unfolded keys over the channels and
    sum softmax-weighted unfolded values over the window dims.

    Lowerings: torch F.pad (or a reflected index_select) and Tensor.unfold per dim; ONNX Pad
    (opset 18, constant or reflect) then, per dim, k Slices whose ends come from the run-time
    Shape, stacked with Unsqueeze + Concat (k_h + k_w slices, not k_h * k_w); NumPy np.pad
    and sliding_window_view. The output is k_h * k_w times the input: memory is the cost.
    """

    name = "unfold"
    signature = Signature(
        tensors=("x",),
        attrs={
            "over": DimsArg(required=True, doc="the dims the window slides over"),
            "k": IntArg(default=None, min=1, max=63, doc="window size (odd) of every dim"),
            "dilation": IntArg(default=1, min=1, max=64),
            "as": DimsArg(required=True, doc="the new window dims, one per `over` dim"),
            "pad": ChoiceArg(default="zeros", choices=PADS, doc="what lies outside the map"),
            "sizes": Arg(doc="set by the shape rule, not by a spec"),
        },
    )
    traits = frozenset({"pure"})

    @staticmethod
    def _sizes(ctx: InferContext, new: tuple[str, ...], k: int | None) -> tuple[int, ...]:
        """The window dims' sizes: k, or the sizes the block declared for them."""
        sizes = []
        for d in new:
            known = ctx.known_size(d)
            size = k if k is not None else known
            if size is None:
                raise OpError(
                    f"unfold cannot tell the size of the window dim `{d}`", arg="as",
                    hints=("give the window size: `k=7`",
                           f"or declare the window dim first: `dim {d} = 7`"), kind="hyper")
            if size % 2 == 0:
                src = "k" if k is not None else f"`{d}`"
                raise OpError(
                    f"unfold's window must have an odd size to be centred, but {src} is {size}",
                    arg="k" if k is not None else "as", hints=(f"use {size - 1} or {size + 1}",),
                    kind="hyper")
            if known is not None and known != size:
                raise OpError(f"window dim `{d}` already has size {known}, not {size}",
                              arg="as", hints=("give the window dim a new name",))
            sizes.append(size)
        return tuple(sizes)

    def infer(self, ctx, ins, attrs):
        (x,) = ins
        over, new = attrs["over"], attrs["as"]
        _new_dims(self.name, x, over, new)
        sizes = self._sizes(ctx, new, attrs["k"])
        for d, size in zip(new, sizes, strict=True):
            ctx.new_dim(d, size)
        # the lowerings never see the dim table: the window sizes travel as an attribute
        attrs["sizes"] = sizes
        return TensorType(x.dims + tuple(new), x.bcast)

    def resolve(self, ins, out, attrs):
        (x,) = ins
        return {"axes": x.axes(attrs["over"]), "ks": tuple(attrs["sizes"]),
                "dilation": attrs["dilation"], "pad": attrs["pad"], "rank": x.rank}

    # ---- lowerings ----
    def numpy(self, x, *, axes, ks, dilation, pad, rank):
        widths = [(0, 0)] * rank
        for a, k in zip(axes, ks, strict=True):
            p = dilation * (k - 1) // 2
            if pad == "reflect" and p >= x.shape[a]:
                raise ValueError(f"reflect padding {p} needs a dim larger than {p}, got "
                                 f"{x.shape[a]}")
            widths[a] = (p, p)
        xp = np.pad(x, widths, mode="constant" if pad == "zeros" else "reflect")
        spans = tuple(dilation * (k - 1) + 1 for k in ks)
        y = np.lib.stride_tricks.sliding_window_view(xp, spans, axis=axes)
        if dilation > 1:
            y = y[(Ellipsis, *(slice(None, None, dilation) for _ in ks))]
        return np.ascontiguousarray(y, dtype=x.dtype)

    def torch(self, e, x, *, axes, ks, dilation, pad, rank):
        pads = {a: dilation * (k - 1) // 2 for a, k in zip(axes, ks, strict=True)}
        if pad == "zeros":
            # F.pad lists (before, after) from the last axis backwards
            first = min(axes)
            widths = [w for a in range(rank - 1, first - 1, -1) for w in (pads.get(a, 0),) * 2]
            t = f"F.pad({x}, {tuple(widths)!r})"
        else:
            # mirrored indices (n-1) - |(n-1) - |i|| for i in [-p, n+p): any rank, any axes
            t = x
            for a, p in pads.items():
                n = f"{x}.shape[{a}]"
                index = (f"(({n} - 1) - (({n} - 1) - torch.arange(-{p}, {n} + {p}, "
                         f"device={x}.device).abs()).abs())")
                t = f"{t}.index_select({a}, {index})"
        for a, k in zip(axes, ks, strict=True):
            span = dilation * (k - 1) + 1
            t = f"{t}.unfold({a}, {span}, 1)"
            if dilation > 1:
                t = f"{t}[..., ::{dilation}]"
        return t

    def onnx(self, e, x, *, axes, ks, dilation, pad, rank):
        pads = [0] * (2 * rank)
        for a, k in zip(axes, ks, strict=True):
            pads[a] = pads[a + rank] = dilation * (k - 1) // 2
        mode = "constant" if pad == "zeros" else "reflect"
        t = e.op("Pad", [x, e.const_i64(pads)], mode=mode)
        for i, (a, k) in enumerate(zip(axes, ks, strict=True)):
            n = e.op("Shape", [x], start=a, end=a + 1)                     # [1] int64
            last = rank + i                                                # the new window axis
            taps = []
            for j in range(k):
                start = e.const_i64((j * dilation,))
                piece = e.op("Slice", [t, start, e.op("Add", [start, n]), e.const_i64((a,))])
                taps.append(e.op("Unsqueeze", [piece, e.const_i64((last,))]))
            t = e.op("Concat", taps, axis=last)
        return t

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        # a copy: read the input (and its halo), write the k_h * k_w times larger output
        return Cost(flops=0, bytes_moved=4 * (math.prod(in_shapes[0]) + math.prod(out_shape)))

    def samples(self):
        return [
            # SASA / LR-Net: a 2-D window, sizes from declared window dims (3 x 9)
            Sample(inputs=(("N", "C", "H", "W"),),
                   attrs={"over": ("H", "W"), "as": ("Kh", "Kw")},
                   sizes={"Kh": 3, "Kw": 9, "H": 4, "W": 8}),
            # a temporal kernel over one dim, with `k`, the dim first
            Sample(inputs=(("T", "N", "C"),), attrs={"over": ("T",), "k": 5, "as": ("K",)},
                   sizes={"T": 7}),
            # dilation 2, windows wider than the map (all-zero halo), `over` out of x's order
            Sample(inputs=(("N", "W", "H"),),
                   attrs={"over": ("H", "W"), "as": ("Kh", "Kw"), "dilation": 2},
                   sizes={"Kh": 3, "Kw": 9, "H": 4, "W": 6}),
            # SAN: reflection padding, 2-D
            Sample(inputs=(("N", "C", "H", "W"),),
                   attrs={"over": ("H", "W"), "as": ("Kh", "Kw"), "pad": "reflect"},
                   sizes={"Kh": 3, "Kw": 9, "H": 4, "W": 8}),
            # reflection with dilation, over one dim of a 3-D map
            Sample(inputs=(("N", "T", "C"),),
                   attrs={"over": ("T",), "k": 3, "dilation": 3, "as": ("K",),
                          "pad": "reflect"}, sizes={"T": 7, "C": 4}),
        ]


@register
class RelGrid(ConstantBuffer):
    """rel_grid(over: dims, as: dim, dilation: int = 1) -> [as, over...].

    The window offsets as a compile-time constant: `rel_grid(over=Kh Kw, as=P)` is
    [P=2, Kh, Kw] with P=0 the row offset d(i - (k_h-1)/2) and P=1 the column offset
    d(j - (k_w-1)/2) of window tap (i, j), matching `unfold`'s window dims. LR-Net's geometry
    prior (Hu et al., ICCV 2019) is a small MLP of these offsets. The sizes of the window dims
    must be known; the values sit in a buffer `weight` (not learnable).
    """

    name = "rel_grid"
    signature = Signature(
        tensors=(),
        attrs={
            "over": DimsArg(required=True, doc="the window dims, e.g. Kh Kw"),
            "as": DimsArg(required=True, doc="the new dim indexing the offset's axis"),
            "dilation": IntArg(default=1, min=1, max=64),
        },
    )
    traits = frozenset({"has_params"})

    def _check(self, ctx, attrs) -> tuple[int, ...]:
        over, new = attrs["over"], attrs["as"]
        if not 1 <= len(over) <= 3 or len(set(over)) != len(over):
            raise OpError(f"rel_grid needs 1 to 3 distinct window dims, got `{' '.join(over)}`",
                          arg="over")
        if len(new) != 1 or new[0] in over:
            raise OpError("rel_grid makes one new dim for the offset's axis, e.g. `as=P`",
                          arg="as")
        sizes = tuple(ctx.require_size(d, "rel_grid's offsets") for d in over)
        try:
            ctx.new_dim(new[0], len(over))
        except OpError as err:
            raise OpError(err.message, arg="as") from None
        return sizes

    def infer(self, ctx, ins, attrs):
        self._check(ctx, attrs)
        return TensorType((attrs["as"][0], *attrs["over"]))

    def params(self, ctx, ins, attrs):
        sizes = self._check(ctx, attrs)
        d = attrs["dilation"]
        grids = np.meshgrid(*(d * (np.arange(k) - (k - 1) / 2) for k in sizes), indexing="ij")
        values = np.stack(grids).astype(np.float64).ravel()
        # `values`: the buffer's numbers, row-major (torch_codegen copies them in)
        return {"weight": ParamSpec((len(sizes), *sizes), "values", buffer=True,
                                    init_args=tuple(float(v) for v in values))}

    def samples(self):
        return [
            Sample(inputs=(), attrs={"over": ("Kh", "Kw"), "as": ("P",)},
                   sizes={"Kh": 3, "Kw": 5}),
            Sample(inputs=(), attrs={"over": ("K",), "as": ("P",), "dilation": 2},
                   sizes={"K": 7}),
        ]


@register
class Coords(Op):
    """coords(x, over: dims, as: dim, keep: dims = ()) -> [keep..., as, over...].

    Normalised coordinates of x's positions, from its run-time sizes: entry i of `as` is
    linspace(-1, 1, n_i) along the i-th `over` dim (torch.linspace; -1 for a dim of size 1),
    constant along the others. `coords(x, over=W H, as=P)` on [N, C, H, W] is SAN's
    `position(H, W)` (hszhao/SAN, model/san.py): [P=2, H, W] with P=0 the column and P=1 the
    row coordinate. `keep` repeats the grid along dims of x (SAN's `.repeat` over the batch),
    so it can join tensors that have them. The over dims come in x's order.
    """

    name = "coords"
    signature = Signature(
        tensors=("x",),
        attrs={
            "over": DimsArg(required=True),
            "as": DimsArg(required=True, doc="the new dim indexing the coordinate's axis"),
            "keep": DimsArg(default=(), doc="dims of x the grid repeats along"),
        },
    )
    traits = frozenset({"pure"})

    def _layout(self, x: TensorType, attrs) -> tuple[str, ...]:
        over, new, keep = attrs["over"], attrs["as"], attrs["keep"]
        check_over(self.name, x, over)
        if len(new) != 1 or new[0] in x:
            raise OpError("coords makes one new dim for the coordinate's axis, e.g. `as=P`",
                          arg="as")
        for d in keep:
            if d not in x.real or d in over:
                raise OpError(f"coords keeps `{d}`, which is not a dim of {x} outside `over`",
                              arg="keep")
        return (*(d for d in x.dims if d in keep), new[0], *(d for d in x.dims if d in over))

    def infer(self, ctx, ins, attrs):
        dims = self._layout(ins[0], attrs)
        try:
            ctx.new_dim(attrs["as"][0], len(attrs["over"]))
        except OpError as err:
            raise OpError(err.message, arg="as") from None
        return TensorType(dims)

    def aligned_inputs(self, ins, out):
        return [None]  # x lends its sizes only

    def resolve(self, ins, out, attrs):
        (x,) = ins
        spatial = [d for d in x.dims if d in attrs["over"]]
        return {"axes": tuple(x.index(d) for d in attrs["over"]),
                # per `over` dim: its position among the output's grid dims
                "at": tuple(spatial.index(d) for d in attrs["over"]),
                "keep": x.axes(tuple(d for d in x.dims if d in attrs["keep"])),
                "grid": tuple(x.index(d) for d in spatial)}

    @staticmethod
    def _line(n: int) -> np.ndarray:
        return np.linspace(-1.0, 1.0, n, dtype=np.float32) if n > 1 else -np.ones(
            n, dtype=np.float32)

    def numpy(self, x, *, axes, at, keep, grid):
        sizes = [x.shape[a] for a in grid]
        planes = []
        for a, i in zip(axes, at, strict=True):
            shape = [1] * len(grid)
            shape[i] = x.shape[a]
            planes.append(np.broadcast_to(self._line(x.shape[a]).reshape(shape), sizes))
        out = np.stack(planes)
        lead = [x.shape[a] for a in keep]
        return np.ascontiguousarray(np.broadcast_to(out, (*lead, *out.shape)))

    def torch(self, e, x, *, axes, at, keep, grid):
        sizes = ", ".join(f"{x}.shape[{a}]" for a in grid)
        planes = []
        for a, i in zip(axes, at, strict=True):
            view = ", ".join("-1" if j == i else "1" for j in range(len(grid)))
            line = (f"torch.linspace(-1.0, 1.0, {x}.shape[{a}], dtype={x}.dtype, "
                    f"device={x}.device)")
            planes.append(f"{line}.view({view}).expand({sizes})")
        t = f"torch.stack([{', '.join(planes)}])"
        if keep:
            lead = ", ".join(f"{x}.shape[{a}]" for a in keep)
            t = f"{t}.expand({lead}, {', '.join(['-1'] * (len(grid) + 1))})"
        return t

    def onnx(self, e, x, *, axes, at, keep, grid):
        from onnx import TensorProto

        f32 = TensorProto.FLOAT
        shape = e.op("Concat", [e.op("Shape", [x], start=a, end=a + 1) for a in grid], axis=0)
        planes = []
        for a, i in zip(axes, at, strict=True):
            n = e.op("Shape", [x], start=a, end=a + 1)                     # [1] int64
            steps = e.op("Range", [self._scalar(e, e.const_i64((0,))), self._scalar(e, n),
                                   self._scalar(e, e.const_i64((1,)))])
            # step 2 / max(n - 1, 1): linspace(-1, 1, 1) is [-1]
            gaps = e.op("Max", [e.op("Sub", [n, e.const_i64((1,))]), e.const_i64((1,))])
            step = e.op("Div", [e.const_f32(2.0), e.op("Cast", [gaps], to=f32)])
            line = e.op("Sub", [e.op("Mul", [e.op("Cast", [steps], to=f32), step]),
                                e.const_f32(1.0)])
            dims = [j for j in range(len(grid)) if j != i]
            if dims:
                line = e.op("Unsqueeze", [line, e.const_i64(tuple(dims))])
            line = e.op("Expand", [line, shape])
            planes.append(e.op("Unsqueeze", [line, e.const_i64((0,))]))
        t = e.op("Concat", planes, axis=0)
        if keep:
            lead = [e.op("Shape", [x], start=a, end=a + 1) for a in keep]
            ones = e.const_i64((1,) * (len(grid) + 1))
            t = e.op("Expand", [t, e.op("Concat", [*lead, ones], axis=0)])
        return t

    @staticmethod
    def _scalar(e, one: str) -> str:
        """A 0-d int64 from a [1] tensor (Range takes scalars)."""
        return e.op("Squeeze", [one, e.const_i64((0,))])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        return Cost(flops=2 * math.prod(out_shape), bytes_moved=4 * math.prod(out_shape))

    def samples(self):
        return [
            # SAN's grid: [P, H, W], column coordinate first
            Sample(inputs=(("N", "C", "H", "W"),), attrs={"over": ("W", "H"), "as": ("P",)},
                   sizes={"N": 3}),
            # one dim, repeated over the batch
            Sample(inputs=(("N", "T", "C"),), attrs={"over": ("T",), "as": ("P",),
                                                      "keep": ("N",)}),
            # three dims, the batch last
            Sample(inputs=(("D", "H", "W", "N"),),
                   attrs={"over": ("H", "W", "D"), "as": ("P",), "keep": ("N",)},
                   sizes={"D": 4, "P": 3}),
        ]
