"""Compiled APNB (Zhu et al., ICCV 2019) against a transcription of MendelXu/ANN's apnb.py,
which loads the compiled state_dict through `from_compiled` with strict=True; and the
adaptive_avg_pool op it samples keys and values with (shape rules, diagnostics, torch's bins).
"""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
from paper_refs.ann import AFNB, APNB, from_compiled, from_compiled_afnb

import attncc
from attncc.diagnostics import AttnccError
from attncc.ops.adaptive import bin_matrix

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [
    pytest.param({"C": 24, "key": 12, "value": 20}, id="C24-k12-v20-bins1368"),
    pytest.param({"C": 24, "key": 12, "value": 20, "s2": 5}, id="C24-k12-v20-bins1568"),
    pytest.param({"C": 40, "key": 18, "value": 14, "s2": 4, "s3": 7}, id="C40-k18-v14-bins1478"),
]
# (N, H, W): bins that overlap (7 -> 3), repeat positions (5 -> 8), and ANN's 97 x 97-like map
SHAPES = [pytest.param((2, 7, 9), id="n2_h7_w9"), pytest.param((1, 5, 13), id="n1_h5_w13"),
          pytest.param((2, 33, 29), id="n2_h33_w29")]


def _bins(hyper: dict) -> tuple[int, ...]:
    return tuple(hyper.get(k, d) for k, d in (("s1", 1), ("s2", 3), ("s3", 6), ("s4", 8)))


def _pair(hyper: dict, seed: int = 0, dropout: float = 0.05):
    ref = APNB(hyper["C"], hyper["C"], hyper["key"], hyper["value"], dropout, _bins(hyper))
    return h.paired("ann", hyper, ref, from_compiled, seed=seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _pair(hyper)
    x = h.nchw(hyper["C"], shape, seed=1)
    (y, att), (want_y, want_sim) = h.eval_both(m, ref, x)
    torch.testing.assert_close(y, want_y, **TOL)
    n, _, hh, ww = x.shape
    torch.testing.assert_close(att["sim"], want_sim.view(n, hh, ww, -1), **TOL)
    assert att["sim"].shape[-1] == sum(s * s for s in _bins(hyper))


@pytest.mark.parametrize("hyper", CASES[1:])
def test_training_step_matches(hyper):
    """BN's batch statistics (f_key's updated twice, as the code applies it twice), the
    running buffers, and one backward (float64; dropout off in the reference)."""
    m, ref = _pair(hyper, seed=2, dropout=0.0)
    m.train().double()
    ref.train().double()
    x = h.nchw(hyper["C"], (3, 11, 6), seed=3).double()
    y_m, (y_ref, _) = m(x), ref(x)
    torch.testing.assert_close(y_m, y_ref, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(from_compiled(m.state_dict()), ref.state_dict(),
                               rtol=1e-9, atol=1e-10)
    assert int(m.state_dict()["f_key.1.num_batches_tracked"]) == 2
    g = torch.randn_like(y_m)
    params_m = dict(m.named_parameters())
    grads = dict(zip(params_m, torch.autograd.grad(y_m, list(params_m.values()), g),
                     strict=True))
    ref_params = dict(ref.named_parameters())   # f_query's tensors are f_key's: listed once
    ref_grads = dict(zip(ref_params, torch.autograd.grad(y_ref, list(ref_params.values()), g),
                         strict=True))
    converted = {k: v for k, v in from_compiled(grads).items() if k in ref_grads}
    assert set(converted) == set(ref_grads)
    for name, gr in ref_grads.items():
        torch.testing.assert_close(converted[name], gr, rtol=1e-8, atol=1e-10, msg=name)


def test_block_starts_as_a_fusion_of_x_alone():
    """W starts at zero (the code's constant_ init): the context is 0 before training."""
    hyper = {"C": 24, "key": 12, "value": 20}
    m = h.compile_spec("ann", hyper).eval()
    assert not torch.any(m.state_dict()["proj.weight"])
    assert not torch.any(m.state_dict()["proj.bias"])
    x = h.nchw(24, (2, 7, 9), seed=4)
    with torch.no_grad():
        y = m(x)
        conv = m.state_dict()["conv_bn.0.weight"][:, 24:, 0, 0]   # the x half of [context; x]
        bias = m.state_dict()["conv_bn.0.bias"]
        want = torch.relu((torch.einsum("oc,nchw->nohw", conv, x) + bias[:, None, None])
                          / (1 + 1e-5) ** 0.5)
    torch.testing.assert_close(y, want, **TOL)


# ---- the adaptive_avg_pool op ----
@pytest.mark.parametrize(("n", "s"), [(7, 3), (5, 8), (97, 6), (12, 4), (1, 3), (10, 1)])
def test_bins_follow_torch(n, s):
    x = torch.eye(n, dtype=torch.float64)[None]                 # [1, n, n]: column j = e_j
    want = torch.nn.functional.adaptive_avg_pool1d(x, s)[0].T.numpy()   # [s, n]
    np.testing.assert_allclose(bin_matrix(n, s), want, rtol=1e-12)


@pytest.mark.parametrize(("shape", "size"), [((2, 6, 97, 91), 8), ((1, 3, 2, 5), 6)])
def test_onnx_pooling_is_dynamic_and_exact(shape, size):
    spec = ("block B(x: [N, C, H, W]) {\n"
            f"  y = adaptive_avg_pool(x, over=H W, size={size}, to=P)\n  return y\n}}\n")
    m = attncc.compile(spec, C=shape[1])
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    results = h.assert_backends_agree(m, {"x": x}, label=f"adaptive_avg_pool {shape}")
    want = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x), size).flatten(2)
    for out in results.values():
        np.testing.assert_allclose(out["y"], want.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("call", "message"), [
    ("adaptive_avg_pool(x, over=H W, size=3, to=A B C)", "`to` names 3 dims"),
    ("adaptive_avg_pool(x, over=H Q, size=3, to=P)", "pools `Q`"),
    ("adaptive_avg_pool(x, over=H W, size=3, to=C)", "two dims named `C`"),
    ("adaptive_avg_pool(x, over=H W, size=0, to=P)", "size"),
    ("adaptive_avg_pool(x, over=H H, size=2, to=P)", "twice"),
    ("adaptive_avg_pool(x, over=W, size=2, to=P)", "one or two dims besides"),
])
def test_bad_calls_get_diagnostics(call, message):
    spec = f"block B(x: [N, C, H, W]) {{\n  y = {call}\n  return y\n}}\n"
    with pytest.raises(AttnccError, match=message):
        attncc.check(spec, C=4)


# ---- AFNB (the file's other block) ----
AFNB_CASES = [
    pytest.param({"Cl": 20, "C": 24, "key": 12, "value": 14}, id="Cl20-C24-k12-v14-bins1368"),
    pytest.param({"Cl": 36, "C": 16, "key": 10, "value": 22, "s2": 5, "s4": 7},
                 id="Cl36-C16-k10-v22-bins1567"),
]
# (N, Hl, Wl, H, W): the low-level map at the high one's size (ANN's dilated stages 4, 5),
# and at another size (its bins are all that is used)
AFNB_SHAPES = [pytest.param((2, 9, 7, 9, 7), id="n2_same_9x7"),
               pytest.param((1, 13, 10, 5, 11), id="n1_low13x10_high5x11")]


def _afnb_pair(hyper: dict, seed: int = 0, dropout: float = 0.05):
    ref = AFNB(hyper["Cl"], hyper["C"], hyper["C"], hyper["key"], hyper["value"], dropout,
               _bins(hyper))
    m = h.randomize_(attncc.compile(h.SPECS_DIR / "ann.attn", block="AFNB", seed=0, **hyper),
                     seed)
    ref.load_state_dict(from_compiled_afnb(m.state_dict()), strict=True)
    return m, ref


def _afnb_inputs(hyper: dict, shape, seed: int) -> list[torch.Tensor]:
    n, hl, wl, hh, ww = shape
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, hyper["Cl"], hl, wl, generator=gen),
            torch.randn(n, hyper["C"], hh, ww, generator=gen)]


@pytest.mark.parametrize("shape", AFNB_SHAPES)
@pytest.mark.parametrize("hyper", AFNB_CASES)
def test_afnb_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _afnb_pair(hyper)
    xs = _afnb_inputs(hyper, shape, seed=1)
    (y, att), (want_y, want_sim) = h.eval_both(m, ref, *xs)
    torch.testing.assert_close(y, want_y, **TOL)
    n, _, hh, ww = xs[1].shape
    torch.testing.assert_close(att["sim"], want_sim.view(n, hh, ww, -1), **TOL)


@pytest.mark.parametrize("hyper", AFNB_CASES)
def test_afnb_training_step_matches(hyper):
    m, ref = _afnb_pair(hyper, seed=2, dropout=0.0)
    m.train().double()
    ref.train().double()
    xs = [x.double() for x in _afnb_inputs(hyper, (3, 8, 6, 5, 9), seed=3)]
    y_m, (y_ref, _) = m(*xs), ref(*xs)
    torch.testing.assert_close(y_m, y_ref, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(from_compiled_afnb(m.state_dict()), ref.state_dict(),
                               rtol=1e-9, atol=1e-10)
    g = torch.randn_like(y_m)
    params_m = from_compiled_afnb(dict(m.named_parameters()))
    params_ref = dict(ref.named_parameters())
    assert set(params_m) == set(params_ref)
    grads_m = torch.autograd.grad(y_m, list(params_m.values()), g)
    grads_ref = torch.autograd.grad(y_ref, [params_ref[k] for k in params_m], g)
    for name, a, b in zip(params_m, grads_m, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10, msg=name)


@pytest.mark.parametrize("shape", AFNB_SHAPES)
def test_afnb_backends_agree(shape):
    """NumPy, PyTorch and onnxruntime on AFNB (test_specs.py covers the entry block, APNB)."""
    hyper = {"Cl": 36, "C": 16, "key": 10, "value": 22, "s2": 5, "s4": 7}
    m, _ = _afnb_pair(hyper, seed=5)
    low, high = (t.numpy() for t in _afnb_inputs(hyper, shape, seed=6))
    h.assert_backends_agree(m, {"low": low, "high": high}, label=f"afnb-{shape}")
