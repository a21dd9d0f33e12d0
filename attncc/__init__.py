"""attncc: a declarative attention-graph compiler for computer vision.

Attention blocks are written as `.attn` specs over named dims and compiled to PyTorch
modules, ONNX graphs and a NumPy reference. `import attncc` is light: torch and
onnxruntime load on first use.

Example:
    >>> import attncc
    >>> block = attncc.load("se", C=64)          # a torch.nn.Module
    >>> ir = attncc.check("specs/cbam.attn", C=64)
"""

from __future__ import annotations

from typing import Any

from attncc.diagnostics import AttnccError

__version__ = "0.1.0"

__all__ = [
    "AttnccError",
    "__version__",
    "check",
    "compile",
    "count",
    "export_onnx",
    "insert",
    "load",
    "nets",
    "onnx_session",
]


def __getattr__(name: str) -> Any:
    # the API module pulls in numpy, networkx and lark; keep even those off `import attncc`
    if name in ("check", "compile", "export_onnx", "load", "onnx_session", "verify_onnx",
                "to_onnx", "state_arrays"):
        from attncc import api

        return getattr(api, name)
    if name in ("insert", "count"):
        import importlib

        # the functions live in attncc/insertion.py and attncc/counting.py: a submodule named
        # like the function would be bound over it on import
        module = {"insert": "insertion", "count": "counting"}[name]
        return getattr(importlib.import_module(f"attncc.{module}"), name)
    if name in ("nets", "limits"):
        import importlib

        return importlib.import_module(f"attncc.{name}")  # nets imports torch
    raise AttributeError(f"module 'attncc' has no attribute {name!r}")
