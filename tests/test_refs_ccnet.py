"""Compiled CCNet (criss-cross attention, R recurrences) against the official module's code.

The reference (tests/paper_refs/ccnet.py) loads the compiled state_dict with strict=True; the
outputs and the last pass's [N, H, W, H + W] attention map are compared in eval mode, then one
backward. All sizes of a case are distinct (C, C // r, N, H, W, H + W).
"""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
from paper_refs.ccnet import CCNetReference, from_compiled

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [
    pytest.param({"C": 24, "r": 4, "R": 2}, id="C24-r4-R2"),
    pytest.param({"C": 40, "r": 8, "R": 3}, id="C40-r8-R3"),
]
SHAPES = [pytest.param((3, 7, 9), id="n3_h7_w9"), pytest.param((1, 11, 13), id="n1_h11_w13")]


def _pair(hyper: dict, seed: int = 0):
    ref = CCNetReference(hyper["C"], r=hyper["r"], R=hyper["R"])
    return h.paired("ccnet", hyper, ref, from_compiled, seed=seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _pair(hyper)
    x = h.nchw(hyper["C"], shape, seed=1)
    (y, att), (y_ref, a_ref) = h.eval_both(m, ref, x)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(att["a"], a_ref, **TOL)
    # the self position is in the row only: its column entry is exactly 0
    col = att["a"][:, :, :, : shape[1]]
    assert torch.all(torch.diagonal(col, dim1=1, dim2=3) == 0)


@pytest.mark.parametrize("hyper", CASES)
def test_backward_matches(hyper):
    m, ref = _pair(hyper, seed=2)
    m.double()
    ref.double()
    x = h.nchw(hyper["C"], (2, 5, 7), seed=3).double()
    y_m, (y_ref, _) = m(x), ref(x)
    torch.testing.assert_close(y_m, y_ref, **TOL)
    g = torch.randn_like(y_m)
    params_m = {f"cca.{k}": v for k, v in m.named_parameters()}  # gamma keeps its rank 0
    params_ref = dict(ref.named_parameters())
    assert set(params_m) == set(params_ref)
    grads_m = torch.autograd.grad(y_m, list(params_m.values()), g)
    grads_ref = torch.autograd.grad(y_ref, [params_ref[k] for k in params_m], g)
    for name, a, b in zip(params_m, grads_m, grads_ref, strict=True):
        torch.testing.assert_close(a.reshape(b.shape), b, rtol=1e-9, atol=1e-10, msg=name)


def test_default_init_is_the_identity():
    m = h.compile_spec("ccnet", {"C": 24, "r": 4, "R": 2}).eval()
    x = h.nchw(24, (2, 7, 9), seed=4)
    with torch.no_grad():
        torch.testing.assert_close(m(x), x, **TOL)


def test_no_nan_in_any_backend_with_a_single_row():
    """H = 1: the column holds only the masked self position, the row keeps the softmax finite."""
    m = h.randomize_(h.compile_spec("ccnet", {"C": 24, "r": 4, "R": 2}), seed=5)
    x = h.nchw(24, (2, 1, 6), seed=6).numpy()
    results = h.assert_backends_agree(m, {"x": x}, label="ccnet-h1")
    for out in results.values():
        assert all(np.isfinite(v).all() for v in out.values())
