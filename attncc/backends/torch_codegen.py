"""IR -> Python source of a torch.nn.Module: named parameters, straight-line forward.

The generated file imports only `math` and `torch`, so it runs without attncc. Each forward
statement carries a comment pointing at the spec line it came from, and `PythonCode.line_map`
maps generated lines back to IR nodes.
"""

from __future__ import annotations

import builtins
import functools
import keyword
import math
import re
from dataclasses import dataclass, field

from attncc.backends import lowering
from attncc.diagnostics import AttnccError, Span
from attncc.ir import IR
from attncc.ops.base import ParamSpec

# `return_attention` is forward's own argument: an input or a tensor of that name would shadow it
_RESERVED = set(keyword.kwlist) | set(dir(builtins)) | {"self", "torch", "F", "math",
                                                        "return_attention"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Namespace:
    """Turns spec names into legal, unique Python identifiers (fx's _Namespace habit)."""

    def __init__(self) -> None:
        self.used: set[str] = set(_RESERVED)

    def create(self, name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "t"
        if base[0].isdigit():
            base = "t_" + base
        candidate, i = base, 1
        while candidate in self.used:
            candidate = f"{base}_{i}"
            i += 1
        self.used.add(candidate)
        return candidate


@dataclass
class PythonCode:
    src: str
    class_name: str
    line_map: dict[int, Span] = field(default_factory=dict)


class TorchEmitter:
    """What op lowerings may ask of codegen: side-effect statements before their own, and
    module-level helper functions (defined once per generated file, so it stays standalone)."""

    def __init__(self, helpers: dict[str, str] | None = None) -> None:
        self.pending: list[str] = []
        self.helpers = {} if helpers is None else helpers

    def stmt(self, code: str) -> None:
        self.pending.append(code)

    def helper(self, name: str, source: str) -> str:
        """Define `source` (a `def name(...)`) at module level; returns the name to call."""
        if self.helpers.setdefault(name, source) != source:
            raise ValueError(f"two different helpers named {name}")
        return name


# torch.nn.Module attributes a parameter path segment must not shadow
_MODULE_ATTRS: set[str] | None = None


def _module_attrs() -> set[str]:
    global _MODULE_ATTRS
    if _MODULE_ATTRS is None:
        import torch

        # and what the generated class and build_module add to it
        _MODULE_ATTRS = (set(dir(torch.nn.Module())) | set(dir(torch.nn.ModuleDict()))
                         | {"reset_parameters", "attention_names", "attention_maps", "ir",
                            "spec", "source"})
    return _MODULE_ATTRS


class _Tree:
    """Containers for parameters: a path `mlp.0.weight` becomes self.mlp["0"].weight."""

    def __init__(self) -> None:
        self.children: dict[str, _Tree] = {}
        self.tensors: dict[str, ParamSpec] = {}
        self.span: Span | None = None  # where a parameter under this container was made

    def is_dict(self) -> bool:
        # a container whose keys are not identifiers (`0`) is a ModuleDict
        return any(not _IDENT.match(k) or keyword.iskeyword(k) for k in self.children)


def _access(tree: _Tree, path: list[str]) -> str:
    expr, node = "self", tree
    for seg in path:
        if node.is_dict() and node is not tree:
            expr += f'["{seg}"]'
        elif _IDENT.match(seg) and not keyword.iskeyword(seg):
            expr += f".{seg}"
        else:  # a layer named like a Python keyword (`class`): the module itself has no []
            expr = f'getattr({expr}, "{seg}")'
        node = node.children.get(seg, node)
    return expr


def generate(ir: IR, class_name: str | None = None) -> PythonCode:
    """Generate the module source for an IR that has been through the pipeline."""
    ns = Namespace()
    cls = ns.create(class_name or ir.block)
    tree = _Tree()
    param_nodes = ir.params()
    for n in param_nodes:
        nd = ir.node(n)
        *parents, leaf = nd.name.split(".")
        node = tree
        for seg in parents:
            node = node.children.setdefault(seg, _Tree())
            node.span = node.span or nd.span
        _check_segment(leaf, nd.span, parameter=True)
        node.tensors[leaf] = nd.param

    init: list[str] = []

    # ModuleDict children must be added by key, so build parents before children
    def build_dicts(node: _Tree, path: list[str]) -> None:
        for key, child in node.children.items():
            _check_segment(key, child.span, parameter=False)
            container = "torch.nn.ModuleDict()" if child.is_dict() else "torch.nn.Module()"
            target = _access(tree, [*path, key])
            if target.startswith("getattr("):
                init.append(f'{_access(tree, path)}.add_module("{key}", {container})')
            else:
                init.append(f"{target} = {container}")
            build_dicts(child, [*path, key])
        for leaf, spec in node.tensors.items():
            owner = _access(tree, path)
            dtype = "torch.int64" if spec.dtype == "int64" else "torch.float32"
            empty = f"torch.zeros({_shape(spec.shape)}, dtype={dtype})"
            if spec.buffer:
                init.append(f'{owner}.register_buffer("{leaf}", {empty})')
            elif keyword.iskeyword(leaf):  # `param class: [C]`: no `.class` in Python
                init.append(f'{owner}.register_parameter("{leaf}", torch.nn.Parameter({empty}))')
            else:
                init.append(f"{owner}.{leaf} = torch.nn.Parameter({empty})")

    build_dicts(tree, [])

    refs = {}
    for n in param_nodes:
        *parents, leaf = ir.node(n).name.split(".")
        owner = _access(tree, parents)
        refs[n] = f'getattr({owner}, "{leaf}")' if keyword.iskeyword(leaf) else f"{owner}.{leaf}"
    reset: list[str] = []
    for n in param_nodes:
        reset.append(_init_stmt(refs[n], ir.node(n).param))

    args = [ns.create(ir.node(n).name) for n in ir.inputs]
    env: dict[int, str] = dict(zip(ir.inputs, args, strict=True))
    env.update(refs)
    body: list[tuple[str, Span | None]] = []
    lazy: list[tuple[str, Span | None]] = []  # attention-only: run under `if return_attention`
    deferred = attention_only(ir)
    returned = {v for _, v in ir.outputs} | set(ir.attention.values())
    order = [n for n in ir.topo() if ir.node(n).op not in ("input", "param")]
    overwrite = {n: ir.node(n).attrs["_overwrite"] for n in order
                 if "_overwrite" in ir.node(n).attrs}  # set by passes/inplace.py
    helpers: dict[str, str] = {}
    for n in order:
        nd = ir.node(n)
        low = lowering(ir, n)
        e = TorchEmitter(helpers)
        expr = low.op.torch(e, *(env[i] for i in low.tensors),
                            **{k: env[v] for k, v in low.params.items()}, **low.resolved)
        if n in overwrite:
            # inference only: the same value written over a dead temporary (passes/inplace.py)
            operands = [env[i] for i in low.tensors]
            operands.insert(0, operands.pop(overwrite[n]))  # a commutative op's 2nd goes first
            fast = low.op.torch_inplace(e, *operands, **low.resolved)
            if fast is not None:
                expr = f"{fast} if _inplace else {expr}"
        into = lazy if n in deferred else body
        for s in e.pending:
            into.append((s, nd.span))
        if "constant" in low.op.traits and n in returned:
            # a literal inlines into expressions, but forward must return a tensor
            expr = f"torch.tensor({expr}, dtype=torch.float32)"
        elif _IDENT.match(expr) or "constant" in low.op.traits:
            env[n] = expr  # an alias or a literal: no statement of its own
            continue
        var = ns.create(nd.name)
        env[n] = var
        into.append((f"{var} = {expr}", nd.span))

    outs = [env[v] for _, v in ir.outputs]
    ret = outs[0] if len(outs) == 1 else "(" + ", ".join(outs) + ")"
    att = ", ".join(f'"{name}": {env[v]}' for name, v in ir.attention.items())

    lines: list[str] = []
    line_map: dict[int, Span] = {}
    hyper = ", ".join(f"{k}={v}" for k, v in ir.hyper.items())
    static = ", ".join(f"{d}={s}" for d, s in ir.dims.items() if s is not None)
    lines += [
        f"# Generated by attncc from {display_path(ir.path)} (block {ir.block}).",
        f"# Hyperparameters: {hyper or 'none'}; fixed dims: {static or 'none'}.",
        "# Parameter names follow the spec; load weights with load_state_dict.",
        "import math",
        "",
        "import torch",
        "import torch.nn.functional as F",
        "",
        "",
        *(line for src in helpers.values() for line in [*src.strip("\n").split("\n"), "", ""]),
        f"class {cls}(torch.nn.Module):",
        f'    """{ir.block} attention block.',
        "",
        "    Inputs: " + ", ".join(f"{a}: {ir.node(n).out}" for a, n in
                                   zip(args, ir.inputs, strict=True)) + ".",
        "    Attention maps: " + (", ".join(ir.attention) or "none") + ".",
        '    """',
        "",
        f"    attention_names = {tuple(ir.attention)!r}",
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *(f"        {s}" for s in init),
        "        self.reset_parameters()",
        "",
        "    def reset_parameters(self) -> None:",
        "        with torch.no_grad():",
        *(f"            {s}" for s in reset or ["pass"]),
        "",
        f"    def forward({', '.join(['self', *args, 'return_attention: bool = False'])}):",
        *_input_checks(ir, args),
    ]
    if overwrite:  # temporaries are overwritten only where autograd records nothing (and not
        # into a jit trace, which may later run with autograd)
        lines.append("        _inplace = not (torch.is_grad_enabled() or torch.jit.is_tracing())")
    for stmt, span in body:
        first, *more = stmt.split("\n")
        comment = f"  # {display_path(span.path)}:{span.line}" if span else ""
        lines.append(f"        {first}{comment}")
        line_map[len(lines)] = span
        lines += [f"        {m}" for m in more]
    lines.append("        if return_attention:")
    for stmt, span in lazy:
        first, *more = stmt.split("\n")
        comment = f"  # {display_path(span.path)}:{span.line}" if span else ""
        lines.append(f"            {first}{comment}")
        line_map[len(lines)] = span
        lines += [f"            {m}" for m in more]
    lines += [
        f"            return {ret}, {{{att}}}",
        f"        return {ret}",
        "",
        f"    def attention_maps({', '.join(['self', *args])}) -> dict[str, torch.Tensor]:",
        '        """The attention maps by name (the tensors the spec marks `attention`)."""',
        f"        return self.forward({''.join(f'{a}, ' for a in args)}return_attention=True)[1]",
        "",
    ]
    return PythonCode("\n".join(lines), cls, line_map)


def _input_checks(ir: IR, args: list[str]) -> list[str]:
    """Rank and fixed-size checks on the inputs, first thing in forward.

    A dim the block fixes (C, or FcaNet's H and W) would otherwise surface as a broadcasting
    error deep inside the block; this names the input, the dim and both sizes.
    """
    lines = []
    for arg, n in zip(args, ir.inputs, strict=True):
        dims = ir.node(n).out.dims
        fixed = [(i, ir.dims[d]) for i, d in enumerate(dims) if ir.dims.get(d) is not None]
        want = ", ".join(f"{d}={ir.dims[d]}" if ir.dims.get(d) is not None else d
                         for d in dims)
        cond = " or ".join([f"{arg}.dim() != {len(dims)}",
                            *(f"{arg}.shape[{i}] != {size}" for i, size in fixed)])
        # skipped while jit-tracing: a trace records no Python branch (and would warn)
        lines += [f"        if not torch.jit.is_tracing() and ({cond}):",
                  f'            raise ValueError(f"input `{arg}` must be [{want}], '
                  f'got {{list({arg}.shape)}}")']
    return lines


def attention_only(ir: IR) -> set[int]:
    """Pure nodes only the attention maps need (none of the outputs, no impure node): the
    generated forward computes them only when the maps are asked for. After the `attend`
    fusion the softmax weights of a marked map are such nodes."""
    import networkx as nx

    from attncc.ops import get_op

    keep: set[int] = set()
    roots = [v for _, v in ir.outputs] + [
        n for n in ir.graph.nodes if ir.node(n).op not in ("input", "param")
        and "pure" not in get_op(ir.node(n).op).traits]
    for r in roots:
        keep.add(r)
        keep |= nx.ancestors(ir.graph, r)
    return {n for n in ir.graph.nodes if n not in keep
            and ir.node(n).op not in ("input", "param")}


def display_path(path: str) -> str:
    """A spec path as generated code shows it: `specs/se.attn` for a bundled spec, else
    relative to the working folder when inside it; never the build machine's absolute path
    of the library. It goes into comments, so characters that could end one (a newline in a
    file name) are escaped."""
    from pathlib import Path

    return _display_path(path, str(Path.cwd()))


@functools.lru_cache(maxsize=512)  # asked once per generated statement
def _display_path(path: str, cwd: str) -> str:
    from pathlib import Path

    from attncc.library import library_dir

    p = Path(path)
    if not p.is_absolute():
        return _printable(path)
    for root, shown in ((library_dir(), Path("specs")), (Path(cwd), Path())):
        try:
            return _printable(str(shown / p.resolve().relative_to(root.resolve())))
        except ValueError:
            continue
    return _printable(path)


def _printable(text: str) -> str:
    """`text` with every non-printable character (newlines included) as a Python escape."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _check_segment(seg: str, span: Span | None, parameter: bool) -> None:
    if parameter and not _IDENT.match(seg):
        raise AttnccError(f"`{seg}` cannot name a parameter", span)
    if seg in _module_attrs():
        raise AttnccError(
            f"`{seg}` cannot be used as a name: torch.nn.Module already has an attribute "
            f"`{seg}`", span, hints=("rename the variable or layer",))


def _shape(shape: tuple[int, ...]) -> str:
    return repr(tuple(shape))


def _init_stmt(ref: str, spec: ParamSpec) -> str:
    if spec.init == "kaiming_uniform":
        return f"torch.nn.init.kaiming_uniform_({ref}, a=math.sqrt(5))"
    if spec.init == "uniform_fan_in":
        bound = 1 / math.sqrt(spec.fan_in) if spec.fan_in > 0 else 0.0
        return f"torch.nn.init.uniform_({ref}, -{bound!r}, {bound!r})"
    if spec.init == "ones":
        return f"{ref}.fill_(1)"
    if spec.init == "constant":
        return f"{ref}.fill_({spec.init_args[0]!r})"
    if spec.init == "normal":
        std = spec.init_args[0] if spec.init_args else 0.01
        return f"torch.nn.init.normal_({ref}, std={std!r})"
    if spec.init == "uniform":
        low, high = spec.init_args
        return f"torch.nn.init.uniform_({ref}, {low!r}, {high!r})"
    if spec.init == "values":  # a constant given in full, row-major (ops/unfold.py rel_grid)
        return (f"{ref}.copy_(torch.tensor({tuple(spec.init_args)!r}, "
                f"dtype=torch.float32).reshape({_shape(spec.shape)}))")
    if spec.init == "source":  # a compile-time constant; the op wrote its expression
        return f"{ref}.copy_({spec.source})"
    if spec.init != "zeros":
        raise ValueError(f"no initialiser `{spec.init}`")
    return f"{ref}.zero_()"
