"""The public Python API behind `attncc.compile`, `load`, `check` and `export_onnx`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attncc.compiler import Source, compile_ir, read_source
from attncc.diagnostics import ExportError
from attncc.ir import IR


def check(spec: str | Path, *, block: str | None = None,
          shapes: Mapping[str, Sequence[int]] | None = None, preset: str | None = None,
          **hyper: Any) -> IR:
    """Parse, elaborate and check a spec; returns its IR or raises AttnccError.

    Example:
        >>> import attncc
        >>> attncc.check("se", C=64).parameter_count()
        580
    """
    return compile_ir(read_source(spec), hyper, _shapes(shapes), block=block, preset=preset)


def compile(spec: str | Path, *, block: str | None = None,
            shapes: Mapping[str, Sequence[int]] | None = None, seed: int | None = None,
            preset: str | None = None, **hyper: Any) -> Any:
    """Compile a spec (path, bundled name or text) to a torch.nn.Module.

    Example:
        >>> import attncc, torch
        >>> m = attncc.compile("specs/se.attn", C=64)
        >>> m(torch.randn(2, 64, 7, 5)).shape
        torch.Size([2, 64, 7, 5])
    """
    from attncc.backends.torch_module import build_module

    src = read_source(spec)
    ir = compile_ir(src, hyper, _shapes(shapes), block=block, preset=preset)
    if seed is not None:
        import torch

        torch.manual_seed(seed)
    return build_module(ir, src.text)


def load(name: str, **hyper: Any) -> Any:
    """Compile a bundled spec by name: `attncc.load("cbam", C=256, r=8)`."""
    return compile(name, **hyper)


def _shapes(shapes: Mapping[str, Sequence[int]] | None) -> dict[str, tuple[int, ...]] | None:
    return {k: tuple(int(s) for s in v) for k, v in shapes.items()} if shapes else None


def state_arrays(module: Any) -> dict[str, Any]:
    """The module's state_dict as NumPy arrays (the weights every backend shares)."""
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def to_onnx(module: Any, *, attention_outputs: bool = False) -> Any:
    """The ONNX ModelProto of a compiled module, with its current weights."""
    from attncc.backends.onnx_export import build_model

    ir: IR | None = getattr(module, "ir", None)
    if ir is None:
        raise ExportError("only modules made by attncc.compile can be exported from their IR")
    return build_model(ir, state_arrays(module), attention_outputs=attention_outputs)


def export_onnx(module_or_spec: Any, path: str | Path, *,
                shapes: Mapping[str, Sequence[int]] | None = None,
                attention_outputs: bool = False, **hyper: Any) -> Any:
    """Export a compiled module (or a spec, compiled first) to an ONNX file, atomically.

    Example:
        >>> import attncc
        >>> m = attncc.compile("cbam", C=64)
        >>> model = attncc.export_onnx(m, "/tmp/cbam.onnx")
    """
    from attncc.backends.onnx_export import write_atomic

    module = module_or_spec
    if isinstance(module_or_spec, (str, Path, Source)):
        module = compile(module_or_spec, shapes=shapes, **hyper)
    model = to_onnx(module, attention_outputs=attention_outputs)
    write_atomic(model.SerializeToString(), path)
    return model


def onnx_session(path_or_model: Any, device: str = "cpu", optimize: bool = True) -> Any:
    """An onnxruntime InferenceSession for an exported block."""
    from attncc.backends.ort import session

    return session(path_or_model, device=device, optimize=optimize)


def randomize_(module: Any, seed: int) -> Any:
    """Overwrite every floating parameter and buffer with random values, in place.

    Default inits hide bugs: a zero-initialised residual branch (GC, non-local) makes the block
    the identity, and a unit BN weight or variance makes a misplaced operand invisible. Every
    value here is nonzero (|v| in [0.2, 1.0], random sign), matrices are scaled by
    1/sqrt(fan_in) so activations stay O(1), and running variances are positive (in [0.5, 2]).
    Integer buffers are left alone.
    """
    import math

    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            if not t.is_floating_point():
                continue
            u = torch.rand(t.shape, generator=g, dtype=torch.float64)
            if name.rsplit(".", 1)[-1] == "running_var":
                values = 0.5 + 1.5 * u
            else:
                sign = torch.where(torch.rand(t.shape, generator=g) < 0.5, -1.0, 1.0)
                values = sign * (0.2 + 0.8 * u)
                if t.dim() >= 2:
                    values = values / math.sqrt(t[0].numel())
            t.copy_(values.to(t.dtype))
    return module


def verify_export(module: Any, inputs: Mapping[str, Any], seed: int = 0) -> float:
    """Largest onnxruntime-vs-torch difference at the module's weights and at random ones.

    The second run checks the graph itself: at an identity-like initialisation (a zero-init
    residual branch) a wrong graph could still match. Differences are measured against each
    output's scale, max(1, max |torch|): random weights can make an unnormalised block's
    outputs (GloRe's sums over H·W) reach hundreds, and float32 rounding grows with them.
    """
    import copy

    diff = verify_onnx(module, to_onnx(module), inputs)
    shaken = randomize_(copy.deepcopy(module), seed)
    return max(diff, verify_onnx(shaken, to_onnx(shaken), inputs))


def verify_onnx(module: Any, model: Any, inputs: Mapping[str, Any]) -> float:
    """Run the module (eval mode) and onnxruntime on the same inputs; the largest
    |difference| over each output's scale, max(1, max |torch|)."""
    import numpy as np
    import torch

    sess = onnx_session(model)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            ref = module(*(torch.as_tensor(v) for v in inputs.values()))
    finally:
        module.train(was_training)
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = sess.run(None, {k: np.asarray(v, dtype=np.float32) for k, v in inputs.items()})
    return max(float(np.max(np.abs(r.numpy() - g)) / max(1.0, float(np.max(np.abs(r.numpy())))))
               for r, g in zip(ref, got, strict=False))
