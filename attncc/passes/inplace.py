"""Marks where the generated forward may overwrite a temporary instead of allocating one.

In inference (autograd off) an element-wise op whose operand is a temporary that nothing
reads afterwards can write its result over that operand: `torch.relu_(t)`, `x1.mul_(s)`.
On a block over [8, 256, 56, 56] each such write saves a 25 MB allocation, which glibc hands
back to the kernel on free and page-faults in again on the next call.

The rule is conservative. Storage is tracked per node: a node whose op always returns a new
tensor (`FRESH_OPS`, or an element-wise op) owns its storage; any other op (a layout op, or
one whose torch lowering may return a view) is taken to alias every operand. A node may be
written over when
  * it owns its storage, or inherited it from an earlier in-place write,
  * nothing that aliases that storage is an input, a parameter, an output or an attention
    map, or is read after this op (attention-only nodes run last, so they count as later),
  * it has the op's result type exactly (same dims, order, no broadcast, same dtype),
  * the other operand does not alias it (unless it is the very same tensor: `d * d`).
Never the caller's input, never a parameter, never a tensor handed back.

The pass records its choice as the node attribute `_overwrite` (the operand slot written
over); the torch code generator emits `torch.relu_(t) if _inplace else torch.relu(t)` there,
with `_inplace = not torch.is_grad_enabled()`. Other backends ignore it. Off at -O0 and with
`--disable inplace`.
"""

from __future__ import annotations

from collections.abc import Sequence

from attncc.ir import IR
from attncc.ops import get_op
from attncc.passes import ir_pass

# ops whose torch lowering always returns a new tensor (besides element-wise ops); a view of
# that new tensor (`F.conv2d(...).squeeze(1)`) is still the only reference to it
FRESH_OPS = frozenset({"dense", "conv", "batch_norm", "layer_norm", "group_norm", "softmax",
                       "attend", "avg_pool", "max_pool", "mean", "sum", "max", "min", "l2",
                       "logsumexp", "var", "std"})


def owns_storage(op: str) -> bool:
    return op in FRESH_OPS or "elementwise" in get_op(op).traits


def plan(ir: IR, order: Sequence[int], deferred: set[int]) -> dict[int, int]:
    """{node: the tensor-input slot it overwrites} for nodes run in `order` (the forward's
    statements; `deferred` ones run after all others, only for attention maps)."""
    pos = {n: i for i, n in enumerate(order)}
    last = len(order)
    for n in deferred:
        pos[n] = last  # read after everything in the main body
    returned = {v for _, v in ir.outputs} | set(ir.attention.values())
    bases: dict[int, frozenset[int]] = {}
    writable: set[int] = set()  # storages that may be overwritten
    aliases: dict[int, set[int]] = {}  # storage -> nodes that may refer to it
    out: dict[int, int] = {}

    def readers_done(storage: int, at: int, me: int) -> bool:
        for m in aliases.get(storage, ()):
            if m in returned:
                return False
            for user, _ in ir.users(m):
                if user != me and pos.get(user, last) >= at:
                    return False
        return True

    for n in ir.topo():
        nd = ir.node(n)
        ins = ir.inputs_of(n)
        if nd.op in ("input", "param"):
            bases[n] = frozenset({n})
        elif n in pos and n not in deferred and owns_storage(nd.op):
            k = len(ins) - len(nd.pnames)
            slot = _target(ir, n, ins[:k], bases, writable, readers_done, pos[n])
            if slot is None:
                bases[n] = frozenset({n})
                writable.add(n)
            else:
                out[n] = slot
                bases[n] = bases[ins[slot]]
        else:
            bases[n] = frozenset(b for i in ins for b in bases[i]) | {n}
        for b in bases[n]:
            aliases.setdefault(b, set()).add(n)
    return out


def _target(ir: IR, n: int, tensors: list[int], bases, writable, readers_done,
            at: int) -> int | None:
    nd = ir.node(n)
    op = get_op(nd.op)
    if "elementwise" not in op.traits or nd.out.bcast:
        return None
    slots = [0, 1] if "commutative" in op.traits and len(tensors) == 2 else [0]
    for slot in slots:
        t = tensors[slot]
        (storage,) = bases[t] if len(bases[t]) == 1 else (None,)
        if storage is None or storage not in writable or ir.node(t).out != nd.out:
            continue
        # the other operand may be the very same tensor (`d * d`: exact aliasing is fine for
        # an element-wise kernel), never another view of it
        others = [o for i, o in enumerate(tensors) if i != slot and o != t]
        if any(storage in bases[o] for o in others):
            continue
        if readers_done(storage, at, n):
            return slot
    return None


@ir_pass("inplace", requires=("infer-shapes",), cleanup=True)
def mark_inplace(ir: IR) -> bool:
    from attncc.backends.torch_codegen import attention_only

    deferred = attention_only(ir)
    order = [n for n in ir.topo() if ir.node(n).op not in ("input", "param")]
    chosen = plan(ir, [n for n in order if n not in deferred], deferred)
    changed = False
    for n in order:
        attrs = ir.node(n).attrs
        if attrs.get("_overwrite") != chosen.get(n):
            attrs.pop("_overwrite", None)
            if n in chosen:
                attrs["_overwrite"] = chosen[n]
            changed = True
    return changed
