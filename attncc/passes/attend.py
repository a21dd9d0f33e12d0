"""Attention fusion: softmax(contract(q, k, over=E) [* s], over=S) then contract(·, v, over=S)
becomes one `attend(q, k, v, over=E, keys=S, scale=s)` node (attncc/ops/attend.py).

PyTorch then runs `F.scaled_dot_product_attention` and never holds the queries × keys matrix.
The pattern fires only where the scores and their scaled form feed nothing but the softmax, and
the softmax feeds nothing but the aggregating contraction and, at most, the block's `attention`
maps: a marked map keeps its own nodes (computed only when asked for, `return_attention=True`
or ONNX `attention_outputs`), so the maps stay exactly what they were. Off at -O0 and with
`--disable attend`.
"""

from __future__ import annotations

from attncc.dims import TensorType
from attncc.ir import IR, Node
from attncc.ops import get_op
from attncc.ops.attend import canonical
from attncc.ops.base import OpError
from attncc.passes import ir_pass
from attncc.passes.infer_shapes import _IRContext


def _only_user(ir: IR, n: int, user: int) -> bool:
    outs = {v for _, v in ir.outputs}
    return n not in outs and n not in ir.attention.values() and \
        [u for u, _ in ir.users(n)] == [user]


def _scores(ir: IR, n: int, user: int) -> tuple[int, float] | None:
    """(the q·k contraction, its scale) feeding `user` through `n`, or None: a contraction,
    or a chain of multiplications and divisions by numbers over one (DNL's `/ sqrt(D) / τ`)."""
    nd = ir.node(n)
    if not _only_user(ir, n, user):
        return None
    if nd.op == "contract":
        return n, 1.0
    if nd.op not in ("mul", "div"):
        return None
    a, b = ir.inputs_of(n)
    for c, s in ((a, b), (b, a)) if nd.op == "mul" else ((a, b),):
        if ir.node(s).op != "scalar" or ir.node(c).out != nd.out:
            continue
        value = float(ir.node(s).attrs["value"])
        if nd.op == "div" and value == 0:
            return None
        inner = _scores(ir, c, n)
        if inner is not None:
            return inner[0], inner[1] * (value if nd.op == "mul" else 1.0 / value)
    return None


@ir_pass("attend", requires=("infer-shapes",), cleanup=True)
def attend(ir: IR) -> bool:
    changed = False
    op, align = get_op("attend"), get_op("align")
    ctx = _IRContext(ir)
    for n in ir.topo():
        if n not in ir.graph:
            continue
        nd = ir.node(n)
        if nd.op != "contract":
            continue
        a, v = ir.inputs_of(n)
        sm = ir.node(a)
        keys = tuple(sm.attrs.get("over", ()))
        if sm.op != "softmax" or set(keys) != set(nd.attrs["over"]) or \
                len(keys) != len(nd.attrs["over"]):
            continue
        outs = {v_ for _, v_ in ir.outputs}
        if a in outs or [u for u, _ in ir.users(a)] != [n]:
            continue  # the weights are used elsewhere: fusing would compute them twice
        found = _scores(ir, ir.inputs_of(a)[0], a)
        if found is None:
            continue
        scores, scale = found
        q, k = ir.inputs_of(scores)
        attrs = {"over": tuple(ir.node(scores).attrs["over"]), "keys": keys, "scale": scale}
        try:
            out = op.infer(ctx, [ir.node(q).out, ir.node(k).out, ir.node(v).out], attrs)
        except OpError:
            continue
        if out != nd.out:
            continue
        ins = []
        for slot, (given, want) in enumerate(zip((q, k, v), canonical(
                ir.node(q).out, ir.node(k).out, ir.node(v).out, attrs["over"], keys),
                strict=True)):
            src, t = given, ir.node(given).out
            if t.dims != want:  # the layouts `attend`'s cost reads (a permute, a view)
                to = TensorType(want)
                src = ir.add(Node("align", {"to": to}, align.infer(ctx, [t], {"to": to}),
                                  f"{nd.name}.align{slot}", stage=nd.stage, span=nd.span), [src])
            ins.append(src)
        fused = ir.add(Node("attend", attrs, out, nd.name, stage=nd.stage, span=nd.span), ins)
        ir.replace_uses(n, fused)
        ir.graph.remove_node(n)
        changed = True
    return changed
