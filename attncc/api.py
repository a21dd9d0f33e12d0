"""The public Python API behind `attncc.compile`, `load`, `check` and `export_onnx`.

Every function here is reachable as `attncc.NAME`; `import attncc` itself stays light, and
torch / onnxruntime load on first use. Errors in a spec or in the arguments raise
`attncc.AttnccError` (a subclass per kind) with a rendered diagnostic as its `str`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attncc.compiler import Source, compile_ir, read_source
from attncc.diagnostics import ExportError, HyperparameterError
from attncc.ir import IR


def check(spec: str | Path, *, block: str | None = None,
          shapes: Mapping[str, Sequence[int]] | None = None, preset: str | None = None,
          **hyper: Any) -> IR:
    """Parse, elaborate and check a spec without torch or onnxruntime.

    Args:
        spec: a path to an `.attn` file, the name of a bundled spec (`"se"`) or spec text.
        block: the block to check when the file has several.
        shapes: example input shapes by input name; they fix the dims parameters need.
        preset: a `preset` of the spec whose values apply under the explicit hyperparameters.
        **hyper: hyperparameters, e.g. `C=64, r=8`.

    Returns:
        The checked, optimised IR (`attncc.ir.IR`): its graph, dims, attention maps and
        `parameter_count()`.

    Raises:
        AttnccError: the spec or a hyperparameter is wrong; `str(err)` shows where and why.

    Example:
        >>> import attncc
        >>> attncc.check("se", C=64).parameter_count()
        580
        >>> attncc.check("se", C=64, r=0)
        Traceback (most recent call last):
        ...
        attncc.diagnostics.HyperparameterError: ...
    """
    return compile_ir(read_source(spec), hyper, _shapes(shapes), block=block, preset=preset)


def compile(spec: str | Path, *, block: str | None = None,
            shapes: Mapping[str, Sequence[int]] | None = None, example: Any = None,
            seed: int | None = None, preset: str | None = None, opt_level: int = 1,
            disable: Sequence[str] = (), backend: str = "torch", **hyper: Any) -> Any:
    """Compile a spec (path, bundled name or text) to a torch.nn.Module.

    Dims that the block's parameters need (`C` of `x: [N, C, H, W]`) are set by a
    hyperparameter, or read from an example input: `example` is a tensor (or anything with a
    `.shape`) for a one-input block, a tuple of them in the block's input order, or a mapping
    from input name to tensor. `shapes` does the same with bare shapes. A hyperparameter that
    contradicts the example raises HyperparameterError. Batch and spatial dims stay free
    unless the block fixes them.

    Args:
        spec: a path to an `.attn` file, the name of a bundled spec (`"cbam"`) or spec text.
        block: the block to compile when the file has several (default: the last one).
        shapes: example input shapes by input name, e.g. `{"x": (2, 64, 14, 14)}`.
        example: example inputs whose shapes set the block's dims (see above).
        seed: seeds torch before the parameters are initialised.
        preset: a `preset` of the spec whose values apply under the explicit hyperparameters.
        opt_level: 0 runs only the passes every backend needs (no fusion, no rewrites, no
            in-place writes); 1 (the default) runs the whole pipeline.
        disable: passes to leave out, e.g. `("attend", "inplace")` (`attncc.passes.PIPELINE`).
        backend: "torch" (the default): the generated PyTorch forward. "auto": the same
            module, whose inference calls (eval mode, autograd off, CPU float32) run in
            PyTorch or in onnxruntime on the exported graph, whichever measured faster at
            the first call with those input shapes (`module.auto_choices` tells).
        **hyper: hyperparameters, e.g. `C=64, r=8`.

    Returns:
        A torch.nn.Module with `.spec` (the source), `.ir`, `.source` (generated code),
        `attention_maps(...)` and `forward(..., return_attention=True)`.

    Example:
        >>> import attncc, torch
        >>> m = attncc.compile("specs/se.attn", C=64)
        >>> m(torch.randn(2, 64, 7, 5)).shape
        torch.Size([2, 64, 7, 5])
        >>> x = torch.randn(2, 32, 9, 9)
        >>> attncc.compile("cbam", example=x, r=4)(x).shape      # C=32 from x
        torch.Size([2, 32, 9, 9])
    """
    from attncc.backends.torch_module import build_module

    src = read_source(spec)
    if example is not None:
        if shapes is not None:
            raise HyperparameterError("give `shapes` or `example`, not both")
        shapes = example_input_shapes(src, example, block=block)
        _check_against(src, block, shapes, hyper)
    ir = compile_ir(src, hyper, _shapes(shapes), block=block, preset=preset,
                    opt_level=opt_level, disable=tuple(disable))
    if seed is not None:
        import torch

        torch.manual_seed(seed)
    return build_module(ir, src.text, backend=backend)


def load(name: str, *, example: Any = None, **hyper: Any) -> Any:
    """Compile a bundled spec by name.

    Args:
        name: a spec of the bundled library (`attncc list` names them), e.g. `"cbam"`.
        example: example input(s) whose shapes set dims such as `C` (see `compile`).
        **hyper: hyperparameters and the other keywords of `compile` (`seed`, `preset`, ...).

    Returns:
        The compiled torch.nn.Module.

    Example:
        >>> import attncc, torch
        >>> cbam = attncc.load("cbam", C=256, r=8)
        >>> y, maps = cbam(torch.randn(1, 256, 14, 14), return_attention=True)
        >>> sorted(maps), tuple(maps["s_s"].shape)
        (['s_c', 's_s'], (1, 14, 14))
    """
    return compile(name, example=example, **hyper)


def _check_against(source: Source, block: str | None, shapes: Mapping[str, tuple[int, ...]],
                   hyper: Mapping[str, Any]) -> None:
    """Refuse a hyperparameter that contradicts the example inputs, naming both."""
    from attncc.compiler import _entry, example_sizes
    from attncc.syntax import ast

    entry = _entry(source, block)
    decl = [(p.name.text, tuple(d.text for d in p.type.dims)) for p in entry.params
            if isinstance(p.type, ast.TensorTypeAst)]
    sizes = example_sizes(decl, shapes)
    for dim, size in sizes.items():
        if dim in hyper and hyper[dim] != size:
            where = next(f"input `{n}` of shape {list(shapes[n])}" for n, dims in decl
                         if n in shapes and dim in dims)
            raise HyperparameterError(
                f"hyperparameter `{dim}={hyper[dim]}` contradicts the example: {where} has "
                f"{dim}={size}", hints=(f"drop `{dim}=` to take it from the example, or pass "
                                        f"an example with {dim}={hyper[dim]}",))


def example_input_shapes(source: Source, example: Any, *,
                         block: str | None = None) -> dict[str, tuple[int, ...]]:
    """Input shapes by name from example inputs: one tensor, a sequence in the block's input
    order, or a mapping from input name to tensor (anything with a `.shape`)."""
    from attncc.compiler import _entry
    from attncc.syntax import ast

    entry = _entry(source, block)
    names = [p.name.text for p in entry.params if isinstance(p.type, ast.TensorTypeAst)]
    if isinstance(example, Mapping):
        pairs = list(example.items())
    elif hasattr(example, "shape"):
        pairs = [(names[0] if names else "?", example)]
    elif isinstance(example, Sequence) and not isinstance(example, str):
        if len(example) > len(names):
            raise HyperparameterError(
                f"{len(example)} example inputs given, but `{entry.name.text}` takes "
                f"{len(names)} ({', '.join(names)})")
        pairs = list(zip(names, example, strict=False))
    else:
        raise HyperparameterError(
            f"an example input must be a tensor or array, a tuple of them or a mapping from "
            f"input name to tensor, not {type(example).__name__}")
    out: dict[str, tuple[int, ...]] = {}
    for name, value in pairs:
        if not hasattr(value, "shape"):
            raise HyperparameterError(
                f"example input `{name}` is a {type(value).__name__}, not a tensor or array")
        out[str(name)] = tuple(int(s) for s in value.shape)
    return out


def _shapes(shapes: Mapping[str, Sequence[int]] | None) -> dict[str, tuple[int, ...]] | None:
    return {k: tuple(int(s) for s in v) for k, v in shapes.items()} if shapes else None


def state_arrays(module: Any) -> dict[str, Any]:
    """The module's state_dict as NumPy arrays (the weights every backend shares).

    Args:
        module: any torch.nn.Module.

    Returns:
        A dict from parameter or buffer name to a NumPy array.

    Example:
        >>> import attncc
        >>> {k: v.shape for k, v in attncc.state_arrays(attncc.load("eca", C=16)).items()}
        {'s.weight': (1, 1, 3)}
    """
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def to_onnx(module: Any, *, attention_outputs: bool = False, opset: int | None = None,
            static_shapes: Mapping[str, Sequence[int]] | None = None,
            dtype: str = "float32") -> Any:
    """The ONNX ModelProto of a compiled module, with its current weights (no file).

    Args:
        module: a module from `attncc.compile` / `load`.
        attention_outputs: also output the attention maps.
        opset: the ONNX opset (default 18, the lowest every lowering needs; 18 to 21).
        static_shapes: fix every input's shape (by input name) instead of symbolic dims.
        dtype: "float32", or "float16": float16 weights, inputs and outputs with float32
            compute inside (it runs on onnxruntime's CPU provider; about 1e-3 of each
            output's scale from the float32 model).

    Returns:
        An `onnx.ModelProto`.

    Raises:
        ExportError: the module was not made by attncc.

    Example:
        >>> import attncc
        >>> model = attncc.to_onnx(attncc.load("cbam", C=32), attention_outputs=True)
        >>> [o.name for o in model.graph.output]
        ['y', 'attention.s_c', 'attention.s_s']
    """
    from attncc.backends.onnx_export import OPSET, build_model

    ir: IR | None = getattr(module, "ir", None)
    if ir is None:
        raise ExportError("only modules made by attncc.compile can be exported from their IR")
    if dtype not in ("float32", "float16"):
        raise ExportError(f"dtype must be \"float32\" or \"float16\", not {dtype!r}")
    model = build_model(ir, state_arrays(module), attention_outputs=attention_outputs,
                        opset=OPSET if opset is None else opset,
                        static_shapes=_shapes(static_shapes))
    if dtype == "float16":
        from attncc.backends.onnx_export import to_float16

        model = to_float16(model)
    return model


def export_onnx(module_or_spec: Any, path: str | Path, *,
                shapes: Mapping[str, Sequence[int]] | None = None,
                attention_outputs: bool = False, opset: int | None = None,
                dynamic: bool = True, dtype: str = "float32", **hyper: Any) -> Any:
    """Export a compiled module (or a spec, compiled first) to an ONNX file, atomically.

    The graph is built from the block's IR with standard opset-18 operators and the module's
    current weights; batch and spatial dims stay dynamic.

    Args:
        module_or_spec: a module from `attncc.compile` / `load`, or a spec to compile first.
        path: the `.onnx` file to write (written to a temporary file, then renamed).
        shapes: when a spec is given, example input shapes that fix dims such as `C`.
        attention_outputs: also output the attention maps, after the block's outputs.
        opset: the ONNX opset, 18 (the default) to 21.
        dtype: "float32" (default) or "float16" (float16 weights and I/O; see `to_onnx`).
        dynamic: keep batch and spatial dims symbolic (the default); `False` fixes every
            input's shape to `shapes` (or the spec's `example` shapes).
        **hyper: when a spec is given, its hyperparameters (and `example=`, `preset=`).

    Returns:
        The `onnx.ModelProto` written.

    Raises:
        ExportError: the module was not made by attncc.

    Example:
        >>> import os, tempfile, attncc
        >>> path = os.path.join(tempfile.mkdtemp(), "cbam.onnx")
        >>> model = attncc.export_onnx(attncc.load("cbam", C=64), path)
        >>> [i.name for i in model.graph.input], os.path.exists(path)
        (['x'], True)
    """
    from attncc.backends.onnx_export import write_atomic

    module = module_or_spec
    if isinstance(module_or_spec, (str, Path, Source)):
        module = compile(module_or_spec, shapes=shapes, **hyper)
    static = None
    if not dynamic:
        static = shapes
        if static is None:
            from attncc.compiler import example_shapes

            ir = module.ir
            src = read_source(ir.path if Path(ir.path).is_file() else module.spec)
            fixed = {d: v for d, v in ir.dims.items() if v is not None}
            static = example_shapes(src, ir.block, fixed)
            if not static:
                raise ExportError("a static export needs input shapes: give `shapes=` (the "
                                  "spec has no `example` lines)")
    model = to_onnx(module, attention_outputs=attention_outputs, opset=opset,
                    static_shapes=static, dtype=dtype)
    write_atomic(model.SerializeToString(), path)
    return model


def onnx_session(path_or_model: Any, device: str = "cpu", optimize: bool = True) -> Any:
    """An onnxruntime InferenceSession for an exported block.

    Args:
        path_or_model: an `.onnx` path or an `onnx.ModelProto`.
        device: `"cpu"`, or `"cuda"` (needs onnxruntime-gpu; ExportError otherwise).
        optimize: apply onnxruntime's graph optimisations.

    Returns:
        An `onnxruntime.InferenceSession`.

    Example:
        >>> import numpy as np, attncc
        >>> m = attncc.load("se", C=16, r=4)
        >>> sess = attncc.onnx_session(attncc.to_onnx(m))
        >>> sess.run(None, {"x": np.ones((2, 16, 5, 3), np.float32)})[0].shape
        (2, 16, 5, 3)
    """
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
    """Run the module (eval mode) and onnxruntime on the same inputs and compare.

    Args:
        module: a compiled module.
        model: its ONNX model (`to_onnx(module)`) or a path.
        inputs: input arrays by input name.

    Returns:
        The largest |torch - onnxruntime| over each output's scale, max(1, max |torch|).

    Example:
        >>> import numpy as np, attncc
        >>> m = attncc.load("se", C=16, r=4)
        >>> x = np.random.default_rng(0).standard_normal((2, 16, 5, 3)).astype(np.float32)
        >>> attncc.verify_onnx(m, attncc.to_onnx(m), {"x": x}) < 1e-5
        True
    """
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
    # a float16 model (`dtype="float16"`) takes and gives float16
    types = {i.name: np.float16 if i.type == "tensor(float16)" else np.float32
             for i in sess.get_inputs()}
    got = sess.run(None, {k: np.asarray(v, dtype=types.get(k, np.float32))
                          for k, v in inputs.items()})
    return max(float(np.max(np.abs(r.numpy() - g.astype(np.float32)))
                     / max(1.0, float(np.max(np.abs(r.numpy())))))
               for r, g in zip(ref, got, strict=False))
