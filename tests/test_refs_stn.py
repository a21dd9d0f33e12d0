"""Compiled spatial transformer (Jaderberg et al., NIPS 2015) against a module written from the
paper's equations (tests/paper_refs/stn.py: the grid of eq. (1) and the bilinear sampler of
eq. (5) written out with gathers); the reference loads the compiled state_dict with strict=True.
"""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
from paper_refs.stn import STNReference, from_compiled

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [
    pytest.param({"C": 5, "width": 8, "hidden": 12}, id="C5-w8-h12"),
    pytest.param({"C": 14, "width": 15, "hidden": 16}, id="C14-w15-h16"),
]
SHAPES = [  # (N, H, W), sizes distinct from the channel counts
    pytest.param((2, 7, 9), id="n2_h7_w9"),
    pytest.param((3, 11, 6), id="n3_h11_w6"),
]


def _pair(hyper: dict, seed: int = 0):
    ref = STNReference(hyper["C"], hyper["width"], hyper["hidden"])
    return h.paired("stn", hyper, ref, from_compiled, seed=seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _pair(hyper)
    x = h.nchw(hyper["C"], shape, seed=1)
    (y, att), (v, theta, grid) = h.eval_both(m, ref, x)
    torch.testing.assert_close(att["theta"], theta, **TOL)
    torch.testing.assert_close(att["grid"], grid, **TOL)
    torch.testing.assert_close(y, v, **TOL)
    assert not torch.allclose(y, x, atol=1e-2)  # the random θ really moved the samples


@pytest.mark.parametrize("hyper", CASES)
def test_starts_as_the_identity_transform(hyper):
    """The regression layer starts at weight 0 and bias [1, 0, 0, 0, 1, 0]: V = U."""
    m = h.compile_spec("stn", hyper).eval()
    sd = m.state_dict()
    assert torch.equal(sd["fc_loc_bias"], torch.tensor([1.0, 0, 0, 0, 1, 0]))
    assert torch.equal(sd["fc_loc.2.weight"], torch.zeros_like(sd["fc_loc.2.weight"]))
    x = h.nchw(hyper["C"], (2, 7, 9), seed=2)
    with torch.no_grad():
        torch.testing.assert_close(m(x), x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hyper", CASES)
def test_backward_matches(hyper):
    """Gradients of the input and every parameter, in float64."""
    m, ref = _pair(hyper, seed=2)
    m.double()
    ref.double()
    x = h.nchw(hyper["C"], (2, 7, 9), seed=3).double().requires_grad_()
    xr = x.detach().clone().requires_grad_()
    y_m, (y_ref, _, _) = m(x), ref(xr)
    torch.testing.assert_close(y_m, y_ref, rtol=1e-9, atol=1e-10)
    g = torch.randn_like(y_m)
    params_m = from_compiled(dict(m.named_parameters()))
    params_ref = dict(ref.named_parameters())
    assert set(params_m) == set(params_ref)
    grads_m = torch.autograd.grad(y_m, [x, *params_m.values()], g)
    grads_ref = torch.autograd.grad(y_ref, [xr, *(params_ref[k] for k in params_m)], g)
    for name, a, b in zip(["x", *params_m], grads_m, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9, msg=name)


def test_every_backend_matches_reference():
    hyper = {"C": 5, "width": 8, "hidden": 12}
    m, ref = _pair(hyper, seed=4)
    x = h.nchw(5, (2, 10, 3), seed=5)
    with torch.no_grad():
        expected = ref(x)[0].numpy()
    results = h.assert_backends_agree(m, {"x": x.numpy()}, label="stn-vs-ref")
    for backend, out in results.items():
        np.testing.assert_allclose(out["y"], expected, rtol=1e-4, atol=1e-5, err_msg=backend)
