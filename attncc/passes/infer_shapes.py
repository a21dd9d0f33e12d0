"""Shape inference over named dims: re-runs each op's rule in topological order and checks it."""

from __future__ import annotations

from attncc.diagnostics import InternalError, ShapeError
from attncc.ir import IR
from attncc.ops import get_op
from attncc.ops.base import InferContext, OpError
from attncc.passes import ir_pass


class _IRContext(InferContext):
    def __init__(self, ir: IR) -> None:
        self.ir = ir

    def require_size(self, dim: str, why: str) -> int:
        size = self.ir.dims.get(dim)
        if size is None:
            raise InternalError(f"{why}: size of `{dim}` unknown after elaboration")
        return size

    def new_dim(self, name: str, size: int | None) -> None:
        old = self.ir.dims.get(name)
        if old is None and size is not None:
            # a run-time dim derived from one that a later statement pinned (pool's output)
            self.ir.dims[name] = size
        elif size is not None and old != size:
            raise InternalError(f"dim `{name}` changed size during shape inference")

    def rename_dim(self, old: str, new: str) -> None:
        pass


def node_attrs(attrs: dict) -> dict:
    """An op's attributes without the IR's bookkeeping keys (`_layer`)."""
    return {k: v for k, v in attrs.items() if not k.startswith("_")}


@ir_pass("infer-shapes", requires=("validate",))
def infer_shapes(ir: IR) -> bool:
    ctx = _IRContext(ir)
    changed = False
    for n in ir.topo():
        nd = ir.node(n)
        if nd.op in ("input", "param"):
            continue
        ins = ir.inputs_of(n)
        ins = ins[: len(ins) - len(nd.pnames)]
        try:
            out = get_op(nd.op).infer(ctx, [ir.node(i).out for i in ins], node_attrs(nd.attrs))
        except OpError as err:
            raise ShapeError(err.message, nd.span, hints=err.hints) from None
        if out != nd.out:
            nd.out, changed = out, True
    return changed
