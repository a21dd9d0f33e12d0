"""Common-subexpression elimination: merges pure nodes with equal op, attributes and inputs.

Parameters are nodes too, so two applications of a shared layer to the same tensor merge,
while two different layers (different parameter nodes) never do. Ops without the `pure`
trait (batch norm updates its running statistics) are never merged.
"""

from __future__ import annotations

from attncc.ir import IR, Node
from attncc.ops import get_op
from attncc.passes import ir_pass


def attrs_key(nd: Node) -> tuple:
    """An op's attributes as a hashable key, without the IR's bookkeeping (`_layer`)."""
    return tuple(sorted((k, repr(v)) for k, v in nd.attrs.items() if not k.startswith("_")))


def _key(ir: IR, n: int) -> tuple | None:
    nd = ir.node(n)
    if nd.op in ("input", "param"):
        return None
    traits = get_op(nd.op).traits
    if "pure" not in traits:
        return None
    attrs = attrs_key(nd)
    ins = ir.inputs_of(n)
    if "commutative" in traits:
        # `a + b` and `b + a` are one value; `out` stays in the key, so operands of different
        # layouts (whose result order depends on the operand order) still never merge
        k = len(ins) - len(nd.pnames)
        ins = sorted(ins[:k]) + ins[k:]
    return (nd.op, attrs, tuple(ins), nd.out)


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
