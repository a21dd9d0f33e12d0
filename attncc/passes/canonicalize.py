"""Canonical form for lowering: explicit `align` nodes wherever an op broadcasts by name."""

from __future__ import annotations

from attncc.ir import IR, Node
from attncc.ops import get_op
from attncc.ops.base import InferContext
from attncc.passes import ir_pass
from attncc.passes.infer_shapes import _IRContext


@ir_pass("canonicalize", requires=("infer-shapes",))
def canonicalize(ir: IR) -> bool:
    changed = False
    ctx: InferContext = _IRContext(ir)
    align = get_op("align")
    for n in ir.topo():
        nd = ir.node(n)
        if nd.op in ("input", "param"):
            continue
        ins = ir.inputs_of(n)[: len(ir.inputs_of(n)) - len(nd.pnames)]
        targets = get_op(nd.op).aligned_inputs([ir.node(i).out for i in ins], nd.out)
        for slot, (src, to) in enumerate(zip(ins, targets, strict=True)):
            if to is None:
                continue
            out = align.infer(ctx, [ir.node(src).out], {"to": to})
            a = ir.add(Node("align", {"to": to}, out, f"{nd.name}.align{slot}", stage=nd.stage,
                            span=nd.span), [src])
            ir.set_input(n, slot, a)
            changed = True
    return changed
