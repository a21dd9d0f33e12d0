"""Algebraic rewrites that remove whole-tensor work: sums over a stacked dim, and linear
reductions of sums.

* `sum(stack(x1, .., xk, as=B), over=B)` becomes `x1 + .. + xk`: no [.., B, ..] tensor.
* `sum(p * stack(x1, .., xk, as=B), over=B)` becomes `pick(p, B, 0) * x1 + .. +
  pick(p, B, k-1) * xk`: SK's selection (survey eq. 64) without the stacked product.
* `mean(a + b, over=S)` (or `sum`, or `a - b`) becomes `mean(a) + mean(b)` when the sum feeds
  nothing else: two reads of a and b instead of a write and a read of a whole-size sum. SK's
  `mean(sum(stack(u1, u2)))` (eq. 61) then never adds the branches at full size.
* `contract(a + b, v, over=S)` becomes `contract(a, v) + contract(b, v)`: DNL's pairwise and
  unary attention (eq. 35) aggregate apart, and the pairwise softmax fuses into `attend`.

Each rewrite keeps the value (up to float rounding: the terms are added in another order) and
fires only where the result has the same dims, in the same order, as the node it replaces.
Off at -O0 and with `--disable algebra`.
"""

from __future__ import annotations

from typing import Any

from attncc.diagnostics import InternalError
from attncc.dims import broadcast
from attncc.ir import IR, Node
from attncc.ops import get_op
from attncc.ops.base import OpError
from attncc.passes import ir_pass
from attncc.passes.infer_shapes import _IRContext

_LINEAR = ("sum", "mean")  # reductions that distribute over + and -


def make_node(ir: IR, op: str, attrs: dict[str, Any], inputs: list[int], like: Node,
              name: str, pnames: tuple[str, ...] = ()) -> int:
    """A new node of `op` over `inputs` (tensors, then the parameter nodes `pnames` name),
    typed by the op's own rule from its tensors, placed where `like` is. `attrs` may hold
    the IR's bookkeeping keys (`_layer`); the rule sees the op's own."""
    types = [ir.node(i).out for i in inputs[: len(inputs) - len(pnames)]]
    out = get_op(op).infer(_IRContext(ir), types,
                           {k: v for k, v in attrs.items() if not k.startswith("_")})
    return ir.add(Node(op, attrs, out, name, stage=like.stage, span=like.span, pnames=pnames),
                  inputs)


def single_use(ir: IR, n: int) -> bool:
    returned = {v for _, v in ir.outputs} | set(ir.attention.values())
    return n not in returned and len(ir.users(n)) == 1


def _add_all(ir: IR, terms: list[int], like: Node) -> int:
    acc = terms[0]
    for i, t in enumerate(terms[1:], 1):
        name = like.name if i == len(terms) - 1 else f"{like.name}.sum{i}"
        acc = make_node(ir, "add", {}, [acc, t], like, name)
    return acc


def _sum_of_stack(ir: IR, n: int) -> int | None:
    """`sum(stack(xs), over=B)` -> `x1 + .. + xk`."""
    nd = ir.node(n)
    (src,) = ir.inputs_of(n)
    st = ir.node(src)
    if st.op != "stack" or tuple(nd.attrs["over"]) != (st.attrs["as"],):
        return None
    xs = ir.inputs_of(src)
    if any(ir.node(x).out != nd.out for x in xs):
        return None
    return _add_all(ir, xs, nd)


def _weighted_sum_of_stack(ir: IR, n: int) -> int | None:
    """`sum(p * stack(xs, as=B), over=B)` -> `pick(p, B, 0) * x1 + ..`."""
    nd = ir.node(n)
    (prod,) = ir.inputs_of(n)
    pn = ir.node(prod)
    if pn.op != "mul" or not single_use(ir, prod):
        return None
    a, b = ir.inputs_of(prod)
    for p, src in ((a, b), (b, a)):
        st = ir.node(src)
        if st.op != "stack":
            continue
        dim = st.attrs["as"]
        if tuple(nd.attrs["over"]) != (dim,) or dim not in ir.node(p).out.real:
            continue
        xs = ir.inputs_of(src)
        if any(ir.node(x).out != nd.out for x in xs):
            continue
        # p's dims lie within the stack's (mul broadcast it), so each term has x's dims
        terms = []
        for i, x in enumerate(xs):
            w = make_node(ir, "pick", {"along": dim, "index": i}, [p], nd, f"{nd.name}.w{i}")
            terms.append(make_node(ir, "mul", {}, [x, w], nd, f"{nd.name}.term{i}"))
        return _add_all(ir, terms, nd)
    return None


def _reduction_of_sum(ir: IR, n: int) -> int | None:
    """`mean(a ± b, over=S)` -> `mean(a) ± mean(b)` when the sum feeds only this reduction."""
    nd = ir.node(n)
    (src,) = ir.inputs_of(n)
    sn = ir.node(src)
    if sn.op not in ("add", "sub") or not single_use(ir, src):
        return None
    a, b = ir.inputs_of(src)
    if ir.node(a).out != sn.out or ir.node(b).out != sn.out or sn.out.bcast:
        return None
    attrs = {"over": tuple(nd.attrs["over"])}
    ra = make_node(ir, nd.op, attrs, [a], nd, f"{nd.name}.l")
    rb = make_node(ir, nd.op, attrs, [b], nd, f"{nd.name}.r")
    return make_node(ir, sn.op, {}, [ra, rb], nd, nd.name)


def _contraction_of_sum(ir: IR, n: int) -> int | None:
    """`contract(a + b, v, over=S)` -> `contract(a, v) + contract(b, v)` when the sum feeds
    only this contraction and both terms carry every dim of S: DNL's pairwise + unary
    attention, whose pairwise term then fuses into `attend` and whose unary term is a
    weighted mean of v."""
    nd = ir.node(n)
    ins = ir.inputs_of(n)
    over = tuple(nd.attrs["over"])
    ctx = _IRContext(ir)
    for slot in (0, 1):
        src, other = ins[slot], ins[1 - slot]
        sn = ir.node(src)
        if sn.op != "add" or not single_use(ir, src):
            continue
        a, b = ir.inputs_of(src)
        if not all(d in ir.node(t).out.real for t in (a, b) for d in over):
            continue
        op = get_op("contract")
        try:
            types = [op.infer(ctx, [ir.node(t).out, ir.node(other).out] if slot == 0 else
                              [ir.node(other).out, ir.node(t).out], {"over": over})
                     for t in (a, b)]
        except OpError:
            continue
        if broadcast(*types) != nd.out:
            continue
        terms = [make_node(ir, "contract", {"over": over},
                           [t, other] if slot == 0 else [other, t], nd, f"{nd.name}.{i}")
                 for i, t in enumerate((a, b))]
        return make_node(ir, "add", {}, terms, nd, nd.name)
    return None


_RULES = (_sum_of_stack, _weighted_sum_of_stack, _reduction_of_sum)


@ir_pass("algebra", requires=("infer-shapes",), cleanup=True)
def algebra(ir: IR) -> bool:
    changed = False
    for n in ir.topo():
        if n not in ir.graph or ir.node(n).op not in (*_LINEAR, "contract"):
            continue
        op = ir.node(n).op
        rules = {"contract": (_contraction_of_sum,), "mean": (_reduction_of_sum,)}.get(op, _RULES)
        for rule in rules:
            new = rule(ir, n)
            if new is None:
                continue
            if ir.node(new).out != ir.node(n).out:
                raise InternalError(f"algebra changed the type of `{ir.node(n).name}`")
            ir.replace_uses(n, new)
            ir.graph.remove_node(n)
            changed = True
            break
    return changed
