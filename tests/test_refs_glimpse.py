"""Compiled glimpse sensor + glimpse network (RAM, Mnih et al. NIPS 2014; DRAM, Ba et al.
ICLR 2015) against a module written from the papers (tests/paper_refs/glimpse.py: the
multi-resolution retina written out with gathers, g = ReLU(G_image) ⊙ ReLU(G_loc)); the
reference loads the compiled state_dict with strict=True.
"""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
from paper_refs.glimpse import GlimpseReference, from_compiled

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [
    pytest.param({"C": 1, "P": 2, "scales": 3, "gh": 6, "gw": 8, "hidden": 12}, id="C1-k3"),
    pytest.param({"C": 5, "P": 2, "scales": 4, "gh": 7, "gw": 9, "hidden": 14,
                  "extent": 0.45}, id="C5-k4-e0.45"),
]
SHAPES = [  # (N, H, W)
    pytest.param((2, 28, 30), id="n2_h28_w30"),
    pytest.param((3, 13, 11), id="n3_h13_w11"),
]


def _ref(hyper: dict) -> GlimpseReference:
    return GlimpseReference(hyper["C"], hyper["gh"], hyper["gw"], hyper["scales"],
                            hyper.get("extent", 8 / 28), hyper["hidden"])


def _pair(hyper: dict, seed: int = 0):
    return h.paired("glimpse", hyper, _ref(hyper), from_compiled, seed=seed)


def _inputs(hyper: dict, shape, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = h.nchw(hyper["C"], shape, seed)
    return x, torch.rand(shape[0], 2, generator=gen) * 2.4 - 1.2  # some centres off the image


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _pair(hyper)
    x, loc = _inputs(hyper, shape, seed=1)
    (y, att), (g, points) = h.eval_both(m, ref, x, loc)
    torch.testing.assert_close(att["grid"], points, **TOL)
    torch.testing.assert_close(y, g, **TOL)
    assert torch.count_nonzero(g) >= g.numel() // 8  # not all ReLU'd away


@pytest.mark.parametrize("hyper", CASES)
def test_backward_matches(hyper):
    """Gradients of the image, the location and every parameter, in float64."""
    m, ref = _pair(hyper, seed=2)
    m.double()
    ref.double()
    x, loc = (t.double() for t in _inputs(hyper, (2, 13, 11), seed=3))
    args_m = [x.clone().requires_grad_(), loc.clone().requires_grad_()]
    args_ref = [x.clone().requires_grad_(), loc.clone().requires_grad_()]
    y_m, (y_ref, _) = m(*args_m), ref(*args_ref)
    torch.testing.assert_close(y_m, y_ref, rtol=1e-9, atol=1e-10)
    g = torch.randn_like(y_m)
    params_m = dict(m.named_parameters())
    grads_m = torch.autograd.grad(y_m, [*args_m, *params_m.values()], g)
    ref_params = dict(ref.named_parameters())
    grads_ref = torch.autograd.grad(y_ref, [*args_ref, *ref_params.values()], g)
    torch.testing.assert_close(grads_m[0], grads_ref[0], rtol=1e-7, atol=1e-9, msg="x")
    torch.testing.assert_close(grads_m[1], grads_ref[1], rtol=1e-7, atol=1e-9, msg="l")
    assert grads_m[1].abs().sum() > 0  # the glimpse is differentiable in its location
    mapped = from_compiled(dict(zip(params_m, grads_m[2:], strict=True)))
    for name, b in zip(ref_params, grads_ref[2:], strict=True):
        torch.testing.assert_close(mapped[name], b, rtol=1e-7, atol=1e-9, msg=name)


def test_every_backend_matches_reference():
    hyper = {"C": 5, "P": 2, "scales": 4, "gh": 7, "gw": 9, "hidden": 14, "extent": 0.45}
    m, ref = _pair(hyper, seed=4)
    x, loc = _inputs(hyper, (3, 13, 11), seed=5)
    with torch.no_grad():
        expected = ref(x, loc)[0].numpy()
    results = h.assert_backends_agree(m, {"x": x.numpy(), "l": loc.numpy()},
                                      label="glimpse-vs-ref")
    for backend, out in results.items():
        np.testing.assert_allclose(out["y"], expected, rtol=1e-4, atol=1e-5, err_msg=backend)
