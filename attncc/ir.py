"""The IR: a networkx.MultiDiGraph of op nodes over named-dim tensors, plus block metadata."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx

from attncc.diagnostics import InternalError, Span
from attncc.dims import TensorType
from attncc.ops.base import InferContext, OpError, ParamSpec

if TYPE_CHECKING:
    from attncc.ops.base import Cost, Op


@dataclass
class Node:
    """The attributes of one IR node (stored as the networkx node attribute `data`)."""

    op: str  # a registry name, or "input" / "param"
    attrs: dict[str, Any]
    out: TensorType
    name: str  # stable, from the spec: `s_c`, `mlp.0`, `s_s.conv`
    stage: str | None = None
    span: Span | None = None
    param: ParamSpec | None = None  # for op == "param": the tensor it holds
    pnames: tuple[str, ...] = ()  # names of the parameter inputs, which follow the tensor inputs


@dataclass
class IR:
    """One elaborated block: graph, dim sizes, inputs, outputs and attention maps.

    `dims` maps each dim name to its size, or None for a dim known only at run time (batch
    and spatial dims); those stay symbolic in ONNX. Edges run producer -> consumer with the
    input slot as the edge key.
    """

    block: str
    graph: nx.MultiDiGraph = field(default_factory=nx.MultiDiGraph)
    dims: dict[str, int | None] = field(default_factory=dict)
    inputs: list[int] = field(default_factory=list)
    outputs: list[tuple[str, int]] = field(default_factory=list)
    attention: dict[str, int] = field(default_factory=dict)
    hyper: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None  # the named preset the hyperparameters came from, if any
    sources: dict[str, str] = field(default_factory=dict)
    path: str = "<string>"
    _ids: itertools.count = field(default_factory=itertools.count, repr=False)

    # ---- building ----
    def add(self, node: Node, inputs: list[int] = ()) -> int:
        nid = next(self._ids)
        self.graph.add_node(nid, data=node)
        for slot, src in enumerate(inputs):
            self.graph.add_edge(src, nid, key=slot)
        return nid

    def node(self, nid: int) -> Node:
        return self.graph.nodes[nid]["data"]

    def inputs_of(self, nid: int) -> list[int]:
        # the adjacency dict directly: networkx's edge views cost a third of a compile
        slots = sorted((slot, src) for src, keys in self.graph._pred[nid].items() for slot in keys)
        return [src for _, src in slots]

    def users(self, nid: int) -> list[tuple[int, int]]:
        """(consumer, slot) pairs that read `nid`."""
        return [(dst, slot) for _, dst, slot in self.graph.out_edges(nid, keys=True)]

    def set_input(self, nid: int, slot: int, src: int) -> None:
        old = self.inputs_of(nid)[slot]
        self.graph.remove_edge(old, nid, key=slot)
        self.graph.add_edge(src, nid, key=slot)

    def replace_uses(self, old: int, new: int) -> None:
        """Point every consumer, output and attention map of `old` at `new`."""
        for dst, slot in self.users(old):
            self.graph.remove_edge(old, dst, key=slot)
            self.graph.add_edge(new, dst, key=slot)
        self.outputs = [(n, new if v == old else v) for n, v in self.outputs]
        self.attention = {n: new if v == old else v for n, v in self.attention.items()}

    # ---- reading ----
    def topo(self) -> list[int]:
        """Nodes in a deterministic topological order (creation order breaks ties).

        networkx's lexicographical_topological_sort, written out over the adjacency dicts
        (Kahn's algorithm with a heap of node ids): the passes ask for it often.
        """
        succ = self.graph._succ  # the raw dicts: the views cost more than the sort
        indeg = {n: sum(map(len, preds.values())) for n, preds in self.graph._pred.items()}
        ready = [n for n, d in indeg.items() if d == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            n = heapq.heappop(ready)
            order.append(n)
            for m, keys in succ[n].items():
                indeg[m] -= len(keys)
                if indeg[m] == 0:
                    heapq.heappush(ready, m)
        if len(order) != len(indeg):
            raise InternalError(f"IR of `{self.block}` has a cycle")
        return order

    def params(self) -> list[int]:
        return [n for n in self.topo() if self.node(n).op == "param"]

    def size(self, dim: str) -> int | None:
        return self.dims.get(dim)

    def shape(self, t: TensorType, bind: dict[str, int] | None = None) -> tuple[int | None, ...]:
        """Sizes of a tensor type; size-1 for broadcast dims, `bind` fills run-time dims."""
        bind = bind or {}
        return tuple(1 if d in t.bcast else (self.dims.get(d) or bind.get(d)) for d in t.dims)

    def parameter_count(self) -> int:
        return sum(self.node(n).param.numel for n in self.params()
                   if not self.node(n).param.buffer)

    def cost(self, nid: int, bind: dict[str, int] | None = None) -> Cost:
        """The op's cost facet for one node, at this IR's sizes (`bind` fills run-time dims)."""
        from attncc.ops import get_op

        nd = self.node(nid)
        ins = self.inputs_of(nid)
        k = len(ins) - len(nd.pnames)
        shapes = [self.shape(self.node(i).out, bind) for i in ins[:k]] + [self.shape(nd.out, bind)]
        if any(size is None for shape in shapes for size in shape):
            raise InternalError(f"cost of `{nd.name}` needs the sizes of its run-time dims")
        params = {p: self.node(i).param.shape for p, i in zip(nd.pnames, ins[k:], strict=True)}
        attrs = {a: v for a, v in nd.attrs.items() if not a.startswith("_")}
        return get_op(nd.op).cost(shapes[:-1], shapes[-1], attrs, params)

    def stages(self) -> list[str]:
        seen: dict[str, None] = {}
        for n in self.topo():
            st = self.node(n).stage
            if st:
                seen.setdefault(st)
        return list(seen)

    def lint(self) -> None:
        """Structural invariants; a failure is a bug in attncc, never the user's."""
        if not nx.is_directed_acyclic_graph(self.graph):
            raise InternalError(f"IR of `{self.block}` has a cycle")
        for n in self.graph.nodes:
            slots = sorted(k for _, _, k in self.graph.in_edges(n, keys=True))
            if slots != list(range(len(slots))):
                raise InternalError(f"node {self.node(n).name} has input slots {slots}")
        for _, v in self.outputs:
            if v not in self.graph:
                raise InternalError("an output refers to a removed node")

    def dump(self) -> str:
        """One line per node, fx style: `%name : [dims] = op(%inputs, attrs) @ span [stage]`."""
        lines = [f"block {self.block}  dims: " + ", ".join(
            f"{d}={s if s is not None else '?'}" for d, s in self.dims.items())]
        for n in self.topo():
            nd = self.node(n)
            args = [f"%{self.node(i).name}" for i in self.inputs_of(n)]
            if nd.op == "param":
                args.append(f"shape={nd.param.shape}")
            args += [f"{k}={_fmt(v)}" for k, v in nd.attrs.items()]
            where = f" @ {nd.span}" if nd.span else ""
            stage = f" [{nd.stage}]" if nd.stage else ""
            lines.append(f"%{nd.name} : {nd.out} = {nd.op}({', '.join(args)}){where}{stage}")
        outs = ", ".join(f"%{self.node(v).name}" for _, v in self.outputs)
        lines.append(f"return {outs}")
        return "\n".join(lines)


class _BuildContext(InferContext):
    """The shape rules' view of an IR under construction: new dims are registered in it."""

    def __init__(self, ir: IR) -> None:
        self.ir = ir

    def require_size(self, dim: str, why: str) -> int:
        size = self.ir.dims.get(dim)
        if size is None:
            raise OpError(f"{why} needs the size of `{dim}`", kind="hyper")
        return size

    def new_dim(self, name: str, size: int) -> None:
        if self.ir.dims.get(name, size) != size:
            raise OpError(f"dim `{name}` already has size {self.ir.dims[name]}, not {size}")
        self.ir.dims[name] = size

    def rename_dim(self, old: str, new: str) -> None:
        size = self.ir.dims.get(old)
        if self.ir.dims.get(new, size) != size:
            raise OpError(f"dim `{new}` already has size {self.ir.dims[new]}")
        self.ir.dims[new] = size


def single_op(op: Op, inputs: Sequence[tuple[str, ...] | TensorType],
              attrs: Mapping[str, Any], sizes: Mapping[str, int | None], *,
              block: str | None = None) -> IR:
    """A one-op IR: an input per tensor, the op with its parameter nodes, and one output `y`.

    Attributes missing from `attrs` take the signature's defaults, as a spec call would. The
    IR is as elaborated: run the pass pipeline before lowering it.

    Example:
        >>> from attncc.ops import get_op
        >>> ir = single_op(get_op("mean"), [("N", "C", "H")], {"over": ("H",)},
        ...                {"N": 2, "C": 3, "H": 5})
        >>> str(ir.node(ir.outputs[0][1]).out)
        '[N, C]'
    """
    sig = op.signature
    unknown = set(attrs) - set(sig.attrs)
    if unknown:
        raise OpError(f"{op.name} has no attribute `{sorted(unknown)[0]}`")
    full = {k: attrs.get(k, arg.default) for k, arg in sig.attrs.items()}
    missing = [k for k, arg in sig.attrs.items() if arg.required and k not in attrs]
    if missing:
        raise OpError(f"{op.name} needs `{missing[0]}`", arg=missing[0])
    if sig.variadic:
        names = [f"{sig.tensors[0]}{i}" for i in range(len(inputs))]
    elif len(sig.tensors) - len(sig.optional) <= len(inputs) <= len(sig.tensors):
        names = list(sig.tensors[: len(inputs)])
    else:
        raise OpError(f"{op.name} takes {len(sig.tensors)} tensors, not {len(inputs)}")
    ir = IR(block=block or op.name)
    ir.dims.update(sizes)
    ids = []
    for name, dims in zip(names, inputs, strict=True):
        # a TensorType gives an input another dtype (int64 indices); a tuple is float32
        t = dims if isinstance(dims, TensorType) else TensorType(tuple(dims))
        for d in t.dims:
            ir.dims.setdefault(d, None)
        ids.append(ir.add(Node("input", {}, t, name)))
    ir.inputs = list(ids)
    ctx = _BuildContext(ir)
    types = [ir.node(i).out for i in ids]
    out = op.infer(ctx, types, full)
    specs = op.params(ctx, types, full)
    pids = [ir.add(Node("param", {}, TensorType(()), f"y.{p}", param=spec))
            for p, spec in specs.items()]
    y = ir.add(Node(op.name, full, out, "y", pnames=tuple(specs)), ids + pids)
    ir.outputs = [("y", y)]
    return ir


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):
        return " ".join(map(str, v)) if v else "()"
    return str(v)
