"""Numerical robustness of every bundled spec: huge and constant inputs, half precision.

- Large-magnitude inputs (standard normal × 1e4, and all-negative ones of that size) and
  constant inputs (0.7 everywhere, and zeros: zero variance for every normalisation) give
  finite outputs and attention maps in NumPy, PyTorch and onnxruntime. Softmaxes are
  max-shifted and normalisations carry their eps, so this holds for every spec except where
  the paper's own formula divides by a sum that an all-zero input makes zero (INHERENT).
- PyTorch in half precision, each against float32 at the stated tolerance (the largest
  |difference| over each output's scale, max(1, max |y|)): CPU autocast to bfloat16, the whole
  module cast to bfloat16, and cast to float16.
- ONNX float16 export (`to_onnx(..., dtype="float16")`, `attncc export --fp16`): float16
  weights and I/O with float32 compute inside, run by onnxruntime's CPU provider.

What torch's CPU autocast does (torch 2.x, checked below): linear, matmul, einsum and conv
run in bfloat16; softmax, sums, means and the normalisations are in neither autocast list,
so they run in the dtype of their input (bfloat16 after a bfloat16 op) — but their CPU
kernels accumulate bfloat16 and float16 in float32 (torch's `acc_type`), and only the result
is rounded: a sum of 8192 bfloat16 ones is exactly 8192, where bfloat16 accumulation would
stop at 256.
"""

from __future__ import annotations

import copy

import _harness as h
import numpy as np
import pytest
import torch
from test_specs import BASE_SHAPE, DEFAULT_SETTINGS, SETTINGS

import attncc
from attncc.cli import main as cli_main
from attncc.diagnostics import ExportError

STEMS = [p.stem for p in h.SPEC_PATHS]

# the paper's formula itself is 0/0 at an all-zero input (no eps in the equation or the code)
INHERENT = {
    "sta": "eq. (151) g = e / Σ_hw e with e = Σ_c x²: an all-zero frame gives 0/0",
    "stgcn": "eq. (158) A = E² / Σ_j E² with E = (W_φ x)ᵀ W_θ x: a zero input gives 0/0",
}

# half precision: largest |difference| over max(1, max |y|) against float32
BF16_TOL, FP16_TOL, ONNX_FP16_TOL = 6e-2, 1e-2, 5e-3
# DANet's and DNL's channel attention is a softmax over C x C energies Σ_hw x_c x_c' that are
# not scaled: the logits reach the hundreds, where bfloat16's 8-bit significand (float16's
# 11-bit) leaves errors of order 1 in a logit, and the softmax passes them on
WIDER = {"danet": (1.5e-1, 3e-2), "dnl": (1.5e-1, 3e-2)}


def _module(stem: str):
    hyper = SETTINGS.get(stem, DEFAULT_SETTINGS)[0][1]
    return h.randomize_(h.compile_spec(stem, hyper), 3).eval()


def _map_floats(x: dict[str, np.ndarray], f) -> dict[str, np.ndarray]:
    return {k: f(v).astype(np.float32) if v.dtype == np.float32 else v for k, v in x.items()}


def _nonfinite(results: dict[str, h.Outputs]) -> list[str]:
    return [f"{backend}: `{k}`" for backend, out in results.items() for k, v in out.items()
            if not np.isfinite(v).all()]


def _all_backends(m, x) -> dict[str, h.Outputs]:
    return {b: run(m, x) for b, run in h.BACKENDS.items()}


INPUTS = {
    "large": lambda v: v * 1e4,
    "large_negative": lambda v: -np.abs(v) * 1e4 - 1e4,
    "constant": lambda v: np.full_like(v, 0.7),
    "zeros": np.zeros_like,
}


@pytest.mark.parametrize("kind", list(INPUTS))
@pytest.mark.parametrize("stem", STEMS)
def test_outputs_stay_finite(stem, kind):
    m = _module(stem)
    x = _map_floats(h.make_inputs(m.ir, BASE_SHAPE, seed=1), INPUTS[kind])
    inherent = kind == "zeros" and stem in INHERENT
    with np.errstate(invalid="ignore" if inherent else "warn"):
        bad = _nonfinite(_all_backends(m, x))
    if inherent:
        # listed, not hidden: the test fails if the spec stops being non-finite here
        assert bad, f"{stem} is finite at zero input now: drop it from INHERENT"
        return
    assert not bad, f"non-finite outputs at {kind} inputs: {bad}"


NORMS = """
block Norms(x: [N, C, H, W]) {
  a = softmax(x, over=C)
  b = softmax(x, over=H W)
  c = logsumexp(x, over=C)
  d = layer_norm(x, over=C)
  e = layer_norm(x, over=H W, affine=false)
  f = group_norm(x, groups=2, channel=C)
  g = batch_norm(x, over=N H W)
  s = std(x, over=H W, correction=1)
  v = var(x, over=C, correction=0)
  attention a, b
  return a, b, c, d, e, f, g, s, v
}
"""


@pytest.mark.parametrize("kind", list(INPUTS))
def test_softmax_and_normalisations_at_extremes(kind):
    """Each op alone, in eval and (for torch) training mode: finite, and the three agree."""
    m = h.randomize_(attncc.compile(NORMS, C=6, seed=0), 2)
    x = _map_floats(h.make_inputs(m.ir, BASE_SHAPE, seed=4), INPUTS[kind])
    # at a constant input x - mean(x) is float32 rounding noise (an ulp of 0.7 is 6e-8), which
    # the normalisations divide by sqrt(eps) = 3e-3: each backend's own reduction order leaves
    # ~1e-5 per ulp on outputs whose exact value is the bias, so they agree to 2e-4 there
    atol = {"large": 1e-1, "large_negative": 1e-1, "constant": 2e-4}.get(kind, 1e-5)
    results = h.assert_backends_agree(m, x, label=f"norms at {kind} inputs", rtol=1e-4,
                                      atol=atol)
    assert not _nonfinite(results)
    soft = results["numpy"]["attention.a"]
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-5)
    m.train()
    ys = m(torch.from_numpy(x["x"]))  # batch statistics of a constant input: variance 0
    assert all(torch.isfinite(y).all() for y in ys)


# ---- half precision in PyTorch ----
def _scaled_error(want: h.Outputs, got: h.Outputs) -> float:
    return max(float(np.max(np.abs(want[k].astype(np.float64) - got[k].astype(np.float64))))
               / max(1.0, float(np.max(np.abs(want[k])))) for k in want)


def _run_torch(m, x: dict[str, np.ndarray], dtype=None, autocast=None) -> h.Outputs:
    args = [torch.from_numpy(v).to(dtype) if dtype is not None and v.dtype == np.float32
            else torch.from_numpy(v) for v in x.values()]
    with torch.no_grad():
        if autocast is not None:
            with torch.autocast("cpu", dtype=autocast):
                y, att = m(*args, return_attention=True)
        else:
            y, att = m(*args, return_attention=True)
    ys = y if isinstance(y, tuple) else (y,)
    vals = [*ys, *(att[a] for a in m.ir.attention)]
    return {k: v.float().numpy() for k, v in zip(h.output_keys(m.ir), vals, strict=True)}


MODES = {
    "autocast_bf16": lambda m, x: _run_torch(m, x, autocast=torch.bfloat16),
    "bf16": lambda m, x: _run_torch(copy.deepcopy(m).to(torch.bfloat16), x, torch.bfloat16),
    "fp16": lambda m, x: _run_torch(copy.deepcopy(m).to(torch.float16), x, torch.float16),
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("stem", STEMS)
def test_half_precision_in_torch(stem, mode):
    m = _module(stem)
    x = h.make_inputs(m.ir, BASE_SHAPE, seed=1)
    want = h.run_torch(m, x)
    got = MODES[mode](m, x)
    assert not _nonfinite({mode: got})
    bf16, fp16 = WIDER.get(stem, (BF16_TOL, FP16_TOL))
    tol = fp16 if mode == "fp16" else bf16
    err = _scaled_error(want, got)
    assert err <= tol, f"{stem} in {mode}: error {err:.3g} over the scale > {tol:g}"


def test_bfloat16_module_keeps_its_parameters_in_bfloat16():
    m = copy.deepcopy(_module("cbam")).to(torch.bfloat16)
    assert {t.dtype for t in m.state_dict().values() if t.is_floating_point()} == \
        {torch.bfloat16}
    y = m(torch.randn(2, 24, 7, 9, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16


def test_what_cpu_autocast_does_to_softmax_and_reductions():
    """The behaviour the module docstring states, pinned so a torch upgrade shows up here."""
    x = torch.randn(4, 4096)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.nn.functional.linear(x, torch.randn(8, 4096)).dtype == torch.bfloat16
        assert torch.einsum("nc,mc->nm", x, x).dtype == torch.bfloat16
        assert torch.softmax(x, -1).dtype == torch.float32  # left in its input's dtype
        p = torch.softmax(x.bfloat16(), -1)
        assert p.dtype == torch.bfloat16
        ones = torch.ones(8192, dtype=torch.bfloat16)
        assert float(ones.sum()) == 8192.0  # float32 accumulation (bf16 would stop at 256)
        assert float(torch.softmax(torch.zeros(8192, dtype=torch.bfloat16), -1)
                     .float().sum()) == pytest.approx(1.0, abs=1e-2)
    assert float(torch.ones(8192, dtype=torch.float16).sum()) == 8192.0


# ---- float16 ONNX ----
@pytest.mark.parametrize("stem", STEMS)
def test_float16_onnx_export_runs_in_ort_cpu(stem):
    import onnx

    m = _module(stem)
    model = attncc.to_onnx(m, attention_outputs=True, dtype="float16")
    onnx.checker.check_model(model, full_check=True)
    f16 = onnx.TensorProto.FLOAT16
    for vi in [*model.graph.input, *model.graph.output]:
        assert vi.type.tensor_type.elem_type in (f16, onnx.TensorProto.INT64), vi.name
    weights = {t.name: t for t in model.graph.initializer if not t.name.startswith("const_")}
    assert all(t.data_type in (f16, onnx.TensorProto.INT64) for t in weights.values())
    x = h.make_inputs(m.ir, BASE_SHAPE, seed=1)
    sess = attncc.onnx_session(model)
    got = sess.run(None, {k: v.astype(np.float16) if v.dtype == np.float32 else v
                          for k, v in x.items()})
    assert all(g.dtype in (np.float16, np.int64) for g in got)
    got_d = {k: g.astype(np.float32) for k, g in zip(h.output_keys(m.ir), got, strict=True)}
    assert not _nonfinite({"ort-fp16": got_d})
    err = _scaled_error(h.run_torch(m, x), got_d)
    assert err <= ONNX_FP16_TOL, f"{stem}: float16 ONNX error {err:.3g} > {ONNX_FP16_TOL:g}"


def test_float16_export_is_smaller_and_deterministic(tmp_path):
    m = _module("nonlocal")
    a = attncc.export_onnx(m, tmp_path / "a.onnx", dtype="float16")
    attncc.export_onnx(m, tmp_path / "b.onnx", dtype="float16")
    attncc.export_onnx(m, tmp_path / "c.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    b = attncc.to_onnx(m)

    def weight_bytes(model):
        return sum(len(t.raw_data) for t in model.graph.initializer
                   if not t.name.startswith("const_"))

    assert 2 * weight_bytes(a) == weight_bytes(b) > 0  # half the bytes per weight
    assert a.SerializeToString() == (tmp_path / "a.onnx").read_bytes()


def test_float16_export_refuses_weights_out_of_range_and_bad_dtypes():
    m = _module("se")
    with torch.no_grad():
        next(m.parameters()).view(-1)[0] = 1e6
    with pytest.raises(ExportError, match="beyond float16's range"):
        attncc.to_onnx(m, dtype="float16")
    with pytest.raises(ExportError, match=r"float32.*float16"):
        attncc.to_onnx(m, dtype="int8")


def test_cli_export_fp16(tmp_path, capsys):
    import onnx

    out = tmp_path / "cbam16.onnx"
    assert cli_main(["export", "cbam", "-o", str(out), "--fp16", "--set", "C=24"]) == 0
    model = onnx.load(str(out))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert "max |difference|" in capsys.readouterr().out
    # the float32 default tolerance is too tight for float16 rounding, and says so
    assert cli_main(["export", "cbam", "-o", str(tmp_path / "t.onnx"), "--fp16", "--tol",
                     "1e-6", "--set", "C=24"]) == 1
    assert not (tmp_path / "t.onnx").exists()
