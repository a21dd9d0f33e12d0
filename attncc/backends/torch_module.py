"""Builds a live nn.Module from generated source, and writes standalone .py files."""

from __future__ import annotations

import hashlib
import linecache
import sys
import types
from typing import Any

from attncc.backends.torch_codegen import PythonCode, generate
from attncc.ir import IR


def module_class(ir: IR) -> tuple[type, PythonCode]:
    """Execute the generated source in a fresh namespace and return the module class."""
    code = generate(ir)
    digest = hashlib.sha1(code.src.encode()).hexdigest()[:12]
    filename = f"<attncc:{ir.block}:{digest}>"
    # registered in linecache so tracebacks, inspect.getsource and TorchScript see the source
    linecache.cache[filename] = (len(code.src), None, code.src.splitlines(True), filename)
    known = sys.modules.get(f"attncc_generated_{ir.block}_{digest}")
    if known is not None and code.class_name in known.__dict__:
        # the same source compiled before: one class, so every instance pickles by reference
        return known.__dict__[code.class_name], code
    mod = types.ModuleType(f"attncc_generated_{ir.block}_{digest}")
    mod.__file__ = filename
    # importable by name: torch.compile (dynamo) re-imports the module of the globals the
    # forward reads (torch, F, math), and pickling by reference needs it too
    sys.modules[mod.__name__] = mod
    exec(compile(code.src, filename, "exec"), mod.__dict__)  # our own generated code
    cls = mod.__dict__[code.class_name]
    return cls, code


def build_module(ir: IR, spec_text: str | None = None, backend: str = "torch") -> Any:
    """Instantiate the compiled module, with `.ir`, `.spec` and `.source` attached.

    The live class (fresh per call) also gets a `repr` that summarises the block from its IR;
    the generated source itself stays plain torch. `backend="auto"` makes its inference
    forward pick PyTorch or onnxruntime per input shape (attncc/backends/auto.py).
    """
    from attncc.backends import auto

    if backend not in auto.BACKENDS:
        from attncc.diagnostics import AttnccError, did_you_mean

        raise AttnccError(f"unknown backend `{backend}`",
                          hints=did_you_mean(backend, auto.BACKENDS, "backend"))
    cls, code = module_class(ir)
    if backend == "auto":
        cls = auto.make_auto(cls)
    cls.__repr__ = compiled_repr
    m = cls()
    if backend == "auto":
        auto.init_auto(m)
    m.ir = ir
    m.spec = spec_text if spec_text is not None else ir.sources.get(ir.path, "")
    m.source = code.src
    return m


def _count(n: int) -> str:
    return f"{n:,}"


def compiled_repr(module: Any) -> str:
    """A compiled block at a glance: where it came from, its inputs, one line per stage with
    its ops (in order, repeats counted) and parameter count, the attention maps and totals.

    Parameter counts are read off the module's live tensors, so they stay right after
    `load_state_dict` or surgery on the module.
    """
    from attncc.backends.torch_codegen import display_path
    from attncc.ops import get_op

    ir: IR = module.ir
    numel = {k: v.numel() for k, v in module.named_parameters()}
    stages: dict[str, tuple[dict[str, int], list[int]]] = {}
    for n in ir.topo():
        nd = ir.node(n)
        if nd.op == "input":
            continue
        ops, params = stages.setdefault(nd.stage or "other", ({}, [0]))
        if nd.op == "param":
            params[0] += numel.get(nd.name, 0)
        elif "internal" not in get_op(nd.op).traits:
            ops[nd.op] = ops.get(nd.op, 0) + 1
    hyper = ", ".join(f"{k}={v}" for k, v in ir.hyper.items())
    seen = dict.fromkeys(d for i in ir.inputs for d in ir.node(i).out.dims)
    dims = ", ".join(f"{d}={ir.dims[d]}" for d in seen if ir.dims.get(d) is not None)
    preset = f"preset {ir.preset}; " if ir.preset else ""
    lines = [f"{type(module).__name__}(  # attncc block `{ir.block}` from "
             f"{display_path(ir.path)}"]
    lines.append(f"  hyperparameters: {preset}{hyper or 'none'}; fixed dims: {dims or 'none'}")
    lines.append("  inputs: " + ", ".join(f"{ir.node(i).name}: {ir.node(i).out}"
                                           for i in ir.inputs))
    width = max((len(s) for s in stages), default=0)
    pwidth = max((len(_count(p[0])) for _, p in stages.values()), default=1)
    for stage, (ops, params) in stages.items():
        listed = ", ".join(op if k == 1 else f"{op} ×{k}" for op, k in ops.items()) or "-"
        lines.append(f"  {stage.ljust(width)}  {_count(params[0]).rjust(pwidth)} params  "
                     f"{listed}")
    if ir.attention:
        lines.append("  attention: " + ", ".join(f"{name} {ir.node(v).out}"
                                                 for name, v in ir.attention.items()))
    lines.append("  outputs: " + ", ".join(f"{name} {ir.node(v).out}"
                                           for name, v in ir.outputs))
    buffers = sum(b.numel() for b in module.buffers())
    lines.append(f"  total: {_count(sum(numel.values()))} parameters"
                 + (f", {_count(buffers)} buffer values" if buffers else ""))
    lines.append(")")
    return "\n".join(lines)
