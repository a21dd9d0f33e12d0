"""Structural invariants of the IR (lint) and op-signature conformance of every node."""

from __future__ import annotations

from attncc.diagnostics import InternalError
from attncc.ir import IR
from attncc.ops import get_op, has_op
from attncc.passes import ir_pass


@ir_pass("validate")
def validate(ir: IR) -> bool:
    ir.lint()
    for n in ir.graph.nodes:
        nd = ir.node(n)
        if nd.op in ("input", "param"):
            continue
        if not has_op(nd.op):
            raise InternalError(f"node `{nd.name}` has unknown op `{nd.op}`")
        op = get_op(nd.op)
        n_in = len(ir.inputs_of(n)) - len(nd.pnames)
        if not op.signature.variadic and n_in != len(op.signature.tensors):
            raise InternalError(f"node `{nd.name}` ({nd.op}) has {n_in} tensor inputs")
    return False
