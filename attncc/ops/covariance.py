"""Second-order pooling over named dims: the covariance of a feature dim across sample dims."""

from __future__ import annotations

import math
import string
from typing import Any

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    BoolArg,
    Cost,
    DimArg,
    DimsArg,
    InferContext,
    Op,
    OpError,
    Sample,
    Signature,
    register,
)


@register
class Covariance(Op):
    """covariance(x, over: dims, features: dim, as: new dim, unbiased = false) -> [.., F, as].

    The centred second moment of the dim `features` across the sample dims `over`:
    cov[.., i, j] = Σ_m (x[.., i, m] − μ[.., i]) (x[.., j, m] − μ[.., j]) / M, with μ the mean
    over `over` and M the product of their run-time sizes (M − 1 with `unbiased=true`). The
    result has x's other dims in their order, then `features`, then the new dim `as` (the
    features' size): x: [N, C, H, W] gives [N, C, C2] for `covariance(x, over=H W,
    features=C, as=C2)`. Every other dim is a batch dim (torch.cov is not batched). GSoP's global
    second-order pooling, Cov = (1/M) Z (I − 11ᵀ/M) Zᵀ (survey §3.1.2 eq. 3; catalogue §3
    row 13). Lowered to a mean, a subtraction and one einsum (ONNX ReduceMean, Sub, Einsum
    opset 12, the count from Shape, Gather and ReduceProd, so H and W stay dynamic).
    """

    name = "covariance"
    signature = Signature(
        tensors=("x",),
        attrs={"over": DimsArg(required=True, doc="the sample dims averaged over"),
               "features": DimArg(required=True, doc="the dim whose covariance is taken"),
               "as": DimArg(required=True, new=True, doc="the matrix's second dim"),
               "unbiased": BoolArg(default=False, doc="divide by M - 1 instead of M")},
    )
    traits = frozenset({"reduction", "pure"})

    def _check(self, x: TensorType, attrs: dict[str, Any]) -> None:
        over, feat, new = attrs["over"], attrs["features"], attrs["as"]
        if not over:
            raise OpError("covariance needs at least one sample dim in `over`", arg="over")
        if len(set(over)) != len(over):
            raise OpError(f"covariance names a dim twice in `over={' '.join(over)}`",
                          arg="over")
        for d in over:
            if d not in x.real:
                raise OpError(f"covariance averages over `{d}` but its input has dims {x}",
                              arg="over", hints=(f"average over some of {', '.join(x.real)}",))
        if feat not in x.real:
            raise OpError(f"covariance's features `{feat}` is not a dim of its input {x}",
                          arg="features", hints=(f"pick one of {', '.join(x.real)}",))
        if feat in over:
            raise OpError(f"`{feat}` is both the features and a sample dim", arg="features",
                          hints=("the features dim must not be in `over`",))
        if new in x:
            raise OpError(f"covariance's new dim `{new}` is already a dim of {x}", arg="as",
                          hints=(f"name the matrix's second dim anew, e.g. `as={feat}2`",))
        if len(x.dims) + 1 > len(string.ascii_lowercase):
            raise OpError("covariance handles at most 25 dims", arg="x")

    def infer(self, ctx: InferContext, ins: list[TensorType], attrs: dict[str, Any]) -> TensorType:
        (x,) = ins
        self._check(x, attrs)
        over, feat, new = attrs["over"], attrs["features"], attrs["as"]
        if attrs["unbiased"]:
            sizes = [ctx.known_size(d) for d in over]
            if None not in sizes and math.prod(sizes) == 1:
                raise OpError(f"`unbiased=true` divides by M - 1 = 0: `{' '.join(over)}` "
                              f"holds one sample", arg="unbiased", kind="hyper")
        try:
            ctx.rename_dim(feat, new)
        except OpError as err:
            raise OpError(err.message, arg="as") from None
        rest = tuple(d for d in x.dims if d not in over and d != feat)
        return TensorType((*rest, feat, new))

    def resolve(self, ins, out, attrs):
        (x,) = ins
        feat, new = attrs["features"], attrs["as"]
        letter = {d: string.ascii_lowercase[i] for i, d in enumerate((*x.dims, new))}
        a = "".join(letter[d] for d in x.dims)
        b = "".join(letter[new if d == feat else d] for d in x.dims)
        y = "".join(letter[d] for d in out.dims)
        return {"axes": x.axes(attrs["over"]), "equation": f"{a},{b}->{y}",
                "unbiased": bool(attrs["unbiased"])}

    # ---- lowerings: centre, one einsum of the centred tensor with itself, divide ----
    def numpy(self, x, *, axes, equation, unbiased):
        x = x.astype(np.float64)
        zc = x - x.mean(axis=axes, keepdims=True)
        m = math.prod(x.shape[a] for a in axes) - int(unbiased)
        return (np.einsum(equation, zc, zc) / m).astype(np.float32)

    def torch(self, e, x, *, axes, equation, unbiased):
        e.stmt(f"_zc = {x} - {x}.mean(dim={axes}, keepdim=True)")  # used by the next line only
        m = " * ".join(f"{x}.shape[{a}]" for a in axes) + (" - 1" if unbiased else "")
        return f"torch.einsum({equation!r}, _zc, _zc) / ({m})"

    def onnx(self, e, x, *, axes, equation, unbiased):
        ax = e.const_i64(axes)
        zc = e.op("Sub", [x, e.op("ReduceMean", [x, ax], keepdims=1)])
        s = e.op("Einsum", [zc, zc], equation=equation)
        count = e.op("ReduceProd", [e.op("Gather", [e.op("Shape", [x]), ax], axis=0)],
                     keepdims=0)
        m = e.op("Cast", [count], to=1)  # FLOAT
        if unbiased:
            m = e.op("Sub", [m, e.const_f32(1.0)])
        return e.op("Div", [s, m])

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        # the input holds batch · F · M entries; the einsum does batch · F · F dot products of
        # length M, i.e. n · F multiply-adds; centring is a mean and a subtraction per entry
        n, f = math.prod(in_shapes[0]), out_shape[-1]
        return Cost(flops=2 * n + 2 * n * f, bytes_moved=4 * (2 * n + math.prod(out_shape)))

    def samples(self):
        # sizes: N=2, C=6, H=5, W=7, T=3 unless a sample sets its own
        return [
            # GSoP: the channels' covariance over the positions
            Sample(inputs=(("N", "C", "H", "W"),),
                   attrs={"over": ("H", "W"), "features": "C", "as": "C2"}),
            # channels last, sample dims in another order, unbiased
            Sample(inputs=(("N", "H", "W", "C"),),
                   attrs={"over": ("W", "H"), "features": "C", "as": "D", "unbiased": True}),
            # features first, the batch dim after the samples: the result is [N, C, E]
            Sample(inputs=(("C", "T", "N"),), attrs={"over": ("T",), "features": "C", "as": "E"}),
        ]

