"""Builds a live nn.Module from generated source, and writes standalone .py files."""

from __future__ import annotations

import hashlib
import linecache
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
    mod = types.ModuleType(f"attncc_generated_{ir.block}_{digest}")
    mod.__file__ = filename
    exec(compile(code.src, filename, "exec"), mod.__dict__)  # our own generated code
    cls = mod.__dict__[code.class_name]
    return cls, code


def build_module(ir: IR, spec_text: str | None = None) -> Any:
    """Instantiate the compiled module, with `.ir`, `.spec` and `.source` attached."""
    cls, code = module_class(ir)
    m = cls()
    m.ir = ir
    m.spec = spec_text if spec_text is not None else ir.sources.get(ir.path, "")
    m.source = code.src
    return m
