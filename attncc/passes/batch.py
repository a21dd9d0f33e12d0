"""Batching a shared layer's applications: one call where a spec applies a layer twice.

CBAM's channel attention runs the same MLP on the average- and on the max-pooled descriptor
(survey eq. 86: MLP(AvgPool(F)) + MLP(MaxPool(F))). CSE cannot merge the two (their inputs
differ), but they can run as one: the inputs stacked along a new dim of size 2, the layer
applied once, and each result picked back out:

    dense(a, W) -> relu -> dense(., W2)        stack(a, b, as=P) -> dense(., W) -> relu
    dense(b, W) -> relu -> dense(., W2)   =>     -> dense(., W2) -> pick(., P, 0), pick(., P, 1)

Half the kernel launches (the weights are read once), the same values. It fires where a chain
starts at a `dense` layer with the same parameters, continues through nodes that are the only
users of the previous ones with equal ops, attributes and parameters (dense layers and
element-wise ops, which act on each entry of the new dim alike), and where the stacked inputs
are descriptors -- at most one run-time dim (the batch): stacking whole feature maps would
copy more than it saves. Off at -O0 and with `--disable batch`.
"""

from __future__ import annotations

import itertools

import networkx as nx

from attncc.ir import IR
from attncc.ops import get_op
from attncc.passes import ir_pass
from attncc.passes.algebra import make_node, single_use
from attncc.passes.cse import attrs_key


def _key(ir: IR, n: int) -> tuple | None:
    """What two applications must share to run as one."""
    nd = ir.node(n)
    if nd.op in ("input", "param"):
        return None
    op = get_op(nd.op)
    if nd.op != "dense" and not ("elementwise" in op.traits and len(op.signature.tensors) == 1):
        return None
    ins = ir.inputs_of(n)
    k = len(ins) - len(nd.pnames)
    if k != 1:
        return None
    return (nd.op, attrs_key(nd), tuple(ins[k:]), ir.node(ins[0]).out, nd.out)


def _descriptor(ir: IR, n: int) -> bool:
    return sum(1 for d in ir.node(n).out.dims if ir.dims.get(d) is None) <= 1


def _chains(ir: IR, a: int, b: int) -> tuple[list[int], list[int]]:
    ca, cb = [a], [b]
    while True:
        na, nb = ca[-1], cb[-1]
        if not (single_use(ir, na) and single_use(ir, nb)):
            break
        (ua, _), (ub, _) = ir.users(na)[0], ir.users(nb)[0]
        ka = _key(ir, ua)
        if ka is None or ka != _key(ir, ub):
            break
        ca.append(ua)
        cb.append(ub)
    return ca, cb


def _fresh_dim(ir: IR) -> str:
    for i in itertools.count():
        name = f"Pair{i}" if i else "Pair"
        if name not in ir.dims:
            return name
    raise AssertionError  # pragma: no cover - count() never ends


@ir_pass("batch", requires=("infer-shapes",), cleanup=True)
def batch(ir: IR) -> bool:
    groups: dict[tuple, list[int]] = {}
    for n in ir.topo():
        if ir.node(n).op == "dense":
            key = _key(ir, n)
            if key is not None:
                groups.setdefault(key, []).append(n)
    for nodes in groups.values():
        for a, b in itertools.combinations(nodes, 2):
            xa, xb = ir.inputs_of(a)[0], ir.inputs_of(b)[0]
            if xa == xb or not (_descriptor(ir, xa) and _descriptor(ir, xb)):
                continue
            if nx.has_path(ir.graph, a, xb) or nx.has_path(ir.graph, b, xa):
                continue  # one application feeds the other: they cannot run together
            _rewrite(ir, *_chains(ir, a, b))
            return True  # the graph changed under the other pairs: the fixed point reruns
    return False


def _rewrite(ir: IR, ca: list[int], cb: list[int]) -> None:
    first = ir.node(ca[0])
    dim = _fresh_dim(ir)
    prev = make_node(ir, "stack", {"as": dim, "at": 0},
                     [ir.inputs_of(ca[0])[0], ir.inputs_of(cb[0])[0]], first,
                     f"{first.name}.inputs")
    for n in ca:
        nd = ir.node(n)
        # the batched layer keeps the layer's name (ONNX node names, generated variables)
        prev = make_node(ir, nd.op, dict(nd.attrs), [prev, *ir.inputs_of(n)[1:]], nd, nd.name,
                         nd.pnames)
    for i, old in enumerate((ca[-1], cb[-1])):
        nd = ir.node(old)
        picked = make_node(ir, "pick", {"along": dim, "index": i}, [prev], nd,
                           f"{nd.name}.{('first', 'second')[i]}")
        ir.replace_uses(old, picked)
    ir.graph.remove_nodes_from([*ca, *cb])

