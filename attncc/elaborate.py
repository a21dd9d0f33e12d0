"""AST + hyperparameter bindings -> IR: resolves names and ops, inlines blocks, names nodes.

Elaboration evaluates each statement once. Scalars (hyperparameters and their derived values)
are computed by the safe evaluator in `hyper.py`; tensor expressions become IR nodes whose
shapes come from each op's rule. Node and parameter names derive from the spec's variable
and layer names, so `state_dict` keys are stable and readable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from attncc import hyper
from attncc.diagnostics import (
    AttnccError,
    CycleError,
    Diagnostic,
    HyperparameterError,
    NameError_,
    ShapeError,
    SignatureError,
    Span,
    did_you_mean,
    plural,
)
from attncc.dims import TensorType
from attncc.ir import IR, Node
from attncc.limits import Limits, ResourceError, enforce
from attncc.limits import current as current_limits
from attncc.ops import get_op, has_op, user_ops
from attncc.ops.base import (
    Arg,
    BoolArg,
    ChoiceArg,
    DimArg,
    DimsArg,
    FloatArg,
    InferContext,
    IntArg,
    Map,
    MapArg,
    Op,
    OpError,
    ParamSpec,
)
from attncc.source import entry_block, load_module
from attncc.syntax import ast, parse

# the defaults of attncc.limits (`block_depth`, `repeat`); the limits in force apply
MAX_BLOCK_DEPTH = 32
MAX_DIAGNOSTICS = 20
# the most iterations one `repeat` may unroll to (each copies its body into the graph)
MAX_REPEAT = 64


# ---- values a name can stand for ----
@dataclass(frozen=True)
class Tensor:
    nid: int


@dataclass(frozen=True)
class Dims:
    """A `dim`/`dims` block parameter: dim names passed to a sub-block."""

    names: tuple[str, ...]


@dataclass
class LayerPart:
    op: Op
    attrs: dict[str, Any]
    arg_spans: dict[str, Span]
    span: Span
    params: dict[str, int] = field(default_factory=dict)  # param name -> param node, once made
    loop_depth: int = 0  # `repeat` bodies around the declaration (inside an inlined block)


@dataclass
class Layer:
    """A named op (or `seq` of ops) whose parameters are shared by every application."""

    name: str
    parts: list[LayerPart]
    span: Span
    applications: int = 0


class _Poisoned(Exception):
    """A name whose definition already failed: its uses are skipped without a second error."""


_ERRORS = {"shape": ShapeError, "hyper": HyperparameterError, "signature": SignatureError}

# scalar types a block parameter may declare
_SCALAR_TYPES = {"int": int, "float": float, "bool": bool}
_DIM_TYPES = ("dim", "dims")


@dataclass
class _Frame:
    """One block being elaborated: its scope, name prefix and current stage."""

    block: ast.Block
    prefix: str
    scope: dict[str, Any] = field(default_factory=dict)
    defined_at: dict[str, Span] = field(default_factory=dict)
    stage: str | None = None
    # inside `repeat` bodies: the iteration indices (`.2`, `.2.1` when nested) that the
    # nodes of a statement are named with, and the names the bodies may rebind
    suffix: str = ""
    rebindable: frozenset[str] = frozenset()


class Elaborator(InferContext):
    def __init__(self, blocks: dict[str, ast.Block], ir: IR, example: Mapping[str, int],
                 max_repeat: int | None = None, limits: Limits | None = None) -> None:
        self.blocks = blocks
        self.limits = limits or current_limits()
        self.max_repeat = self.limits.repeat if max_repeat is None else max_repeat
        # how many `repeat` bodies are being unrolled (across block calls): parameters made
        # inside one would differ per iteration, so they are refused there
        self.loop_depth = 0
        self.ir = ir
        self.example = dict(example)
        self.diags: list[Diagnostic] = []
        # the error class of each collected diagnostic, so the raised error keeps the class
        self.kinds: list[type[AttnccError]] = []
        self.stack: list[_Frame] = []
        # per statement: nodes created, so names can be assigned once the statement is done
        self.created: list[int] = []
        # for each dim, a node whose tensor has it: its shape gives the dim's run-time size
        self.witness: dict[str, int] = {}
        # run-time dims renamed by `as` (P of `x as [N, C, P]`) -> the dim they rename, so the
        # resource limits can size them at the example shape
        self.aliases: dict[str, str] = {}

    # ---- InferContext ----
    def require_size(self, dim: str, why: str) -> int:
        size = self.ir.dims.get(dim)
        if size is None and dim in self.example:
            # pinned: this dim's size is now part of the compiled block (parameters use it)
            size = self.ir.dims[dim] = self.example[dim]
        if size is None:
            raise OpError(
                f"{why} needs the size of `{dim}`, which is only known at run time",
                hints=(f"pass it as a hyperparameter ({dim}=64, or `--set {dim}=64`) or give an "
                       f"example input shape",),
                kind="hyper",
            )
        return size

    def new_dim(self, name: str, size: int) -> None:
        old = self.ir.dims.get(name)
        if name in self.ir.dims and old != size:
            raise OpError(f"dim `{name}` already has size {old}, not {size}", kind="shape")
        self.ir.dims[name] = size

    def rename_dim(self, old: str, new: str) -> None:
        size = self.ir.dims.get(old)
        if new in self.ir.dims and new != old and self.ir.dims[new] != size:
            raise OpError(f"dim `{new}` already has size {self.ir.dims[new]}", kind="shape")
        self.ir.dims[new] = size
        if size is None and new != old:
            self.aliases.setdefault(new, old)

    # ---- entry ----
    def run_top(self, block: ast.Block, bindings: Mapping[str, Any]) -> None:
        frame = _Frame(block, prefix="")
        self.stack.append(frame)
        tensors = {p.name.text: p for p in block.params if isinstance(p.type, ast.TensorTypeAst)}
        known = {p.name.text for p in block.params} - set(tensors)
        input_dims = {d.text for p in tensors.values() for d in p.type.dims}
        for key in bindings:
            if key in tensors:
                raise HyperparameterError(
                    f"`{key}` is an input tensor of `{block.name.text}`, not a hyperparameter",
                    tensors[key].span,
                    hints=(_dims_hint(tensors[key].type),))
            if key not in known and key not in input_dims:
                raise HyperparameterError(
                    f"`{block.name.text}` has no hyperparameter or dim named `{key}`",
                    block.name.span,
                    hints=did_you_mean(key, sorted(known | input_dims), "name"),
                )
        for p in block.params:
            if isinstance(p.type, ast.TensorTypeAst):
                self._declare_input(frame, p, bindings)
        for p in block.params:
            if not isinstance(p.type, ast.TensorTypeAst):
                self._bind_scalar_param(frame, p, bindings.get(p.name.text, _MISSING), top=True)
        outs = self._body(frame, collect=True)
        self.stack.pop()
        if self.diags:
            raise self.collected()
        if outs is None:
            raise SignatureError(f"block `{block.name.text}` has no `return`", block.name.span,
                                 hints=("end the block with `return y`",))
        for i, (expr, value) in enumerate(outs):
            name = expr.name if isinstance(expr, ast.Var) else f"out{i}"
            self.ir.outputs.append((name, value.nid))

    def _declare_input(self, frame: _Frame, p: ast.Param, bindings: Mapping[str, Any]) -> None:
        assert isinstance(p.type, ast.TensorTypeAst)
        names = [d.text for d in p.type.dims]
        for d in p.type.dims:
            if names.count(d.text) > 1:
                raise ShapeError(f"dim `{d.text}` appears twice in the type of `{p.name.text}`",
                                 d.span)
            if d.text in bindings:
                v = bindings[d.text]
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise HyperparameterError(
                        f"dim `{d.text}` must be a positive integer, got {v!r}", d.span)
                self.ir.dims[d.text] = v
            else:
                self.ir.dims.setdefault(d.text, None)
        nid = self.ir.add(Node("input", {}, TensorType(tuple(names)), p.name.text,
                               span=p.span))
        self.ir.inputs.append(nid)
        for d in names:
            self.witness.setdefault(d, nid)
        self._define(frame, p.name, Tensor(nid))

    def _bind_scalar_param(self, frame: _Frame, p: ast.Param, given: Any, top: bool,
                           at: Span | None = None) -> None:
        """Bind a scalar parameter; `at` is the span of the caller's argument, if one was given."""
        tname = p.type.name if isinstance(p.type, ast.ScalarType) else None
        if tname is not None and tname not in _SCALAR_TYPES and tname not in _DIM_TYPES:
            raise NameError_(f"unknown parameter type `{tname}`", p.type.span,
                             hints=did_you_mean(tname, [*_SCALAR_TYPES, *_DIM_TYPES], "type"))
        if given is _MISSING:
            if p.default is None:
                if top:
                    raise HyperparameterError(
                        f"hyperparameter `{p.name.text}` has no default and was not given",
                        p.span, hints=(f"pass it, e.g. `--set {p.name.text}=...`",))
                raise SignatureError(f"missing argument `{p.name.text}`", p.span)
            given = self._scalar(p.default)
        if tname in _SCALAR_TYPES:
            want = _SCALAR_TYPES[tname]
            ok = isinstance(given, want) and not (want is not bool and isinstance(given, bool))
            if want is float and isinstance(given, int) and not isinstance(given, bool):
                given, ok = float(given), True
            if not ok:
                if tname == "int":
                    finite = isinstance(given, float) and math.isfinite(given)
                    how, example = "give it a whole number", max(1, int(given)) if finite else 1
                elif tname == "bool":
                    how, example = "give it `true` or `false`", "true"
                else:
                    how, example = "give it a number", 1.0
                setting = f"--set {p.name.text}={example}" if top else f"{p.name.text}={example}"
                what = (f"hyperparameter `{p.name.text}`" if top
                        else f"parameter `{p.name.text}` of `{frame.block.name.text}`")
                raise HyperparameterError(
                    f"{what} is {tname}, got {hyper.type_name(given)} {_scalar_text(given)}",
                    at or p.span,
                    hints=(f"{how}, e.g. `{setting}`",),
                    notes=(f"`{p.name.text}` is declared at {p.span}",) if at else ())
        self._define(frame, p.name, given)
        if top:
            self.ir.hyper[p.name.text] = given

    # ---- statements ----
    def _body(self, frame: _Frame, collect: bool) -> list[tuple[ast.Expr, Tensor]] | None:
        """Elaborate a block's statements; at top level, keep going after an error."""
        result = None
        for stmt in frame.block.body:
            if collect and len(self.diags) >= MAX_DIAGNOSTICS:
                # like a compiler's error limit: say so rather than stop silently
                self.diags.append(Diagnostic(
                    f"too many errors; stopped after {MAX_DIAGNOSTICS}", severity="note",
                    hints=("fix these and check again",)))
                break
            try:
                out = self._stmt(frame, stmt)
            except _Poisoned:
                if not collect:
                    raise
                self._poison(frame, stmt)
                continue
            except AttnccError as err:
                if not collect:
                    raise
                room = MAX_DIAGNOSTICS - len(self.diags)
                self.diags.extend(err.diagnostics[:room])
                self.kinds.append(type(err))
                self._poison(frame, stmt)
                continue
            if out is not None:
                result = out
        return result

    def collected(self) -> AttnccError:
        """One error carrying every collected diagnostic, of their class when they share one."""
        kinds = set(self.kinds)
        cls = kinds.pop() if len(kinds) == 1 else AttnccError
        return cls(self.diags)

    @staticmethod
    def _poison(frame: _Frame, stmt: ast.Stmt) -> None:
        if isinstance(stmt, ast.Repeat):
            # a loop that failed leaves none of its names usable, carried ones included
            for target in _assigned(stmt.body):
                frame.scope[target.text] = _POISON
            return
        targets = getattr(stmt, "targets", None) or (getattr(stmt, "target", None),)
        for target in targets:
            if target is not None and target.text not in frame.scope:
                frame.scope[target.text] = _POISON

    def _stmt(self, frame: _Frame, stmt: ast.Stmt) -> list[tuple[ast.Expr, Tensor]] | None:
        if getattr(stmt, "stage", None) is not None:
            frame.stage = stmt.stage.text
        match stmt:
            case ast.Assign(target=target, value=value):
                self.created = []
                self._current_target = target.text + frame.suffix
                v = self._eval(frame, value)
                if isinstance(v, Tensor):
                    self._name_statement(frame, target.text + frame.suffix, v)
                elif isinstance(v, (Layer, Dims)) or not hyper.is_scalar(v):
                    raise SignatureError(f"`{target.text}` must be a tensor or a number",
                                         value.span)
                self._define(frame, target, v)
            case ast.MultiAssign(targets=targets, value=value):
                self.created = []
                self._current_target = targets[0].text + frame.suffix
                for target, piece in zip(targets, self._split(frame, targets, value),
                                         strict=True):
                    self.ir.node(piece.nid).name = frame.prefix + target.text + frame.suffix
                    self._define(frame, target, piece)
            case ast.LayerDecl(target=target, value=value):
                self._define(frame, target, self._layer(frame, target.text, value))
            case ast.ParamDecl(target=target, dims=dims, init=init):
                self._define(frame, target, self._param_decl(frame, stmt, dims, init))
            case ast.DimDecl(target=target, value=value):
                size = self._scalar(value)
                if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                    raise HyperparameterError(
                        f"dim `{target.text}` must have a positive integer size, got {size!r}",
                        value.span)
                if target.text in self.ir.dims and self.ir.dims[target.text] != size:
                    raise ShapeError(f"dim `{target.text}` is already defined", target.span)
                self.ir.dims[target.text] = size
            case ast.PresetDecl():
                pass  # applied by the compiler before elaboration (compiler.apply_preset)
            case ast.ExampleDecl(target=target, shape=shape):
                # read by the compiler before elaboration; here only checked against the input
                v = self._lookup(frame, target.text, target.span)
                # an input of this block, also when the block is called by another (`use`)
                declared = [p.type for p in frame.block.params if p.name.text == target.text
                            and isinstance(p.type, ast.TensorTypeAst)]
                if not isinstance(v, Tensor) or not declared:
                    raise SignatureError(f"`example` gives the shape of an input; "
                                         f"`{target.text}` is not one", target.span)
                dims = [d.text for d in declared[0].dims]
                if len(shape) != len(dims) or min(shape) < 1:
                    raise ShapeError(
                        f"example shape of `{target.text}` must be {len(dims)} positive sizes "
                        f"for [{', '.join(dims)}]", stmt.span)
            case ast.AttentionDecl(names=names):
                for n in names:
                    v = self._lookup(frame, n.text, n.span)
                    if not isinstance(v, Tensor):
                        raise SignatureError(f"`{n.text}` is not a tensor", n.span,
                                             hints=("`attention` marks a tensor of the block",))
                    self.ir.attention[frame.prefix + n.text] = v.nid
            case ast.Return(values=values):
                outs = []
                for e in values:
                    self.created = []
                    self._current_target = "out"
                    v = self._eval(frame, e)
                    if not isinstance(v, Tensor):
                        raise SignatureError(
                            f"a block returns tensors, but `{ast.unparse(e)}` is "
                            f"{'a number' if hyper.is_scalar(v) else 'not a tensor'}", e.span)
                    if self.created:
                        self._name_statement(frame, "out", v)
                    outs.append((e, v))
                return outs
            case ast.Repeat():
                self._repeat(frame, stmt)
        return None

    # ---- compile-time loops ----
    _NOT_IN_LOOP: ClassVar[dict[type, str]] = {
        ast.LayerDecl: "layer", ast.ParamDecl: "param", ast.DimDecl: "dim",
        ast.ExampleDecl: "example", ast.PresetDecl: "preset", ast.AttentionDecl: "attention",
        ast.Return: "return",
    }

    def _repeat(self, frame: _Frame, stmt: ast.Repeat) -> None:
        """Unroll `repeat n { ... }`: the body's statements, elaborated n times in a row.

        A name the body assigns that was defined before the loop is loop-carried: each
        iteration reads the previous one's value (the first reads the value from before the
        loop) until the body assigns it, and after the loop it holds the last iteration's.
        A name first assigned in the body is fresh in each iteration (reading it before its
        assignment is an error) and, after the loop, holds the last iteration's value. Within
        one iteration each name is assigned by one statement only (besides a nested `repeat`,
        which may rebind it like any loop-carried name). Layers and `param`s are declared
        before the loop, so every iteration shares their parameters.
        """
        n = self._repeat_count(frame, stmt)
        for s in stmt.body:
            kw = self._NOT_IN_LOOP.get(type(s))
            if kw is not None:
                raise SignatureError(
                    f"`{kw}` cannot be inside `repeat`", s.span,
                    hints=(f"put the `{kw}` before the `repeat`; the loop body only assigns "
                           "values" if kw != "return" else
                           "assign inside the loop and `return` after it",))
        # each name: one assigning statement per iteration; a nested loop may rebind it
        owner: dict[str, ast.Name] = {}
        for s in stmt.body:
            if isinstance(s, ast.Repeat):
                continue
            for name in _assigned((s,)):
                if name.text in owner:
                    raise NameError_(
                        f"`{name.text}` is assigned twice in one iteration of `repeat`",
                        name.span, hints=("give the new value its own name",),
                        notes=(f"first assigned at {owner[name.text].span}",))
                owner[name.text] = name
        for name in _assigned(stmt.body):
            owner.setdefault(name.text, name)
        owner = {t: owner[t] for t in dict.fromkeys(x.text for x in _assigned(stmt.body))}
        carried, local = [], []
        for t, name in owner.items():
            if t not in frame.scope or isinstance(frame.scope[t], _Unbound):
                local.append(t)
                continue
            v = frame.scope[t]
            if v is _POISON:
                raise _Poisoned
            if not isinstance(v, Tensor):
                kind = "a number" if hyper.is_scalar(v) else "not a tensor"
                raise SignatureError(
                    f"`{t}` is {kind}; `repeat` can only carry tensors from one iteration "
                    "to the next", name.span,
                    hints=("give the loop's value its own name",),
                    notes=self._def_note(frame, ast.Var(t, name.span)))
            carried.append(t)
        saved = frame.suffix, frame.rebindable
        frame.rebindable = saved[1] | frozenset(owner)
        self.loop_depth += 1
        try:
            for i in range(1, n + 1):
                frame.suffix = f"{saved[0]}.{i}"
                for t in local:
                    frame.scope[t] = _Unbound(
                        f"`{t}` is used before the `repeat` body assigns it", owner[t].span,
                        ("a name first assigned in the body starts each iteration unset; "
                         "to carry it from one iteration to the next, define it before the "
                         "`repeat`",))
                try:
                    for s in stmt.body:
                        self._stmt(frame, s)
                except AttnccError as err:
                    raise err.with_note(
                        f"in iteration {i} of {n} of the `repeat` at {stmt.keyword}") from None
        finally:
            self.loop_depth -= 1
            frame.suffix, frame.rebindable = saved
        if n == 0:
            for t in local:
                frame.scope[t] = _Unbound(
                    f"`{t}` is assigned only inside a `repeat` that runs 0 times",
                    owner[t].span, ("define it before the `repeat` as well",))

    def _repeat_count(self, frame: _Frame, stmt: ast.Repeat) -> int:
        n = self._scalar(stmt.count)
        if not isinstance(n, int) or isinstance(n, bool):
            raise HyperparameterError(
                f"the count of `repeat` must be an integer, got {hyper.type_name(n)} "
                f"{_scalar_text(n)}", stmt.count.span,
                hints=("use `//` for integer division", *self._uses_hint(frame, stmt.count)),
                notes=self._def_note(frame, stmt.count))
        if not 0 <= n <= self.max_repeat:
            bound = "at least 0" if n < 0 else f"at most {self.max_repeat}"
            raise HyperparameterError(
                f"the count of `repeat` must be {bound}, got {n}", stmt.count.span,
                hints=self._uses_hint(frame, stmt.count)
                + (("each iteration is a copy of the body in the graph",
                    "the limit is set by `--limit repeat=N` (attncc.limits)") if n > 0 else ()),
                notes=self._def_note(frame, stmt.count))
        return n

    def _split(self, frame: _Frame, targets: tuple[ast.Name, ...],
               value: ast.Expr) -> list[Tensor]:
        """`a, b = split(y, L -> H W)`: one `narrow` node per piece, sized at run time."""
        form = "`a, b = split(y, L -> H W)`"
        if not (isinstance(value, ast.Call) and value.func.name == "split"):
            raise SignatureError(f"only `split` gives several values: {form}", value.span)
        if value.kwargs or len(value.args) != 2 or not isinstance(value.args[1], ast.DimMap):
            raise SignatureError(f"split takes a tensor and a dim map: {form}", value.span)
        x = self._need_tensor(self._eval(frame, value.args[0]), value.args[0], get_op("narrow"))
        m = value.args[1]
        along = self._map_side(frame, m.src, source=True)
        pieces = self._dim_names(frame, m.dst, "name the pieces' dims, e.g. `L -> H W`")
        if len(along) != 1:
            raise SignatureError("split cuts one dim", m.src.span)
        if len(pieces) != len(targets):
            raise SignatureError(f"split gives {len(pieces)} pieces but {len(targets)} names "
                                 "receive them", value.span)
        for d in pieces:
            if d not in self.witness:
                raise NameError_(f"no tensor has dim `{d}`, so its size is unknown", m.dst.span,
                                 hints=("a piece's dim must be a dim of some earlier tensor, "
                                        "e.g. an input's",))
        known = [self.ir.dims.get(d) for d in (*along, *pieces)]
        if None not in known and known[0] != sum(known[1:]):
            raise ShapeError(f"`{along[0]}` has size {known[0]}, but the pieces add up to "
                             f"{sum(known[1:])}", m.span)
        spans = {"along": m.src.span, "pieces": m.dst.span}
        return [
            self._apply(get_op("narrow"),
                        [x] + [Tensor(self.witness[d]) for d in pieces[: i + 1]],
                        {"along": along[0], "pieces": pieces[: i + 1]}, spans, value.span)
            for i in range(len(pieces))
        ]

    # initialisers a `param` declaration may name, with their positional arguments;
    # `values` (None) takes one number per element, in row-major order
    _PARAM_INITS: ClassVar[dict[str, tuple[str, ...] | None]] = {
        "zeros": (), "ones": (), "constant": ("value",), "normal": ("std",),
        "uniform": ("low", "high"), "values": None,
    }

    def _param_decl(self, frame: _Frame, stmt: ast.ParamDecl, dims: ast.TensorTypeAst,
                    init: ast.Expr | None) -> Tensor:
        """A learnable tensor: its dims must have compile-time sizes."""
        names = tuple(d.text for d in dims.dims)
        shape = []
        for d in dims.dims:
            if names.count(d.text) > 1:
                raise ShapeError(f"dim `{d.text}` appears twice in `{stmt.target.text}`", d.span)
            if d.text not in self.ir.dims:
                raise NameError_(f"unknown dim `{d.text}`", d.span,
                                 hints=did_you_mean(d.text, self.ir.dims, "dim"))
            try:
                shape.append(self.require_size(d.text, f"parameter `{stmt.target.text}`"))
            except OpError as err:
                raise HyperparameterError(err.message, d.span, hints=err.hints) from None
        kind, args = "zeros", ()
        if init is not None:
            call = init if isinstance(init, ast.Call) else None
            fname = call.func.name if call else init.name if isinstance(init, ast.Var) else None
            if fname not in self._PARAM_INITS:
                raise NameError_(
                    f"unknown initialiser `{ast.unparse(init)}`", init.span,
                    hints=("initialisers: zeros, ones, constant(v), normal(std), "
                           "uniform(low, high), values(v, ...)",))
            want = self._PARAM_INITS[fname]
            given = call.args if call else ()
            if want is None:  # `values(...)`: exactly one number per element
                numel = math.prod(shape)
                if len(given) != numel or (call and call.kwargs):
                    raise SignatureError(
                        f"`values` gives {len(given)} numbers for the {numel} elements of "
                        f"`{stmt.target.text}`", init.span,
                        hints=("list one number per element, in row-major order",))
            elif len(given) != len(want) or (call and call.kwargs):
                raise SignatureError(
                    f"`{fname}` takes {len(want)} argument{'s' if len(want) != 1 else ''}"
                    + (f" ({', '.join(want)})" if want else ""), init.span)
            kind, args = fname, tuple(float(self._scalar(a)) for a in given)
        if self.loop_depth:
            raise self._param_in_loop(f"`param {stmt.target.text}`", stmt.span)
        spec = ParamSpec(tuple(shape), kind, init_args=args)
        nid = self.ir.add(Node("param", {"declared": True}, TensorType(names),
                               frame.prefix + stmt.target.text,
                               stage=frame.stage, span=stmt.span, param=spec))
        for d in names:
            self.witness.setdefault(d, nid)
        return Tensor(nid)

    def _param_in_loop(self, what: str, span: Span) -> AttnccError:
        return SignatureError(
            f"{what} would make new parameters on every iteration of `repeat`", span,
            hints=("declare a `layer` (or `param`) before the `repeat` and use it inside: "
                   "every iteration then shares its parameters",))

    def _define(self, frame: _Frame, name: ast.Name, value: Any) -> None:
        old = frame.scope.get(name.text)
        if (name.text in frame.scope and old is not _POISON and not isinstance(old, _Unbound)
                and name.text not in frame.rebindable):
            first = frame.defined_at.get(name.text)
            raise NameError_(
                f"`{name.text}` is already defined", name.span,
                hints=("give the new value its own name",),
                notes=(f"first defined at {first}",) if first else (),
            )
        frame.scope[name.text] = value
        frame.defined_at[name.text] = name.span

    def _name_statement(self, frame: _Frame, target: str, value: Tensor) -> None:
        """Name this statement's nodes after its target: root `y`, others `y.conv`, ..."""
        ops = [n for n in self.created if n != value.nid and self.ir.node(n).op != "param"]
        with_params = [n for n in self.created if self.ir.node(n).pnames
                       and not self.ir.node(n).attrs.get("_layer")]
        root = self.ir.node(value.nid)
        if value.nid in self.created:
            root.name = frame.prefix + target
        counts: dict[str, int] = {}
        for n in ops:
            counts[self.ir.node(n).op] = counts.get(self.ir.node(n).op, 0) + 1
        seen: dict[str, int] = {}
        for n in ops:
            nd = self.ir.node(n)
            if nd.attrs.get("_layer"):
                continue
            i = seen[nd.op] = seen.get(nd.op, -1) + 1
            nd.name = f"{frame.prefix}{target}.{nd.op}" + (str(i) if counts[nd.op] > 1 else "")
        # parameter paths: the statement's name when it has one parametrised op
        for n in with_params:
            nd = self.ir.node(n)
            path = frame.prefix + target if len(with_params) == 1 else nd.name
            for src, pname in zip(self.ir.inputs_of(n)[-len(nd.pnames):], nd.pnames, strict=True):
                self.ir.node(src).name = f"{path}.{pname}"

    # ---- expressions ----
    def _lookup(self, frame: _Frame, name: str, span: Span) -> Any:
        if name in frame.scope:
            v = frame.scope[name]
            if v is _POISON:
                raise _Poisoned
            if isinstance(v, _Unbound):
                raise NameError_(v.message, span, hints=v.hints,
                                 notes=(f"`{name}` is assigned at {v.at}",))
            return v
        if name in self.ir.dims:
            return self.require_size_at(name, span)
        if has_op(name) or name in self.blocks or name in hyper.FUNCTIONS:
            kind = "an op" if has_op(name) else "a block" if name in self.blocks else "a function"
            raise SignatureError(f"`{name}` is {kind}; call it with arguments", span,
                                 hints=(f"e.g. `{name}(x)`",))
        raise NameError_(f"unknown name `{name}`", span,
                         hints=did_you_mean(name, [n for n in (*frame.scope, *self.ir.dims)
                                                   if n.isidentifier()]))

    def require_size_at(self, dim: str, span: Span) -> int:
        try:
            return self.require_size(dim, f"`{dim}` used as a number")
        except OpError as err:
            raise HyperparameterError(
                f"the size of `{dim}` is used here, but it is only known at run time", span,
                hints=err.hints) from None

    def _scalar(self, expr: ast.Expr) -> hyper.Scalar:
        frame = self.stack[-1]

        def lookup(var: ast.Var) -> hyper.Scalar:
            v = self._lookup(frame, var.name, var.span)
            if not hyper.is_scalar(v):
                raise HyperparameterError(f"`{var.name}` is not a number here", var.span)
            return v

        if isinstance(expr, ast.StrLit):
            raise HyperparameterError("a string is not a number", expr.span)
        return hyper.evaluate(expr, lookup)

    def _uses_hint(self, frame: _Frame, e: ast.Expr) -> tuple[str, ...]:
        """`it uses `C` = 16, `r` = 32`: the values behind a computed number, for hints."""
        if isinstance(e, ast.Var):
            return ()  # the message shows its value already
        shown = []
        for name in dict.fromkeys(_free_names(e)):
            v = frame.scope.get(name)
            if v is None and name not in frame.scope:
                v = self.ir.dims.get(name)
            if hyper.is_scalar(v):
                shown.append(f"`{name}` = {_scalar_text(v)}")
        return (f"it uses {', '.join(shown)}",) if shown else ()

    @staticmethod
    def _def_note(frame: _Frame, e: ast.Expr) -> tuple[str, ...]:
        """For a bare name: where it got its value."""
        if isinstance(e, ast.Var) and e.name in frame.defined_at:
            return (f"`{e.name}` is defined at {frame.defined_at[e.name]}",)
        return ()

    def _eval(self, frame: _Frame, e: ast.Expr) -> Any:
        match e:
            case ast.IntLit(value=v) | ast.FloatLit(value=v):
                return hyper.in_range(v, e.span, "number")
            case ast.BoolLit(value=v):
                return v
            case ast.StrLit():
                raise SignatureError("a string can only be an op's keyword argument", e.span)
            case ast.Var(name=name):
                return self._lookup(frame, name, e.span)
            case ast.Neg(operand=o):
                v = self._eval(frame, o)
                if hyper.is_scalar(v):
                    return self._scalar(e)
                return self._apply(get_op("neg"), [v], {}, {}, e.span)
            case ast.BinOp(op=op, left=a, right=b):
                return self._binop(frame, e, op, self._eval(frame, a), self._eval(frame, b))
            case ast.Call():
                return self._call(frame, e)
            case ast.Rename(value=value, dims=dims):
                v = self._eval(frame, value)
                if not isinstance(v, Tensor):
                    raise SignatureError("`as` renames the dims of a tensor", value.span)
                names = tuple(d.text for d in dims.dims)
                return self._apply(get_op("rename"), [v], {"dims": names}, {"dims": dims.span},
                                   e.span)
            case ast.NameSeq() | ast.DimMap() | ast.Empty():
                raise SignatureError(
                    f"`{ast.unparse(e)}` names dims; it can only be an op's argument", e.span)
        raise SignatureError(f"cannot evaluate `{ast.unparse(e)}`", e.span)

    _BINOPS: ClassVar[dict[str, str]] = {"+": "add", "-": "sub", "*": "mul", "/": "div"}

    def _binop(self, frame: _Frame, e: ast.BinOp, op: str, a: Any, b: Any) -> Any:
        for v, side in ((a, e.left), (b, e.right)):
            if isinstance(v, (Layer, Dims)):
                raise SignatureError(f"`{ast.unparse(side)}` is not a value", side.span)
        if hyper.is_scalar(a) and hyper.is_scalar(b):
            return hyper.binary(op, a, b, e.span, right=e.right)
        if op not in self._BINOPS:
            raise SignatureError(f"`{op}` works on numbers only, not tensors", e.span)
        a, b = (self._as_tensor(v, s.span) for v, s in ((a, e.left), (b, e.right)))
        return self._apply(get_op(self._BINOPS[op]), [a, b], {}, {}, e.span,
                           tensor_spans=[e.left.span, e.right.span])

    def _as_tensor(self, v: Any, span: Span) -> Tensor:
        if isinstance(v, Tensor):
            return v
        if isinstance(v, bool):
            raise SignatureError("expected a tensor or a number, got a bool", span)
        if not hyper.is_scalar(v):
            raise SignatureError("expected a tensor or a number", span)
        return self._apply(get_op("scalar"), [], {"value": float(v)}, {}, span)

    def _call(self, frame: _Frame, call: ast.Call) -> Any:
        name = call.func.name
        local = frame.scope.get(name)
        if local is _POISON:
            raise _Poisoned
        if isinstance(local, _Unbound):
            self._lookup(frame, name, call.func.span)
        if isinstance(local, Layer):
            return self._apply_layer(frame, local, call)
        if local is not None:
            raise SignatureError(f"`{name}` is a value, not an op, block or layer", call.func.span)
        if name in self.blocks:
            return self._call_block(frame, self.blocks[name], call)
        if name in hyper.FUNCTIONS:
            args = [None if isinstance(a, (ast.NameSeq, ast.DimMap)) else self._eval(frame, a)
                    for a in call.args]
            if not call.kwargs and args and all(hyper.is_scalar(a) for a in args):
                return hyper.call(name, args, call.span)
            if not has_op(name):
                raise SignatureError(f"`{name}` takes numbers", call.span)
            return self._op_call(frame, get_op(name), call, evaluated=args)
        if has_op(name) and name in user_ops():
            return self._op_call(frame, get_op(name), call)
        raise NameError_(f"unknown op or block `{name}`", call.func.span,
                         hints=self._unknown_call_hints(name))

    def _unknown_call_hints(self, name: str) -> tuple[str, ...]:
        """A close match among ops, blocks and functions; else what each kind offers."""
        calling = {f.block.name.text for f in self.stack}
        blocks = [b for b in self.blocks if b not in calling]
        close = did_you_mean(name, [*user_ops(), *blocks, *hyper.FUNCTIONS])
        if close and close[0].startswith("did you mean"):
            return close
        hints = did_you_mean(name, user_ops(), "op")
        if blocks:
            hints += did_you_mean(name, blocks, "block")
        return hints

    # ---- op calls ----
    def _bind_args(self, frame: _Frame, op: Op, call: ast.Call, partial: bool,
                   evaluated: list[Any] | None = None):
        """Match a call's arguments to an op's signature; returns tensors, attrs and spans."""
        sig = op.signature
        tensors: list[Tensor] = []
        raw: dict[str, ast.Expr] = {}
        spans: dict[str, Span] = {}
        positional = list(call.args)
        if call.kwargs:
            # a positional argument after a keyword one: usually `over=H, W`
            first_kw = (call.kwargs[0].span.line, call.kwargs[0].span.col)
            late = [a for a in positional if (a.span.line, a.span.col) > first_kw]
            if late:
                raise SignatureError(
                    "positional argument after a keyword argument", late[0].span,
                    hints=(_late_positional_hint(sig, call, late[0]),),
                )
        n_required = len(sig.tensors) - len(sig.optional)
        n_tensors = 0 if partial else (len(positional) if sig.variadic else n_required)
        if sig.variadic and not partial:
            n_tensors = sum(1 for a in positional
                            if not isinstance(a, (ast.DimMap, ast.NameSeq, ast.Empty)))
        for i, a in enumerate(positional[:n_tensors]):
            v = evaluated[i] if evaluated is not None else self._eval(frame, a)
            # a number stands for a constant tensor only where it broadcasts: elementwise ops
            promote = hyper.is_scalar(v) and "elementwise" in op.traits
            tensors.append(self._as_tensor(v, a.span) if promote
                           else self._need_tensor(v, a, op))
        for name, a in zip(sig.tensors, positional[:n_tensors], strict=False):
            spans[name] = a.span
        rest = positional[n_tensors:]
        # tensors may also come by keyword: `expand(c, like=x)`
        by_keyword = set()
        if not partial and not sig.variadic:
            given = {kw.name.text: kw for kw in call.kwargs}
            for name in sig.tensors[len(tensors):]:
                kw = given.get(name)
                if kw is None:
                    break
                v = self._eval(frame, kw.value)
                promote = hyper.is_scalar(v) and "elementwise" in op.traits
                tensors.append(self._as_tensor(v, kw.value.span) if promote
                               else self._need_tensor(v, kw.value, op))
                by_keyword.add(name)
                spans[name] = kw.span
        if len(tensors) < (1 if sig.variadic else n_required) and not partial:
            missing = sig.tensors[len(tensors)] if not sig.variadic else sig.tensors[0]
            raise SignatureError(
                f"`{op.name}` needs a tensor argument `{missing}`", call.span,
                hints=(f"signature: {_signature_text(op)}",))
        if len(rest) > len(sig.positional):
            extra = rest[len(sig.positional)]
            n_max = len(sig.tensors) + len(sig.positional)
            raise SignatureError(
                f"`{op.name}` takes {plural(n_max, 'positional argument')}, got "
                f"{len(positional)}", extra.span,
                hints=(f"signature: {_signature_text(op)}",))
        for name, a in zip(sig.positional, rest, strict=False):
            raw[name], spans[name] = a, a.span
        for kw in call.kwargs:
            key = kw.name.text
            if key in by_keyword:
                continue
            if key in sig.tensors and not partial:
                raise SignatureError(f"argument `{key}` given twice", kw.span)
            if key not in sig.attrs:
                raise NameError_(
                    f"`{op.name}` has no argument `{key}`", kw.name.span,
                    hints=(*did_you_mean(key, sig.attrs, "argument"),
                           f"signature: {_signature_text(op)}"))
            if key in raw:
                raise SignatureError(f"argument `{key}` given twice", kw.span)
            raw[key], spans[key] = kw.value, kw.span
        attrs: dict[str, Any] = {}
        for key, kind in sig.attrs.items():
            if key in raw:
                attrs[key] = self._convert(frame, op, key, kind, raw[key])
            elif kind.required:
                raise SignatureError(
                    f"`{op.name}` needs the argument `{key}`", call.span,
                    hints=(f"signature: {_signature_text(op)}",))
            else:
                attrs[key] = kind.default
        return tensors, attrs, spans

    def _need_tensor(self, v: Any, a: ast.Expr, op: Op) -> Tensor:
        if not isinstance(v, Tensor):
            got = (f", not the {hyper.type_name(v)} {_scalar_text(v)}" if hyper.is_scalar(v)
                   else "")
            raise SignatureError(f"`{op.name}` expects a tensor here{got}", a.span,
                                 hints=(f"signature: {_signature_text(op)}",))
        return v

    def _convert(self, frame: _Frame, op: Op, key: str, kind: Arg, e: ast.Expr) -> Any:
        """Turn one argument's syntax into the value its kind expects."""
        if isinstance(kind, DimsArg):
            return self._dim_names(frame, e, f"`{key}` takes dim names, e.g. `{key}=H W`")
        if isinstance(kind, DimArg):
            names = self._dim_names(frame, e, f"`{key}` takes one dim name")
            if len(names) != 1:
                raise SignatureError(f"`{key}` takes one dim name", e.span)
            return names[0]
        if isinstance(kind, MapArg):
            if not isinstance(e, ast.DimMap):
                raise SignatureError(
                    f"`{key}` is a dim map `In -> Out`", e.span,
                    hints=("e.g. `dense(z, C -> C // r)`",))
            dst = (self._dim_names(frame, e.dst, f"`{key}` makes new dims: name them")
                   if kind.new_dst else self._map_side(frame, e.dst, source=False))
            return Map(self._map_side(frame, e.src, source=True), dst)
        if isinstance(kind, ChoiceArg):
            return self._choice(op, key, kind, e)
        if isinstance(e, (ast.NameSeq, ast.DimMap, ast.Empty)):
            raise SignatureError(f"`{key}` takes a value, not dims", e.span)
        if isinstance(kind, BoolArg):
            v = self._scalar(e)
            if not isinstance(v, bool):
                raise HyperparameterError(
                    f"`{key}` of `{op.name}` is true or false, got {v!r}", e.span,
                    hints=self._uses_hint(frame, e))
            return v
        if isinstance(kind, IntArg):
            v = self._scalar(e)
            if not isinstance(v, int) or isinstance(v, bool):
                raise HyperparameterError(
                    f"`{key}` of `{op.name}` must be an integer, got {hyper.type_name(v)} {v!r}",
                    e.span, hints=("wrap it in `int(...)`", *self._uses_hint(frame, e)))
            if kind.min is not None and v < kind.min:
                raise HyperparameterError(
                    f"`{key}` of `{op.name}` must be at least {kind.min}, got {v}", e.span,
                    hints=self._uses_hint(frame, e), notes=self._def_note(frame, e))
            if kind.max is not None and v > kind.max:
                raise HyperparameterError(
                    f"`{key}` of `{op.name}` must be at most {kind.max}, got {v}", e.span,
                    hints=self._uses_hint(frame, e), notes=self._def_note(frame, e))
            return v
        if isinstance(kind, FloatArg):
            v = self._scalar(e)
            if isinstance(v, bool):
                raise HyperparameterError(f"`{key}` of `{op.name}` must be a number, got "
                                          f"{_scalar_text(v)}", e.span)
            v = float(v)
            too_low = kind.min is not None and (v <= kind.min if kind.min_exclusive
                                                else v < kind.min)
            if too_low or (kind.max is not None and v > kind.max):
                lo = "" if kind.min is None else f"{'>' if kind.min_exclusive else '>='} {kind.min}"
                hi = "" if kind.max is None else f"<= {kind.max}"
                raise HyperparameterError(
                    f"`{key}` of `{op.name}` must be {' and '.join(x for x in (lo, hi) if x)}, "
                    f"got {v}", e.span, hints=self._uses_hint(frame, e),
                    notes=self._def_note(frame, e))
            return v
        raise SignatureError(f"`{key}` cannot be set in a spec", e.span)

    @staticmethod
    def _choice(op: Op, key: str, kind: ChoiceArg, e: ast.Expr) -> str:
        """A string literal naming one of `kind.choices`."""
        words = " or ".join(f'"{c}"' for c in kind.choices)
        if not isinstance(e, ast.StrLit):
            word = e.name if isinstance(e, ast.Var) else kind.choices[0]
            raise SignatureError(f"`{key}` of `{op.name}` is a string, one of {words}", e.span,
                                 hints=(f'write it in quotes: `{key}="{word}"`',))
        if e.value not in kind.choices:
            raise HyperparameterError(
                f'`{key}` of `{op.name}` is one of {words}, got "{e.value}"', e.span,
                hints=did_you_mean(e.value, kind.choices, "choice"))
        return e.value

    def _dim_names(self, frame: _Frame, e: ast.Expr, hint: str) -> tuple[str, ...]:
        match e:
            case ast.NameSeq(names=names):
                out = []
                for n in names:
                    out.extend(self._dim_name(frame, n.text, n.span))
                return tuple(out)
            case ast.Var(name=name):
                return self._dim_name(frame, name, e.span)
            case ast.Empty():
                return ()
        raise SignatureError(f"expected dim names, got `{ast.unparse(e)}`", e.span, hints=(hint,))

    def _dim_name(self, frame: _Frame, name: str, span: Span) -> tuple[str, ...]:
        v = frame.scope.get(name)
        if isinstance(v, Dims):
            return v.names
        if v is not None and v is not _POISON and not isinstance(v, _Unbound):
            raise SignatureError(f"`{name}` is a value, not a dim", span)
        return (name,)

    def _map_side(self, frame: _Frame, e: ast.Expr, source: bool) -> tuple[str, ...]:
        if isinstance(e, (ast.NameSeq, ast.Empty)):
            return self._dim_names(frame, e, "")
        if isinstance(e, ast.Var):
            v = frame.scope.get(e.name)
            if isinstance(v, Dims):
                return v.names
            if e.name in self.ir.dims or source:
                return (e.name,)
            if v is None:
                raise NameError_(
                    f"unknown dim `{e.name}`", e.span,
                    hints=(f"declare it first: `dim {e.name} = ...`",
                           *did_you_mean(e.name, self.ir.dims, "dim")))
        if source:
            name = ast.unparse(e)
            if name in self.ir.dims:
                return (name,)  # a computed dim made earlier, e.g. `C//r`
            raise NameError_(f"no dim `{name}` here", e.span,
                             hints=did_you_mean(name, self.ir.dims, "dim"))
        # a computed dim: named by its canonical text (`C//r`), sized by evaluating it
        size = self._scalar(e)
        if not isinstance(size, int) or isinstance(size, bool):
            raise HyperparameterError(
                f"dim size `{ast.unparse(e)}` must be an integer, got {size!r}", e.span,
                hints=("use `//` for integer division", *self._uses_hint(frame, e)))
        if size < 1:
            hints = self._uses_hint(frame, e)
            if hints and isinstance(e, ast.BinOp) and e.op == "//" and size == 0:
                a, b = ast.unparse(e.left), ast.unparse(e.right)
                hints = (f"with {hints[0].removeprefix('it uses ')}, `{a} // {b}` is 0; "
                         f"`{b}` must not be larger than `{a}`",)
            raise HyperparameterError(
                f"dim `{ast.unparse(e)}` has size {size}; a dim needs at least 1", e.span,
                hints=hints)
        name = ast.unparse(e)
        try:
            self.new_dim(name, size)
        except OpError as err:
            raise ShapeError(err.message, e.span) from None
        return (name,)

    def _op_call(self, frame: _Frame, op: Op, call: ast.Call,
                 evaluated: list[Any] | None = None) -> Tensor:
        tensors, attrs, spans = self._bind_args(frame, op, call, partial=False,
                                                evaluated=evaluated)
        tspans = [a.span for a in call.args[: len(tensors)]]
        return self._apply(op, tensors, attrs, spans, call.span, tensor_spans=tspans)

    def _apply(self, op: Op, tensors: list[Tensor], attrs: dict[str, Any],
               spans: dict[str, Span], span: Span, part: LayerPart | None = None,
               name: str | None = None, tensor_spans: list[Span] | None = None) -> Tensor:
        """Infer the result type, make (or reuse) parameters, and add the node."""
        frame = self.stack[-1]
        ins = [self.ir.node(t.nid).out for t in tensors]
        names = ([op.signature.tensors[0]] * len(ins) if op.signature.variadic
                 else op.signature.tensors)
        for i, (t, tname) in enumerate(zip(ins, names, strict=False)):
            if t.dtype != "float32" and tname not in op.int_inputs:
                where = tensor_spans[i] if tensor_spans and i < len(tensor_spans) else span
                raise ShapeError(
                    f"`{op.name}` takes float tensors, but `{tname}` is {t} (indices)", where,
                    hints=("indices select with `take(x, index, along=...)`",))
        try:
            out = op.infer(self, ins, attrs)
            specs = op.params(self, ins, attrs)
        except OpError as err:
            where = spans.get(err.arg, span) if err.arg else span
            notes = tuple(
                f"`{self.ir.node(t.nid).name}` {self.ir.node(t.nid).out} is defined at "
                f"{self.ir.node(t.nid).span}" for t in tensors
                if self.ir.node(t.nid).span and self.ir.node(t.nid).op != "scalar")
            raise _ERRORS[err.kind](err.message, where, hints=err.hints, notes=notes) from None
        pids = []
        for pname, spec in specs.items():
            if part is not None and pname in part.params:
                pid = part.params[pname]
                have = self.ir.node(pid).param
                if have.shape != spec.shape:
                    raise ShapeError(
                        f"shared layer applied to {ins[0]} needs `{pname}` of shape "
                        f"{spec.shape}, but its first application made {have.shape}", span)
            else:
                if self.loop_depth and (part is None or part.loop_depth >= self.loop_depth):
                    raise self._param_in_loop(f"`{op.name}` here", span)
                pid = self.ir.add(Node("param", {}, TensorType(()), f"{name}.{pname}",
                                       stage=frame.stage, span=span, param=spec))
                self.created.append(pid)
                if part is not None:
                    part.params[pname] = pid
            pids.append(pid)
        node_attrs = dict(attrs)
        if part is not None:
            node_attrs["_layer"] = name
        if self.ir.graph.number_of_nodes() >= self.limits.nodes:
            raise ResourceError(
                f"the block grows to more than {self.limits.nodes} graph nodes here", span,
                hints=("nested `repeat`s and block calls multiply the graph",
                       "raise the limit with `--limit nodes=N` (attncc.limits) if intended"))
        nid = self.ir.add(
            Node(op.name, node_attrs, out, name or op.name, stage=frame.stage, span=span,
                 pnames=tuple(specs)),
            [t.nid for t in tensors] + pids,
        )
        self.created.append(nid)
        for d in out.real:
            self.witness.setdefault(d, nid)
        return Tensor(nid)

    # ---- layers ----
    def _layer(self, frame: _Frame, name: str, value: ast.Expr) -> Layer:
        parts: list[LayerPart] = []
        items = (value.args if isinstance(value, ast.Call) and value.func.name == "seq"
                 else (value,))
        if isinstance(value, ast.Call) and value.func.name == "seq" and value.kwargs:
            raise SignatureError("`seq` takes layers only", value.kwargs[0].span)
        for item in items:
            if isinstance(item, ast.Var) and isinstance(frame.scope.get(item.name), Layer):
                parts.extend(frame.scope[item.name].parts)
                continue
            if isinstance(item, ast.Call) and item.func.name == "seq":
                parts.extend(self._layer(frame, name, item).parts)  # nested seq: flattened
                continue
            call = ast.Call(item, (), (), item.span) if isinstance(item, ast.Var) else item
            if not isinstance(call, ast.Call) or call.func.name not in user_ops():
                raise self._not_a_layer_op(frame, call)
            op = get_op(call.func.name)
            _, attrs, spans = self._bind_args(frame, op, call, partial=True)
            parts.append(LayerPart(op, attrs, spans, call.span, loop_depth=self.loop_depth))
        if not parts:
            raise SignatureError("a layer needs at least one op", value.span)
        return Layer(name, parts, value.span)

    def _not_a_layer_op(self, frame: _Frame, item: ast.Expr) -> AttnccError:
        how = ("a layer is an op without its input, e.g. `dense(C -> C // r)`, or `seq(...)` "
               "of such ops")
        if not isinstance(item, ast.Call):
            return SignatureError(f"`{ast.unparse(item)}` is not an op", item.span, hints=(how,))
        name = item.func.name
        if name == "seq":
            return SignatureError("`seq` needs the layers it chains", item.span,
                                  hints=("e.g. `seq(dense(C -> C // r), relu)`",))
        if name in self.blocks:
            return SignatureError(f"`{name}` is a block; a layer is made of ops", item.func.span,
                                  hints=(how,))
        if name in frame.scope or name in hyper.FUNCTIONS:
            return SignatureError(f"`{name}` is not an op", item.func.span, hints=(how,))
        return NameError_(f"unknown op `{name}`", item.func.span,
                          hints=(*did_you_mean(name, [*user_ops(), "seq"], "op"), how))

    def _apply_layer(self, frame: _Frame, layer: Layer, call: ast.Call) -> Tensor:
        if call.kwargs or len(call.args) != 1:
            raise SignatureError(f"layer `{layer.name}` takes exactly one tensor", call.span)
        v = self._eval(frame, call.args[0])
        t = self._need_tensor(v, call.args[0], layer.parts[0].op)
        layer.applications += 1
        for i, part in enumerate(layer.parts):
            base = frame.prefix + layer.name + (f".{i}" if len(layer.parts) > 1 else "")
            try:
                # the caret goes to the application: that is where the input does not fit
                t = self._apply(part.op, [t], part.attrs, {}, call.span, part=part, name=base)
            except AttnccError as err:
                what = f"`{layer.name}`" if len(layer.parts) == 1 else \
                    f"part {i} (`{part.op.name}`) of `{layer.name}`"
                raise err.with_note(f"layer {what} is defined at {part.span}") from None
        return t

    # ---- sub-blocks ----
    def _call_block(self, frame: _Frame, block: ast.Block, call: ast.Call) -> Tensor:
        if any(f.block.name.text == block.name.text for f in self.stack):
            chain = " -> ".join([f.block.name.text for f in self.stack] + [block.name.text])
            raise CycleError(f"block `{block.name.text}` calls itself: {chain}", call.span,
                             hints=("blocks are inlined; recursion has no end",))
        if len(self.stack) >= self.limits.block_depth:
            chain = " -> ".join([f.block.name.text for f in self.stack] + [block.name.text])
            raise CycleError(f"blocks nested deeper than {self.limits.block_depth}: {chain}",
                             call.span, hints=("raise the limit with `--limit block_depth=N` "
                                               "(attncc.limits) if this is intended",))
        params = {p.name.text: p for p in block.params}
        given: dict[str, ast.Expr] = {}
        if len(call.args) > len(block.params):
            raise SignatureError(
                f"block `{block.name.text}` takes {len(block.params)} arguments, got "
                f"{len(call.args)}", call.args[len(block.params)].span)
        for p, a in zip(block.params, call.args, strict=False):
            given[p.name.text] = a
        for kw in call.kwargs:
            if kw.name.text not in params:
                raise NameError_(f"block `{block.name.text}` has no parameter `{kw.name.text}`",
                                 kw.name.span, hints=did_you_mean(kw.name.text, params))
            if kw.name.text in given:
                raise SignatureError(f"argument `{kw.name.text}` given twice", kw.span)
            given[kw.name.text] = kw.value
        target = frame.prefix + self._call_target(call)
        inner = _Frame(block, prefix=target + ".", stage=frame.stage)
        # arguments are evaluated in the caller's scope, bound in the callee's
        for p in block.params:
            a = given.get(p.name.text)
            tname = p.type.name if isinstance(p.type, ast.ScalarType) else None
            if isinstance(p.type, ast.TensorTypeAst) or (p.type is None and p.default is None):
                if a is None:
                    raise SignatureError(f"missing argument `{p.name.text}`", call.span)
                v = self._eval(frame, a)
                if not isinstance(v, Tensor):
                    raise SignatureError(f"`{p.name.text}` is a tensor", a.span)
                if isinstance(p.type, ast.TensorTypeAst):
                    want = tuple(d.text for d in p.type.dims)
                    have = self.ir.node(v.nid).out
                    if set(want) != set(have.dims):
                        raise ShapeError(
                            f"`{block.name.text}` expects `{p.name.text}` with dims "
                            f"[{', '.join(want)}], got {have}", a.span)
                self._define(inner, p.name, v)
            elif tname in _DIM_TYPES:
                if a is None:
                    raise SignatureError(f"missing argument `{p.name.text}`", call.span)
                names = self._dim_names(frame, a, "pass dim names, e.g. `pool=C`")
                if tname == "dim" and len(names) != 1:
                    raise SignatureError(f"`{p.name.text}` is one dim", a.span)
                self._define(inner, p.name, Dims(names))
            else:
                value = _MISSING if a is None else self._scalar(a)
                self.stack.append(inner)
                try:
                    self._bind_scalar_param(inner, p, value, top=False,
                                            at=None if a is None else a.span)
                finally:
                    self.stack.pop()
        self.stack.append(inner)
        saved = self.created, self._current_target
        try:
            outs = self._body(inner, collect=False)
        except CycleError:
            raise  # its message spells out the chain of calls already
        except AttnccError as err:
            raise err.with_note(f"in block `{block.name.text}`, called at {call.span}") from None
        finally:
            self.stack.pop()
            self.created, self._current_target = saved
        if outs is None:
            raise SignatureError(f"block `{block.name.text}` has no `return`", block.name.span)
        if len(outs) != 1:
            raise SignatureError(f"block `{block.name.text}` returns {len(outs)} tensors; "
                                 "a call takes one", call.span)
        return outs[0][1]

    def _call_target(self, call: ast.Call) -> str:
        # the sub-block's names are prefixed by the statement target being elaborated
        return self._current_target or call.func.name

    _current_target: str | None = None


class _Missing:
    pass


@dataclass(frozen=True)
class _Unbound:
    """A name of a `repeat` body with no value here: why, and where it is assigned."""

    message: str
    at: Span
    hints: tuple[str, ...] = ()


def _assigned(body: tuple[ast.Stmt, ...]):
    """The names statements assign (nested loops included), in source order."""
    for s in body:
        match s:
            case ast.Assign(target=t):
                yield t
            case ast.MultiAssign(targets=ts):
                yield from ts
            case ast.Repeat(body=inner):
                yield from _assigned(inner)


def _dims_hint(t: ast.TensorTypeAst) -> str:
    if not t.dims:
        return "a tensor is passed when the block is called, not set"
    d = t.dims[1 if len(t.dims) > 1 else 0].text
    shown = ", ".join(n.text for n in t.dims)
    return f"set the sizes of its dims [{shown}] instead, e.g. `--set {d}=64`"


def _free_names(e: ast.Expr):
    """The names an expression reads, in source order (function names excluded)."""
    match e:
        case ast.Var(name=n):
            yield n
        case ast.Neg(operand=o):
            yield from _free_names(o)
        case ast.BinOp(left=a, right=b):
            yield from _free_names(a)
            yield from _free_names(b)
        case ast.Call(args=args, kwargs=kws):
            for a in args:
                yield from _free_names(a)
            for k in kws:
                yield from _free_names(k.value)


def _scalar_text(v: Any) -> str:
    """A value as the spec would write it: `true`, `16`, `2.5`."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


_MISSING = _Missing()
_POISON = object()


def _late_positional_hint(sig: Any, call: ast.Call, late: ast.Expr) -> str:
    """`over=H, W` is the usual cause: suggest `over=H W` with the user's own names."""
    where = (late.span.line, late.span.col)
    before = [k for k in call.kwargs if (k.span.line, k.span.col) < where]
    kw = before[-1] if before else None
    if (kw is not None and isinstance(sig.attrs.get(kw.name.text), DimsArg)
            and isinstance(kw.value, (ast.Var, ast.NameSeq))
            and isinstance(late, (ast.Var, ast.NameSeq))):
        dims = f"{ast.unparse(kw.value)} {ast.unparse(late)}"
        return f"list dims side by side, without commas: `{kw.name.text}={dims}`"
    return "put positional arguments before keyword arguments"


def _signature_text(op: Op) -> str:
    sig = op.signature
    parts = [f"{sig.tensors[0]}..." if sig.variadic else t for t in sig.tensors]
    for k, kind in sig.attrs.items():
        if type(kind) is Arg:
            continue
        shown = k if kind.required else f"{k}={_default_text(kind.default)}"
        if isinstance(kind, ChoiceArg):
            shown += "".join(f'|"{c}"' for c in kind.choices if c != kind.default)
        parts.append(shown)
    return f"{op.name}({', '.join(parts)})"


def _default_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Map):
        return str(v)
    if isinstance(v, str):
        return f'"{v}"'
    return "none" if v is None else str(v)


# ---- files, imports and the entry block ----
def elaborate(text: str, path: str = "<string>", *, block: str | None = None,
              hyper_values: Mapping[str, Any] | None = None,
              example: Mapping[str, int] | None = None,
              library: Path | None = None, max_repeat: int | None = None,
              limits: Limits | None = None) -> IR:
    """Build the IR of one block of a spec with its hyperparameters bound.

    `max_repeat` caps the count of each `repeat` loop (default: the `repeat` limit); `limits`
    (default: those in force,
    see attncc.limits) bound the work and the sizes, checked before anything is allocated.
    """
    sources: dict[str, str] = {}
    limits = limits or current_limits()
    try:
        blocks = load_module(text, path, library, sources, max_depth=limits.use_depth)
        own = [b.name.text for b in parse(text, path).blocks]
        entry = entry_block(blocks, path, block, own)
        ir = IR(block=entry.name.text, path=path, sources=sources)
        el = Elaborator(blocks, ir, example or {}, max_repeat, limits)
        el.run_top(entry, dict(hyper_values or {}))
        if el.diags:
            raise el.collected()
        enforce(ir, example or {}, limits, el.aliases)
    except AttnccError as err:
        raise err.with_sources(sources) from None
    return ir
