"""Common-subexpression elimination: merges pure nodes with equal op, attributes and inputs.

Parameters are nodes too, so two applications of a shared layer to the same tensor merge,
while two different layers (different parameter nodes) never do.
"""

from __future__ import annotations

from attncc.ir import IR
from attncc.ops import get_op
from attncc.passes import ir_pass


def _key(ir: IR, n: int) -> tuple | None:
    nd = ir.node(n)
    if nd.op in ("input", "param") or "pure" not in get_op(nd.op).traits:
        return None
    attrs = tuple(sorted((k, repr(v)) for k, v in nd.attrs.items() if not k.startswith("_")))
    return (nd.op, attrs, tuple(ir.inputs_of(n)), nd.out)


@ir_pass("cse", requires=("infer-shapes",), cleanup=True)
def cse(ir: IR) -> bool:
    seen: dict[tuple, int] = {}
    changed = False
    for n in ir.topo():
        key = _key(ir, n)
        if key is None:
            continue
        if key in seen:
            keep = seen[key]
            ir.replace_uses(n, keep)
            ir.graph.remove_node(n)
            changed = True
        else:
            seen[key] = n
    return changed
