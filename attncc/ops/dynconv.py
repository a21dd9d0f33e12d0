"""Convolution with a kernel computed per sample on the graph: CondConv, DyConv and TAM.

The kernel `w` is an ordinary tensor of the block (mixed experts, a generated temporal kernel),
so every sample of the batch is convolved with its own weights. Each lowering is exact and
keeps the batch and spatial dims dynamic:

* PyTorch folds the batch into the channels and convolves once with N·g groups
  (`x.reshape(1, N·C, ...)`, weight `(N·Co, C/g, k, ...)`), as CondConv's and TAM's authors do;
* ONNX (opset 18) cannot use Conv there, whose group count must be static, so the padded input
  is cut into k^d shifted `Slice`s (ends from the run-time `Shape`), stacked along a tap axis
  and contracted with the kernel by one `Einsum` (the catalogue's "shift-einsum" form);
* NumPy sums the taps directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    Cost,
    DimsArg,
    IntArg,
    Map,
    MapArg,
    Op,
    OpError,
    Sample,
    Signature,
    check_over,
    perm_or_none,
    register,
)
from attncc.ops.layout import FrameLayout


@dataclass(frozen=True)
class _Layout:
    """The roles of the dims of x, w and b (names), worked out once from the types."""

    batch: str
    channel: str | None  # x's channel dim (None: x has none)
    out: str | None  # the output's channel dim (None: no channel)
    w_in: str | None  # the kernel's input-channel dim (dense/grouped); None: depthwise
    over: tuple[str, ...]
    carried: tuple[str, ...]  # x's other dims, passed through (kernel size 1 along them)
    taps: tuple[str, ...]

    @property
    def dense(self) -> bool:
        return self.w_in is not None

    def w_dims(self) -> tuple[str, ...]:
        chans = (self.out, self.w_in) if self.dense else (self.channel,) if self.channel else ()
        return (self.batch, *chans, *self.taps)

    def b_dims(self) -> tuple[str, ...]:
        return (self.batch, self.out) if self.out else (self.batch,)


_USE = "dynamic_conv(x, w, [b], In -> Out, over=..., taps=..., k=...)"


@register
class DynamicConv(Op):
    """dynamic_conv(x, w, [b], In -> Out, over, taps, k, dilation=1, groups=1) -> x, In -> Out.

    Convolution of x over its dims `over` (1 to 3 of them; stride 1, zero "same" padding
    dilation·(k−1)/2, so k must be odd) with a kernel `w` computed per sample. `w` has x's
    batch dim (the first dim of x outside `over` and `In` that w has), its taps `taps` (one
    dim per `over` dim, paired by position, each of size k; or a single dim of k^d taps,
    row-major in `over`'s order, as a flattened k x k kernel [E, O, C, k·k] is stored), and
    its channel dims:

    * with a map `C -> O`: w is [N, O, Cg, taps...]; Cg is C itself when groups = 1 (a dense
      conv: CondConv's and dynamic convolution's mixed kernel, survey eqs. 65-70), or a dim of
      size C / groups; the output has O in place of C (`C -> C` keeps the name, groups > 1);
    * without a map it is depthwise: w is [N, C, taps...] (one kernel per sample and channel,
      TAM's temporal kernel, survey eq. 56), or [N, taps...] when x has no channel dim.

    Dims of x besides these (TAM's H W under a conv over T) are carried through, each position
    convolved alike. An optional per-sample bias `b` ([N, O], or [O]) is added.
    """

    name = "dynamic_conv"
    signature = Signature(
        tensors=("x",),
        attrs={
            "map": MapArg(default=Map((), ())),
            "over": DimsArg(required=True),
            "taps": DimsArg(required=True),
            "k": IntArg(required=True, min=1, max=63),
            "dilation": IntArg(default=1, min=1, max=64),
            "groups": IntArg(default=1, min=1),
        },
        positional=("map",),
        variadic=True,
    )
    traits = frozenset({"pure"})

    # ---- the shape rule ----
    def _layout(self, ins: list[TensorType], attrs: dict[str, Any]) -> _Layout:
        if len(ins) not in (2, 3):
            raise OpError(f"dynamic_conv takes a tensor, its kernel and an optional bias, not "
                          f"{len(ins)} tensors", hints=(f"call it as {_USE}",))
        x, w = ins[0], ins[1]
        over, taps, m = attrs["over"], attrs["taps"], attrs["map"]
        check_over(self.name, x, over)
        if len(taps) != len(over) and len(taps) != 1:
            raise OpError(f"`taps` names {len(taps)} kernel dims for the {len(over)} dims "
                          f"`{' '.join(over)}`", arg="taps",
                          hints=("name one tap dim of the kernel per convolved dim, or one "
                                 "dim holding all the taps",))
        if len(set(taps)) != len(taps):
            raise OpError(f"`taps` names a dim twice: `{' '.join(taps)}`", arg="taps")
        for d in taps:
            if d not in w.real:
                raise OpError(f"the kernel has no tap dim `{d}`: its dims are {w}", arg="taps",
                              hints=(f"name the kernel's tap dims among {', '.join(w.real)}",))
            if d in x:
                raise OpError(f"tap dim `{d}` is also a dim of the input {x}", arg="taps",
                              hints=("give the kernel's taps their own names (`K`, `KH KW`)",))
        if len(m.src) > 1 or len(m.dst) > 1 or (not m.src) != (not m.dst):
            raise OpError(f"dynamic_conv maps one channel dim to one, not `{m}`", arg="map",
                          hints=("`C -> O` for a conv that mixes channels; no map for a "
                                 "depthwise kernel",))
        rest = [d for d in x.dims if d not in over]
        if m.src:
            return self._dense_layout(x, w, rest, m.src[0], m.dst[0], attrs)
        return self._depthwise_layout(x, w, rest, attrs)

    def _dense_layout(self, x: TensorType, w: TensorType, rest: list[str], cin: str,
                      cout: str, attrs: dict[str, Any]) -> _Layout:
        over, taps = attrs["over"], attrs["taps"]
        if cin not in x.real:
            raise OpError(f"dynamic_conv maps channel dim `{cin}` but its input has dims {x}",
                          arg="map")
        if cin in over:
            raise OpError(f"`{cin}` cannot be both the channel dim and a conv dim", arg="map")
        if cout != cin and cout in x:
            raise OpError(f"dynamic_conv would give two dims named `{cout}`", arg="map",
                          hints=("name the output channel dim differently",))
        rest = [d for d in rest if d != cin]
        batch = self._batch(x, w, rest)
        if cout not in w.real:
            raise OpError(f"the kernel {w} has no output channel dim `{cout}`", arg="map",
                          hints=(f"a kernel for `{cin} -> {cout}` has dims [{batch}, {cout}, "
                                 f"{cin}, {', '.join(taps)}]",))
        others = [d for d in w.dims if d not in (batch, cout, *taps)]
        if len(others) != 1:
            raise OpError(
                f"the kernel of a `{cin} -> {cout}` conv needs exactly one input-channel dim "
                f"besides `{batch}`, `{cout}` and the taps, found {len(others)} in {w}",
                arg="map", hints=(f"a dense kernel has dims [{batch}, {cout}, {cin}, "
                                  f"{', '.join(taps)}]",))
        w_in = others[0]
        groups = attrs["groups"]
        if groups == 1 and w_in != cin:
            raise OpError(
                f"with groups=1 the kernel's input-channel dim must be `{cin}`, not `{w_in}`",
                arg="map" if cout == cin else "groups",
                hints=("a `C -> C` map needs a differently named output dim (`C -> O`) or "
                       "groups > 1" if cout == cin else
                       f"set groups=... so that `{w_in}` is `{cin}` / groups",))
        if groups > 1 and w_in == cin:
            raise OpError(f"with groups={groups} the kernel's input-channel dim is a group's "
                          f"share of `{cin}`, so it needs its own name", arg="groups")
        carried = tuple(d for d in rest if d != batch)
        return _Layout(batch, cin, cout, w_in, over, carried, taps)

    def _depthwise_layout(self, x: TensorType, w: TensorType, rest: list[str],
                          attrs: dict[str, Any]) -> _Layout:
        over, taps = attrs["over"], attrs["taps"]
        if attrs["groups"] != 1:
            raise OpError("groups apply to a conv that maps channels (`C -> O`); a kernel "
                          "without a map is already depthwise", arg="groups")
        batch = self._batch(x, w, rest)
        chans = [d for d in w.dims if d not in (batch, *taps)]
        foreign = [d for d in chans if d not in x.real]
        if foreign:
            raise OpError(
                f"the kernel {w} has dim `{foreign[0]}`, which the input {x} lacks", arg="map",
                hints=(f"for a kernel that maps channels give the map, e.g. "
                       f"`{rest[1] if len(rest) > 1 else 'C'} -> {foreign[0]}`",))
        if len(chans) > 1:
            raise OpError(f"a depthwise kernel has one channel dim at most, {w} has "
                          f"{', '.join(chans)}", arg="map")
        if chans and chans[0] in over:
            raise OpError(f"the kernel's channel dim `{chans[0]}` is a convolved dim",
                          arg="taps", hints=("list the kernel's own tap dims in `taps`",))
        channel = chans[0] if chans else None
        carried = tuple(d for d in rest if d not in (batch, channel))
        return _Layout(batch, channel, channel, None, over, carried, taps)

    @staticmethod
    def _batch(x: TensorType, w: TensorType, rest: list[str]) -> str:
        """The batch: the first dim of x, outside `over` and the mapped channel, that w has."""
        shared = [d for d in rest if d in w.real]
        if not shared:
            raise OpError(
                f"the kernel {w} is not per sample: it has none of the dims "
                f"{', '.join(rest) or '(none)'} of the input {x} besides `over`",
                hints=("a kernel shared by all samples is a `conv` with a learned weight",))
        return shared[0]

    def _check(self, ctx, ins: list[TensorType], attrs: dict[str, Any]) -> _Layout:
        lay = self._layout(ins, attrs)
        k = attrs["k"]
        if k % 2 == 0:
            raise OpError(f"dynamic_conv pads to keep the size of `{' '.join(lay.over)}`, which "
                          f"needs an odd k, not {k}", arg="k", kind="hyper",
                          hints=(f"use k={k - 1} or k={k + 1}",))
        if len(lay.over) + (1 if lay.carried else 0) > 3:
            raise OpError(f"dynamic_conv over 3 dims carries no other dims, found "
                          f"{', '.join(lay.carried)}", arg="over")
        flat = len(lay.taps) != len(lay.over)
        for d in lay.taps:
            n = ctx.require_size(d, "dynamic_conv's kernel")
            want = k ** len(lay.over) if flat else k
            if n != want:
                what = (f"a flattened {' x '.join([str(k)] * len(lay.over))} kernel has {want} "
                        f"taps" if flat else f"k={k}")
                raise OpError(f"tap dim `{d}` has size {n}, but {what}", arg="taps",
                              hints=("one tap dim per convolved dim is k long; a single one "
                                     "for all of them is k^d long",))
        if lay.dense:
            cin = ctx.require_size(lay.channel, "dynamic_conv")
            cout = ctx.require_size(lay.out, "dynamic_conv")
            share = ctx.require_size(lay.w_in, "dynamic_conv")
            g = attrs["groups"]
            if cin % g or cout % g or cin // g != share:
                raise OpError(
                    f"groups={g} does not fit: `{lay.channel}` ({cin}) and `{lay.out}` "
                    f"({cout}) must be multiples of it, and the kernel's `{lay.w_in}` "
                    f"({share}) must be {lay.channel} / groups", arg="groups", kind="hyper")
        if len(ins) == 3:
            b, allowed = ins[2], lay.b_dims()
            extra = [d for d in b.real if d not in allowed]
            if extra:
                raise OpError(f"the bias {b} has dim `{extra[0]}`; a bias has dims among "
                              f"[{', '.join(allowed)}]", hints=(f"call it as {_USE}",))
        return lay

    def infer(self, ctx, ins, attrs):
        lay = self._check(ctx, ins, attrs)
        x = ins[0]
        if lay.dense:
            return x.replace(lay.channel, (lay.out,))
        return TensorType(x.dims)

    def aligned_inputs(self, ins, out):
        # the kernel's dims that the output has (batch, channel) first, in the output's order,
        # then the others (input channels, taps) as they are: the cost facet then finds the
        # per-output-element extent as the trailing dims; `resolve` permutes the rest
        if len(ins) < 2:
            return [None] * len(ins)
        w = ins[1]
        want = (tuple(d for d in out.dims if d in w.dims)
                + tuple(d for d in w.dims if d not in out.dims))
        return [None, None if want == w.dims else TensorType(want)] + [None] * (len(ins) - 2)

    def resolve(self, ins, out, attrs):
        lay = self._layout(ins, attrs)
        x = ins[0]
        spatial = lay.over + lay.carried
        frame = FrameLayout.of(x, out, lay.batch, lay.channel, spatial, spatial,
                               out_channel=lay.out)
        return {"frame": frame, "nd": len(lay.over), "ncarried": len(lay.carried),
                "flat": len(lay.taps) != len(lay.over),
                "k": attrs["k"], "dilation": attrs["dilation"], "groups": attrs["groups"],
                "dense": lay.dense, "batch_axis": x.index(lay.batch),
                "channel_axis": x.index(lay.channel) if lay.channel else None,
                "carried_axes": x.axes(lay.carried),
                # the kernel as [batch, out, in, taps...] (or [batch, channel?, taps...]); the
                # bias's dims in [batch, out] order and where they sit in the output frame
                "w_perm": perm_or_none(ins[1].axes(lay.w_dims())),
                **self._bias_layout(ins, lay)}

    @staticmethod
    def _bias_layout(ins: list[TensorType], lay: _Layout) -> dict[str, Any]:
        if len(ins) < 3:
            return {"b_perm": None, "b_index": ()}
        b = ins[2]
        frame = (lay.batch, lay.out)                 # axes 0 and 1 of the output frame
        present = tuple(d for d in frame if d is not None and d in b.real)
        index = tuple(i for i, d in enumerate(frame) if d is not None and d in present)
        return {"b_perm": perm_or_none(b.axes(present)), "b_index": index}

    # ---- lowerings: x moves to (batch, channel, *over, *carried), w to [N, O, Cg, taps...] ----
    def numpy(self, x, w, b=None, *, frame, nd, ncarried, flat, k, dilation, groups, dense,
              batch_axis, channel_axis, carried_axes, w_perm, b_perm, b_index):
        xe = frame.enter_numpy(x).astype(np.float64)
        pad = dilation * (k - 1) // 2
        xp = np.pad(xe, [(0, 0), (0, 0)] + [(pad, pad)] * nd + [(0, 0)] * ncarried)
        n, sp = xe.shape[0], xe.shape[2:]
        w = (w.transpose(w_perm) if w_perm else w).astype(np.float64)
        if flat:
            w = w.reshape(w.shape[:-1] + (k,) * nd)
        if dense:
            xg = xp.reshape(n, groups, -1, *xp.shape[2:])           # N, g, Cg, *padded
            wg = w.reshape(n, groups, -1, *w.shape[2:])             # N, g, Og, Cg, *taps
            y = np.zeros((n, groups, wg.shape[2], *sp))
        else:
            wg = w.reshape(n, -1, *w.shape[-nd:])                   # N, C (or 1), *taps
            y = np.zeros(xe.shape)
        for tap in np.ndindex(*(k,) * nd):
            cut = tuple(slice(t * dilation, t * dilation + sp[i]) for i, t in enumerate(tap))
            if dense:
                patch = xg[(slice(None),) * 3 + cut]
                y += np.einsum("ngc...,ngoc->ngo...", patch, wg[(..., *tap)])
            else:
                patch = xp[(slice(None),) * 2 + cut]
                y += patch * wg[(..., *tap)].reshape(wg.shape[:2] + (1,) * len(sp))
        y = y.reshape(n, -1, *sp)
        if b is not None:
            y = y + _bias_numpy(b, b_perm, b_index, y.ndim)
        return np.ascontiguousarray(frame.leave_numpy(y.astype(np.float32)))

    def torch(self, e, x, w, b=None, *, frame, nd, ncarried, flat, k, dilation, groups, dense,
              batch_axis, channel_axis, carried_axes, w_perm, b_perm, b_index):
        # the batch folds into the channels: one conv of [1, N·C, ...] with N·g groups
        n = f"{x}.shape[{batch_axis}]"
        t = f"{frame.enter_torch(x)}.flatten(0, 1).unsqueeze(0)"   # 1, N·C, *over, *carried
        if ncarried > 1:
            t = f"{t}.flatten({2 + nd})"                            # carried dims as one
        wc = f"{w}.permute{w_perm}" if w_perm else w
        if flat:
            wc = f"{wc}.unflatten(-1, {(k,) * nd})"
        if dense:
            wt, g = f"{wc}.flatten(0, 1)", n if groups == 1 else f"{n} * {groups}"
        elif channel_axis is not None:
            wt, g = f"{wc}.flatten(0, 1).unsqueeze(1)", f"{n} * {x}.shape[{channel_axis}]"
        else:
            wt, g = f"{wc}.unsqueeze(1)", n
        pad, dil = (dilation * (k - 1) // 2,) * nd, (dilation,) * nd
        if ncarried:  # a kernel of size 1 along the carried dim
            wt, pad, dil = f"{wt}.unsqueeze(-1)", (*pad, 0), (*dil, 1)
        y = f"F.conv{len(pad)}d({t}, {wt}, None, 1, {pad}, {dil}, {g})"
        y = f"{y}.squeeze(0).unflatten(0, ({n}, -1))"              # N, O, *over, *carried
        if ncarried > 1:
            sizes = ", ".join(f"{x}.shape[{a}]" for a in carried_axes)
            y = f"{y}.unflatten(-1, ({sizes},))"
        if b is not None:
            bc = f"{b}.permute{b_perm}" if b_perm else b
            rank = 2 + nd + ncarried
            index = ", ".join(":" if i in b_index else "None" for i in range(rank))
            y = f"({y} + {bc}[{index}])"
        return frame.leave_torch(y)

    def onnx(self, e, x, w, b=None, *, frame, nd, ncarried, flat, k, dilation, groups, dense,
             batch_axis, channel_axis, carried_axes, w_perm, b_perm, b_index):
        xe = frame.enter_onnx(e, x)                                 # N, C, *over, *carried
        rank = 2 + nd + ncarried
        pad = dilation * (k - 1) // 2
        xp = xe
        if pad:
            side = [0, 0] + [pad] * nd + [0] * ncarried
            xp = e.op("Pad", [xe, e.const_i64(side + side)])
        # k^d shifted views of the padded input, their ends from the run-time sizes
        sizes = e.op("Shape", [xe], start=2, end=2 + nd)
        axes, last = e.const_i64(tuple(range(2, 2 + nd))), e.const_i64((-1,))
        shifted = []
        for tap in np.ndindex(*(k,) * nd):
            start = e.const_i64(tuple(t * dilation for t in tap))
            cut = e.op("Slice", [xp, start, e.op("Add", [sizes, start]), axes])
            shifted.append(e.op("Unsqueeze", [cut, last]))
        stack = e.op("Concat", shifted, axis=-1)                    # N, C, *over, *carried, P
        if w_perm:
            w = e.op("Transpose", [w], perm=list(w_perm))
        taps = k**nd
        sp = _SPATIAL[: nd + ncarried]
        if dense and groups == 1:
            wr = e.op("Reshape", [w, e.const_i64((0, 0, 0, taps))])          # N, O, C, P
            y = e.op("Einsum", [stack, wr], equation=f"nc{sp}p,nocp->no{sp}")
        elif dense:
            shape = e.op("Concat", [e.op("Shape", [stack], start=0, end=1),
                                    e.const_i64((groups, -1)),
                                    e.op("Shape", [stack], start=2)], axis=0)
            xs = e.op("Reshape", [stack, shape])                    # N, g, Cg, *sp, P
            wshape = e.op("Concat", [e.const_i64((0, groups, -1)),
                                     e.op("Shape", [w], start=2, end=3),
                                     e.const_i64((taps,))], axis=0)
            wr = e.op("Reshape", [w, wshape])                       # N, g, Og, Cg, P
            y = e.op("Einsum", [xs, wr], equation=f"ngc{sp}p,ngocp->ngo{sp}")
            back = e.op("Concat", [e.const_i64((0, -1)), e.op("Shape", [xe], start=2)],
                        axis=0)
            y = e.op("Reshape", [y, back])                          # N, O, *sp
        else:
            chans = 0 if channel_axis is not None else 1            # [N, taps]: one channel
            wr = e.op("Reshape", [w, e.const_i64((0, chans, taps))])
            y = e.op("Einsum", [stack, wr], equation=f"nc{sp}p,ncp->nc{sp}")
        if b is not None:
            if b_perm:
                b = e.op("Transpose", [b], perm=list(b_perm))
            new = tuple(i for i in range(rank) if i not in b_index)
            y = e.op("Add", [y, e.op("Unsqueeze", [b, e.const_i64(new)])])
        return frame.leave_onnx(e, y)

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        # every output element sums the kernel's taps over its input channels (one when
        # depthwise): the kernel's dims the output lacks, which `aligned_inputs` put last
        w = in_shapes[1]
        shared = len(w) - len(attrs["taps"]) - (1 if attrs["map"].src else 0)
        macs = math.prod(out_shape) * math.prod(w[shared:])
        n = sum(math.prod(s) for s in in_shapes) + math.prod(out_shape)
        return Cost(flops=2 * macs, bytes_moved=4 * n)

    def samples(self):
        # 2-D kernels with flattened taps only: a k x k kernel's two tap dims share a size,
        # which the per-op test forbids; tests/test_dynconv.py runs those and 3-D kernels
        return [
            # CondConv / DyConv in 1-D: a dense kernel per sample, with a per-sample bias
            Sample(inputs=(("N", "C", "T"), ("N", "O", "C", "K"), ("N", "O")),
                   attrs={"map": Map(("C",), ("O",)), "over": ("T",), "taps": ("K",), "k": 3},
                   sizes={"T": 8, "O": 4, "K": 3}),
            # TAM: a depthwise kernel over T per (sample, channel), H W carried through
            Sample(inputs=(("N", "C", "T", "H", "W"), ("N", "C", "K")),
                   attrs={"over": ("T",), "taps": ("K",), "k": 3}, sizes={"T": 8, "K": 3}),
            # a permuted input and kernel, W carried, dilation 2, a bias without the batch dim
            Sample(inputs=(("W", "C", "N", "H"), ("K", "C", "O", "N"), ("O",)),
                   attrs={"map": Map(("C",), ("O",)), "over": ("H",), "taps": ("K",), "k": 3,
                          "dilation": 2}, sizes={"O": 4, "K": 3}),
            # grouped C -> C: C = 8 in 2 groups of Cg = 4
            Sample(inputs=(("N", "C", "H", "W"), ("N", "C", "Cg", "K")),
                   attrs={"map": Map(("C",), ("C",)), "over": ("W",), "taps": ("K",), "k": 3,
                          "groups": 2}, sizes={"C": 8, "Cg": 4, "K": 3}),
            # CondConv / DyConv in 2-D, the 3 x 3 taps flattened into one dim, with a bias
            Sample(inputs=(("N", "C", "H", "W"), ("N", "O", "C", "P"), ("N", "O")),
                   attrs={"map": Map(("C",), ("O",)), "over": ("H", "W"), "taps": ("P",),
                          "k": 3}, sizes={"O": 4, "P": 9}),
            # depthwise 2-D with flattened taps, `over` out of order, T carried, dilation 2
            Sample(inputs=(("N", "C", "H", "W", "T"), ("P", "C", "N")),
                   attrs={"over": ("W", "H"), "taps": ("P",), "k": 3, "dilation": 2},
                   sizes={"P": 9}),
            # no channel dim, k = 5, the kernel's dims permuted, a per-sample scalar bias
            Sample(inputs=(("N", "T"), ("K", "N"), ("N",)),
                   attrs={"over": ("T",), "taps": ("K",), "k": 5}, sizes={"T": 9, "K": 5}),
        ]


_SPATIAL = "abdefhijklmqrstuvwxyz"  # einsum letters besides n, c, o, g, p


def _bias_numpy(b, perm, index, rank):
    """The bias transposed to [batch, out] order and given size-1 axes up to `rank`."""
    b = b.transpose(perm) if perm else b
    shape = [1] * rank
    for i, size in zip(index, b.shape, strict=True):
        shape[i] = size
    return b.reshape(shape).astype(np.float64)
