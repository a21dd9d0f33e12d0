"""Structural invariants of the IR (lint) and op-signature conformance of every node."""

from __future__ import annotations

from attncc.diagnostics import InternalError
from attncc.ir import IR
from attncc.ops import get_op, has_op
from attncc.passes import ir_pass


@ir_pass("validate")
def validate(ir: IR) -> bool:
    """Check the IR without changing it; any failure is a bug in attncc (InternalError)."""
    ir.lint()
    for n in ir.inputs:
        if ir.node(n).op != "input":
            raise InternalError(f"block input `{ir.node(n).name}` is a `{ir.node(n).op}` node")
    for n in ir.graph.nodes:
        nd = ir.node(n)
        ins = ir.inputs_of(n)
        if nd.op in ("input", "param"):
            if ins:
                raise InternalError(f"{nd.op} node `{nd.name}` has inputs")
            if (nd.op == "param") != (nd.param is not None):
                raise InternalError(f"node `{nd.name}` ({nd.op}) has param={nd.param}")
            continue
        if not has_op(nd.op):
            raise InternalError(f"node `{nd.name}` has unknown op `{nd.op}`")
        op = get_op(nd.op)
        n_in = len(ins) - len(nd.pnames)
        if op.signature.variadic:
            if n_in < 1:
                raise InternalError(f"node `{nd.name}` ({nd.op}) has no tensor inputs")
        elif not (len(op.signature.tensors) - len(op.signature.optional) <= n_in
                  <= len(op.signature.tensors)):
            raise InternalError(f"node `{nd.name}` ({nd.op}) has {n_in} tensor inputs, "
                                f"expected {len(op.signature.tensors)}")
        # parameters follow the tensors, one per name in `pnames`; a tensor slot holds a
        # parameter only when it is a spec's `param` declaration used in an expression
        kinds = [ir.node(i).op == "param" for i in ins]
        owned = [k and not ir.node(i).attrs.get("declared") for k, i in zip(kinds, ins,
                                                                            strict=True)]
        if any(owned[: max(n_in, 0)]) or not all(kinds[max(n_in, 0) :]):
            raise InternalError(f"node `{nd.name}` ({nd.op}) mixes tensors and parameters: "
                                f"inputs {[ir.node(i).name for i in ins]}, params {nd.pnames}")
        attrs = {k for k in nd.attrs if not k.startswith("_")}
        unknown = sorted(attrs - set(op.signature.attrs))
        missing = [k for k, a in op.signature.attrs.items() if a.required and k not in attrs]
        if unknown or missing:
            raise InternalError(f"node `{nd.name}` ({nd.op}) has attributes {sorted(attrs)}: "
                                f"unknown {unknown}, missing {missing}")
    return False
