"""Compiled Bi-attention (AiA) against a module transcribed from the authors' code.

The reference (tests/paper_refs/aia.py) loads the compiled state_dict with strict=True; the
outputs and the attention map s are compared in eval mode at two settings and two shapes,
then one float64 training step (BN batch statistics, running buffers, gradients).
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.aia import BilinearAttention, from_compiled

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [
    pytest.param({"C": 24, "r": 4}, id="C24-r4"),   # c' = 6, 21 channels
    pytest.param({"C": 40, "r": 8}, id="C40-r8"),   # c' = 5, 15 channels
]
SHAPES = [pytest.param((3, 7, 9), id="n3_h7_w9"), pytest.param((1, 11, 13), id="n1_h11_w13")]


def _pair(hyper: dict, seed: int = 0):
    ref = BilinearAttention(hyper["C"], r=hyper["r"])
    return h.paired("aia", hyper, ref, from_compiled, seed=seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _pair(hyper)
    x = h.nchw(hyper["C"], shape, seed=1)
    (y, att), (y_ref, s_ref) = h.eval_both(m, ref, x)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(att["s"], s_ref, **TOL)


def test_triangle_table_is_the_codes_diagonal_order():
    m = h.compile_spec("aia", {"C": 24, "r": 4})
    c = 6
    want = [(k + i) * c + k for i in range(c) for k in range(c - i)]
    assert m.state_dict()["b.index"].tolist() == want


@pytest.mark.parametrize("hyper", CASES)
def test_training_step_matches(hyper):
    """BN's batch statistics, its running buffers, and one backward (float64)."""
    m, ref = _pair(hyper, seed=2)
    m.train().double()
    ref.train().double()
    x = h.nchw(hyper["C"], (3, 5, 7), seed=3).double()
    y_m, (y_ref, _) = m(x), ref(x)
    torch.testing.assert_close(y_m, y_ref, **TOL)
    torch.testing.assert_close(from_compiled(m.state_dict()), ref.state_dict(),
                               rtol=1e-5, atol=1e-6)
    g = torch.randn_like(y_m)
    names = dict(m.named_parameters())
    params_ref = dict(ref.named_parameters())
    mapped = from_compiled({k: torch.zeros(()) for k in names})  # names only
    assert set(mapped) == set(params_ref)
    grads_m = torch.autograd.grad(y_m, list(names.values()), g)
    grads_ref = torch.autograd.grad(y_ref, [params_ref[k] for k in mapped], g)
    for name, a, b in zip(mapped, grads_m, grads_ref, strict=True):
        torch.testing.assert_close(a.reshape(b.shape), b, rtol=1e-9, atol=1e-10, msg=name)
