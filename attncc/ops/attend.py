"""Fused softmax attention: what the `attend` pass makes of softmax(q·k) · v.

`attend(q, k, v, over=E, keys=S, scale=s)` is
`contract(softmax(contract(q, k, over=E) * s, over=S), v, over=S)` as one node, so a backend
never has to hold the queries × keys matrix: PyTorch runs it as
`F.scaled_dot_product_attention` (its fused CPU kernel works in blocks of keys), ONNX as
MatMul / Softmax / MatMul over flattened query, key and value groups (onnxruntime 1.32 has no
standard-domain fused attention at opset 18). The pass inserts it; specs do not call it.

Dims play four roles: `over` (summed in q·k; in q and k), `keys` (normalised and summed; in k
and v, not in q), batch dims (in q, k and v) and query dims (in q only); v's remaining dims
are the value dims. The output's layout is the unfused one's: q's dims without `over`, then
v's value dims.
"""

from __future__ import annotations

import math
import string

import numpy as np

from attncc.dims import TensorType
from attncc.ops.base import (
    Cost,
    DimsArg,
    FloatArg,
    Op,
    OpError,
    Sample,
    Signature,
    perm_or_none,
    register,
)


def roles(q: TensorType, k: TensorType, v: TensorType, over: tuple[str, ...],
          keys: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """batch / queries / values dims (in q's and v's order); raises OpError when the three
    tensors are not an attention pattern the fused lowerings handle."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.bcast:
            raise OpError(f"attend's `{name}` has broadcast dims {t}", arg=name)
    if not over or not keys:
        raise OpError("attend needs dims to sum over and key dims", arg="over" if not over
                      else "keys")
    if len(set(over + keys)) != len(over) + len(keys):
        raise OpError("attend's `over` and `keys` must be distinct dims", arg="keys")
    for d in over:
        if d not in q or d not in k:
            raise OpError(f"attend sums q·k over `{d}`, which q {q} and k {k} must both have",
                          arg="over")
    for d in keys:
        if d not in k or d not in v or d in q:
            raise OpError(f"attend's key dim `{d}` must be in k {k} and v {v}, not in q {q}",
                          arg="keys")
    batch = tuple(d for d in q.dims if d not in over and d in k)
    queries = tuple(d for d in q.dims if d not in over and d not in k)
    extra = [d for d in k.dims if d not in over and d not in keys and d not in q]
    if extra:
        raise OpError(f"attend's k has dim `{extra[0]}` that is neither summed nor a key",
                      arg="k")
    missing = [d for d in batch if d not in v]
    if missing:
        raise OpError(f"attend's batch dim `{missing[0]}` must also be in v {v}", arg="v")
    in_q = [d for d in v.dims if d in queries]
    if in_q:
        raise OpError(f"attend's v has query dim `{in_q[0]}`", arg="v")
    values = tuple(d for d in v.dims if d not in batch and d not in keys)
    return {"batch": batch, "queries": queries, "values": values}


def canonical(q: TensorType, k: TensorType, v: TensorType, over: tuple[str, ...],
              keys: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """The layouts `cost` reads group sizes from: q [batch, queries, over], k [batch, keys,
    over], v [batch, keys, values]."""
    r = roles(q, k, v, over, keys)
    b = r["batch"]
    return b + r["queries"] + over, b + keys + over, b + keys + r["values"]


# attention in the generated module: F.scaled_dot_product_attention under autograd (its fused
# backward), torch.compile, jit tracing (a trace would freeze the loop), autocast and on GPUs.
# In eager CPU inference, a block of queries at a time, so the scores never take more than
# `budget` bytes (hand-written non-local blocks hold the whole [B, L, S] matrix); 2-3x faster
# than SDPA's CPU kernel on the bench machine.
ATTEND = """
def _attend(q, k, v, scale: float, budget: int = 1 << 22):
    \"\"\"softmax(scale * q @ k^T) @ v over [B, L, E], [B, S, E], [B, S, Ev].\"\"\"
    if (torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.is_grad_enabled()
            or q.device.type != "cpu" or torch.is_autocast_enabled("cpu")):
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    b, n, s = q.shape[0], q.shape[1], k.shape[1]
    out = q.new_empty((b, n, v.shape[2]))
    kt = k.transpose(1, 2)
    rows = max(1, budget // (q.element_size() * max(1, s)))
    if rows >= n:  # whole batch entries at a time
        step = max(1, rows // max(1, n))
        for i in range(0, b, step):
            w = torch.bmm(q[i:i + step], kt[i:i + step])
            if scale != 1.0:
                w.mul_(scale)
            torch.softmax(w, dim=-1, out=w)
            torch.bmm(w, v[i:i + step], out=out[i:i + step])
    else:  # a block of query rows of one batch entry at a time
        for j in range(b):
            for i in range(0, n, rows):
                w = torch.mm(q[j, i:i + rows], kt[j])
                if scale != 1.0:
                    w.mul_(scale)
                torch.softmax(w, dim=-1, out=w)
                torch.mm(w, v[j], out=out[j, i:i + rows])
    return out
"""


def _flatten(x: str, start: int, n: int) -> str:
    if n == 0:
        return f"{x}.unsqueeze({start})"
    return x if n == 1 else f"{x}.flatten({start}, {start + n - 1})"


def _unflatten(x: str, at: int, sizes: list[str]) -> str:
    if not sizes:
        return f"{x}.squeeze({at})"
    return x if len(sizes) == 1 else f"{x}.unflatten({at}, ({', '.join(sizes)}))"


@register
class Attend(Op):
    """attend(q, k, v, over: dims, keys: dims, scale: float = 1) -> q's dims but `over`, then
    v's value dims.  softmax(scale · q·k over `over`, normalised over `keys`) · v over `keys`."""

    name = "attend"
    signature = Signature(tensors=("q", "k", "v"),
                          attrs={"over": DimsArg(required=True), "keys": DimsArg(required=True),
                                 "scale": FloatArg(default=1.0)})
    traits = frozenset({"pure", "internal"})

    def infer(self, ctx, ins, attrs):
        q, k, v = ins
        r = roles(q, k, v, tuple(attrs["over"]), tuple(attrs["keys"]))
        if len(set(q.dims + k.dims + v.dims)) > len(string.ascii_lowercase):
            raise OpError("attend handles at most 26 distinct dims", arg="over")
        return TensorType(tuple(d for d in q.dims if d not in attrs["over"]) + r["values"])

    def resolve(self, ins, out, attrs):
        q, k, v = ins
        over, keys = tuple(attrs["over"]), tuple(attrs["keys"])
        r = roles(q, k, v, over, keys)
        batch, queries, values = r["batch"], r["queries"], r["values"]
        names = list(dict.fromkeys(q.dims + k.dims + v.dims))
        letter = {d: string.ascii_lowercase[i] for i, d in enumerate(names)}
        side = lambda dims: "".join(letter[d] for d in dims)  # noqa: E731
        scores = tuple(d for d in q.dims if d not in over) + keys
        grouped = batch + queries + values  # the fused kernels' output order
        return {
            "scale": float(attrs["scale"]),
            # NumPy: the unfused computation
            "eq_scores": f"{side(q.dims)},{side(k.dims)}->{side(scores)}",
            "key_axes": tuple(range(len(scores) - len(keys), len(scores))),
            "eq_out": f"{side(scores)},{side(v.dims)}->{side(out.dims)}",
            # fused: q -> [batch, queries, over], k -> [batch, keys, over], v -> [batch, keys,
            # values]; each group flattened to one axis
            "q_perm": tuple(q.dims.index(d) for d in batch + queries + over),
            "k_perm": tuple(k.dims.index(d) for d in batch + keys + over),
            "v_perm": tuple(v.dims.index(d) for d in batch + keys + values),
            "groups": (len(batch), len(queries), len(keys), len(over), len(values)),
            "out_perm": tuple(grouped.index(d) for d in out.dims),
        }

    def numpy(self, q, k, v, *, scale, eq_scores, key_axes, eq_out, **_):
        s = np.einsum(eq_scores, q.astype(np.float64), k.astype(np.float64)) * scale
        z = np.exp(s - np.max(s, axis=key_axes, keepdims=True))
        a = z / np.sum(z, axis=key_axes, keepdims=True)
        return np.einsum(eq_out, a, v.astype(np.float64)).astype(np.float32)

    def torch(self, e, q, k, v, *, scale, q_perm, k_perm, v_perm, groups, out_perm, **_):
        nb, nq, nk, ne, nv = groups

        def grouped(x: str, perm: tuple[int, ...], mid: int, last: int) -> str:
            p = perm_or_none(perm)
            x = f"{x}.permute{p}" if p else x
            x = _flatten(x, nb + mid, last)  # the last group first: earlier indices hold
            x = _flatten(x, nb, mid)
            return _flatten(x, 0, nb)  # batch dims to one (unsqueezed when there are none)

        qf, kf, vf = grouped(q, q_perm, nq, ne), grouped(k, k_perm, nk, ne), \
            grouped(v, v_perm, nk, nv)
        o = f"{e.helper('_attend', ATTEND)}({qf}, {kf}, {vf}, {scale!r})"
        # [B, L, Ev] back to [batch..., queries..., values...]
        q_sizes = [f"{q}.shape[{q_perm[nb + i]}]" for i in range(nq)]
        v_sizes = [f"{v}.shape[{v_perm[nb + nk + i]}]" for i in range(nv)]
        b_sizes = [f"{q}.shape[{q_perm[i]}]" for i in range(nb)]
        o = _unflatten(o, 2, v_sizes)
        o = _unflatten(o, 1, q_sizes)
        o = _unflatten(o, 0, b_sizes)
        p = perm_or_none(out_perm)
        return f"{o}.permute{p}" if p else o

    def onnx(self, e, q, k, v, *, scale, q_perm, k_perm, v_perm, groups, out_perm, **_):
        nb, nq, nk, ne, nv = groups

        def transposed(x: str, perm: tuple[int, ...]) -> str:
            return e.op("Transpose", [x], perm=list(perm)) if perm_or_none(perm) else x

        def merged(x: str, sizes: tuple[int, ...]) -> str:
            # Reshape to [batch..., prod(group 1), prod(group 2)], sizes read at run time
            parts, start = [e.op("Shape", [x], start=0, end=nb)] if nb else [], nb
            for n in sizes:
                if n == 0:
                    parts.append(e.const_i64([1]))
                else:
                    dims = e.op("Shape", [x], start=start, end=start + n)
                    parts.append(e.op("ReduceProd", [dims], keepdims=1) if n > 1 else dims)
                start += n
            return e.op("Reshape", [x, e.op("Concat", parts, axis=0)])

        qt, kt, vt = transposed(q, q_perm), transposed(k, k_perm), transposed(v, v_perm)
        qf = merged(qt, (nq, ne))  # [B.., L, E]
        kf = merged(kt, (nk, ne))  # [B.., S, E]
        vf = merged(vt, (nk, nv))  # [B.., S, Ev]
        perm_k = [*range(nb), nb + 1, nb]
        s = e.op("MatMul", [qf, e.op("Transpose", [kf], perm=perm_k)])  # [B.., L, S]
        if scale != 1.0:
            s = e.op("Mul", [s, e.const_f32(scale)])
        o = e.op("MatMul", [e.op("Softmax", [s], axis=-1), vf])  # [B.., L, Ev]
        parts = []
        if nb:
            parts.append(e.op("Shape", [qt], start=0, end=nb))
        if nq:
            parts.append(e.op("Shape", [qt], start=nb, end=nb + nq))
        if nv:
            parts.append(e.op("Shape", [vt], start=nb + nk, end=nb + nk + nv))
        shape = e.op("Concat", parts, axis=0) if parts else e.const_i64([])
        o = e.op("Reshape", [o, shape])
        return e.op("Transpose", [o], perm=list(out_perm)) if perm_or_none(out_perm) else o

    def cost(self, in_shapes, out_shape, attrs, param_shapes):
        # on canonical inputs (the attend pass makes them: q [batch, queries, over], k [batch,
        # keys, over], v [batch, keys, values]; see `canonical`). FLOPs are the two products'
        # multiply-adds,
        # as the unfused contractions count them; the scores matrix is never written out, so
        # the traffic is q, k, v and the output
        q, k, v = in_shapes
        ne, nk = len(attrs["over"]), len(attrs["keys"])
        nb = len(k) - nk - ne
        b, e_size = math.prod(q[:nb]), math.prod(q[len(q) - ne:])
        queries = math.prod(q[nb:len(q) - ne])
        s_size, ev = math.prod(k[nb:nb + nk]), math.prod(v[nb + nk:])
        macs = b * queries * s_size * (e_size + ev)
        n = math.prod(q) + math.prod(k) + math.prod(v) + math.prod(out_shape)
        return Cost(flops=2 * macs, bytes_moved=4 * n)

    def samples(self):
        # inputs in the canonical layouts the pass produces (the lowerings take any order)
        return [
            # non-local: queries on the grid, keys on a sub-sampled grid, a scale
            Sample(inputs=(("N", "H", "W", "D"), ("N", "Hs", "Ws", "D"), ("N", "Hs", "Ws", "D")),
                   attrs={"over": ("D",), "keys": ("Hs", "Ws"), "scale": 0.5},
                   sizes={"D": 4, "Hs": 3, "Ws": 8}),
            # multi-head: heads a batch dim
            Sample(inputs=(("N", "G", "T", "E"), ("N", "G", "M", "E"), ("N", "G", "M", "E")),
                   attrs={"over": ("E",), "keys": ("M",), "scale": 0.25},
                   sizes={"G": 4, "E": 8, "M": 9}),
            # values with their own channels, keys normalised out of k's order, no scale
            Sample(inputs=(("N", "H", "W", "D"), ("N", "Hk", "Wk", "D"), ("N", "Hk", "Wk", "C")),
                   attrs={"over": ("D",), "keys": ("Wk", "Hk")},
                   sizes={"D": 4, "Hk": 3, "Wk": 8}),
            # no batch dim, no value dim
            Sample(inputs=(("T", "C"), ("M", "C"), ("M",)), attrs={"over": ("C",), "keys": ("M",)},
                   sizes={"M": 4}),
        ]
