"""Differential-test helpers: randomised weights, the three backends, and their comparison.

One set of weights (a compiled module's state_dict) feeds the NumPy reference, the generated
PyTorch module and onnxruntime, so any disagreement is a lowering bug, never a weight mix-up.
Every backend's result is a dict keyed like `numpy_ref.run`: the block's outputs by name, then
`attention.<name>` for each attention map.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import attncc
from attncc.api import state_arrays, to_onnx
from attncc.backends import numpy_ref
from attncc.ir import IR

RTOL, ATOL = 1e-4, 1e-5
SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"
SPEC_PATHS = sorted(SPECS_DIR.glob("*.attn"))
REPRO_ENV = "ATTNCC_REPRO_DIR"

Outputs = dict[str, np.ndarray]


# ---- building modules and inputs ----
def compile_spec(stem: str, hyper: Mapping[str, Any], seed: int | None = 0) -> Any:
    """Compile specs/<stem>.attn with the given hyperparameters (default init, seeded)."""
    return attncc.compile(SPECS_DIR / f"{stem}.attn", seed=seed, **hyper)


def paired(stem: str, hyper: Mapping[str, Any], reference: torch.nn.Module,
           convert: Any = None, seed: int = 0) -> tuple[Any, torch.nn.Module]:
    """A randomised compiled module and a paper reference holding the same weights.

    The reference loads the compiled state_dict (through `convert`, for a reference that stores
    a tensor in its authors' layout) with strict=True, so a drift in names or shapes fails
    before any number is compared.
    """
    m = randomize_(compile_spec(stem, hyper), seed)
    state = m.state_dict()
    reference.load_state_dict(convert(state) if convert else state, strict=True)
    return m, reference


def eval_both(m: Any, reference: torch.nn.Module, *inputs: Any) -> tuple[Any, Any]:
    """Both modules in eval mode on the same inputs, without autograd: (the compiled module's
    (outputs, attention maps), the reference's output)."""
    m.eval()
    reference.eval()
    with torch.no_grad():
        return m(*inputs, return_attention=True), reference(*inputs)


def input_shapes(ir: IR, sizes: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """Each block input's shape: fixed dims from the IR, run-time dims from `sizes`."""
    shapes = {}
    for n in ir.inputs:
        nd = ir.node(n)
        shape = []
        for d in nd.out.dims:
            size = ir.dims.get(d) or sizes.get(d)
            if size is None:
                raise KeyError(f"input `{nd.name}` of {ir.block} needs a size for run-time dim "
                               f"`{d}`; add it to the test's shape case")
            shape.append(size)
        shapes[nd.name] = tuple(shape)
    return shapes


# an int64 input is an index tensor (the op samples of `take`): values 0 .. INDEX_BOUND - 1,
# valid along any gathered dim of at least that size
INDEX_BOUND = 3


def make_inputs(ir: IR, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
    """Standard-normal float32 inputs for every block input (one stream per seed); int64
    inputs get indices below INDEX_BOUND."""
    rng = np.random.default_rng(seed)
    dtypes = {ir.node(n).name: ir.node(n).out.dtype for n in ir.inputs}
    return {name: (rng.integers(0, INDEX_BOUND, shape, dtype=np.int64)
                   if dtypes[name] == "int64" else rng.standard_normal(shape, dtype=np.float32))
            for name, shape in input_shapes(ir, sizes).items()}


def nchw(channels: int, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """A standard-normal [N, C, H, W] tensor for shape (N, H, W): the paper references' input."""
    n, hh, ww = shape
    return torch.randn(n, channels, hh, ww, generator=torch.Generator().manual_seed(seed))


def torch_input(module: Any, sizes: Mapping[str, int], seed: int) -> torch.Tensor:
    """The input tensor of a one-input block, for any layout ([N, C, H, W], [N, L, D], ...)."""
    (x,) = make_inputs(module.ir, sizes, seed).values()
    return torch.from_numpy(x)


randomize_ = attncc.api.randomize_  # every floating tensor random and nonzero


# ---- the three backends ----
def output_keys(ir: IR) -> list[str]:
    """Result keys in ONNX output order: outputs, then `attention.<name>` maps."""
    return [name for name, _ in ir.outputs] + [f"attention.{a}" for a in ir.attention]


def run_numpy(module: Any, inputs: Mapping[str, np.ndarray]) -> Outputs:
    """The NumPy reference interpreter on the module's IR and current weights."""
    out = numpy_ref.run(module.ir, inputs, state_arrays(module))
    return {k: out[k] for k in output_keys(module.ir)}


def run_torch(module: Any, inputs: Mapping[str, np.ndarray]) -> Outputs:
    """The generated module in eval mode under no_grad; its training flag is restored after."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            args = [torch.from_numpy(np.array(inputs[module.ir.node(n).name]))
                    for n in module.ir.inputs]
            y, att = module(*args, return_attention=True)
    finally:
        module.train(was_training)
    ys = y if isinstance(y, tuple) else (y,)
    values = [*ys, *(att[a] for a in module.ir.attention)]
    return {k: v.detach().cpu().numpy() for k, v in zip(output_keys(module.ir), values,
                                                         strict=True)}


def onnx_model(module: Any) -> Any:
    """The module's ONNX model with attention maps as extra outputs."""
    return to_onnx(module, attention_outputs=True)


def run_ort(module: Any, inputs: Mapping[str, np.ndarray], model: Any = None) -> Outputs:
    """onnxruntime (CPU, graph optimisations off) on the module's exported model."""
    model = model if model is not None else onnx_model(module)
    sess = attncc.api.onnx_session(model, optimize=False)
    got = sess.run(None, {k: np.asarray(v) if np.asarray(v).dtype == np.int64
                          else np.asarray(v, dtype=np.float32) for k, v in inputs.items()})
    return dict(zip(output_keys(module.ir), got, strict=True))


def run_onnx_reference(model: Any, inputs: Mapping[str, np.ndarray], keys: Sequence[str]):
    """onnx.reference.ReferenceEvaluator: the tie-breaker when ORT and NumPy disagree."""
    from onnx.reference import ReferenceEvaluator

    got = ReferenceEvaluator(model).run(None, dict(inputs))
    return dict(zip(keys, got, strict=True))


BACKENDS = {"numpy": run_numpy, "torch": run_torch, "ort": run_ort}


# ---- comparison ----
def mismatch(expected: np.ndarray, actual: np.ndarray, rtol: float, atol: float) -> str | None:
    """None when allclose; otherwise the max abs/rel error and the first differing index."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.shape != actual.shape:
        return f"shapes differ: {expected.shape} vs {actual.shape}"
    if expected.dtype != actual.dtype:
        return f"dtypes differ: {expected.dtype} vs {actual.dtype}"
    e64, a64 = expected.astype(np.float64), actual.astype(np.float64)
    bad = ~np.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True)
    if not bad.any():
        return None
    err = np.abs(a64 - e64)
    rel = err / np.maximum(np.abs(e64), np.finfo(np.float64).tiny)
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    return (f"max abs error {np.nanmax(err):.3g}, max rel error {np.nanmax(rel):.3g}, "
            f"{int(bad.sum())} of {bad.size} elements differ, first at index {first} "
            f"({float(expected[first]):.7g} vs {float(actual[first]):.7g}); "
            f"rtol={rtol}, atol={atol}")


def compare(label: str, pair: tuple[str, str], expected: Outputs, actual: Outputs,
            rtol: float = RTOL, atol: float = ATOL) -> list[str]:
    """Failure lines naming the spec, the backend pair and the output; [] when they agree."""
    a, b = pair
    if set(expected) != set(actual):
        return [f"{label}: {a} vs {b}: outputs differ: {sorted(expected)} vs {sorted(actual)}"]
    lines = []
    for key in expected:
        why = mismatch(expected[key], actual[key], rtol, atol)
        if why:
            lines.append(f"{label}: {a} vs {b} disagree on output `{key}`: {why}")
    return lines


def assert_backends_agree(module: Any, inputs: Mapping[str, np.ndarray], *, label: str,
                          rtol: float = RTOL, atol: float = ATOL) -> dict[str, Outputs]:
    """Run NumPy, torch and ORT on the same weights and inputs; fail naming what differs.

    Every pair is compared. When ORT is part of a failing pair, the ONNX reference evaluator
    is run too and the message says which side it agrees with. With $ATTNCC_REPRO_DIR set, a
    reproduction is written there. Returns every backend's outputs.
    """
    model = onnx_model(module)
    results = {"numpy": run_numpy(module, inputs), "torch": run_torch(module, inputs),
               "ort": run_ort(module, inputs, model)}
    failures: list[str] = []
    ort_involved = False
    for pair in (("numpy", "torch"), ("numpy", "ort"), ("torch", "ort")):
        lines = compare(label, pair, results[pair[0]], results[pair[1]], rtol, atol)
        ort_involved |= bool(lines) and "ort" in pair
        failures += lines
    if failures:
        if ort_involved:
            failures.append(_tie_break(model, inputs, results, rtol, atol))
        where = dump_repro(label, module, inputs, model)
        if where:
            failures.append(f"reproduction written to {where}")
        raise AssertionError("\n".join(failures))
    return results


def _tie_break(model, inputs, results, rtol, atol) -> str:
    try:
        ref = run_onnx_reference(model, inputs, list(results["ort"]))
    except Exception as err:  # the tie-breaker is advice; its own failure must not mask ours
        return f"onnx ReferenceEvaluator failed: {err!r}"
    sides = [name for name in ("numpy", "ort") if not compare("", ("", ""), ref,
                                                              results[name], rtol, atol)]
    return f"onnx ReferenceEvaluator agrees with: {', '.join(sides) or 'neither'}"


# ---- reproduction ----
def dump_repro(label: str, module: Any, inputs: Mapping[str, np.ndarray],
               model: Any = None) -> Path | None:
    """With $ATTNCC_REPRO_DIR set, write what a rerun needs; returns the folder (else None)."""
    root = os.environ.get(REPRO_ENV)
    if not root:
        return None
    folder = Path(root) / re.sub(r"[^A-Za-z0-9_.-]+", "_", label)
    folder.mkdir(parents=True, exist_ok=True)
    ir: IR = module.ir
    (folder / "spec.attn").write_text(module.spec, encoding="utf-8")
    (folder / "hyper.json").write_text(json.dumps(
        {"path": ir.path, "block": ir.block, "hyper": ir.hyper,
         "dims": ir.dims}, indent=2, default=str), encoding="utf-8")
    (folder / "generated.py").write_text(module.source, encoding="utf-8")
    np.savez(folder / "inputs.npz", **dict(inputs))
    np.savez(folder / "state.npz", **state_arrays(module))
    if model is not None:
        (folder / "model.onnx").write_bytes(model.SerializeToString())
    return folder
