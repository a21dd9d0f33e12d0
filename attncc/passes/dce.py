"""Dead-node elimination: drops nodes no output or attention map depends on."""

from __future__ import annotations

import networkx as nx

from attncc.ir import IR
from attncc.passes import ir_pass


@ir_pass("dce", requires=("infer-shapes",), cleanup=True)
def dce(ir: IR) -> bool:
    live: set[int] = set(ir.inputs)  # inputs stay: they are the module's signature
    for root in [v for _, v in ir.outputs] + list(ir.attention.values()):
        live.add(root)
        live |= nx.ancestors(ir.graph, root)
    dead = [n for n in ir.graph.nodes if n not in live]
    ir.graph.remove_nodes_from(dead)
    return bool(dead)
