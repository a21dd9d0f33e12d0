"""Compiled CondConv (Yang et al., NeurIPS 2019) against timm's CondConv2d with its routing
(GAP -> Linear -> sigmoid), written out in tests/paper_refs/condconv.py; the reference loads
the compiled state_dict with strict=True through `from_compiled` (experts flattened as timm
stores them).
"""

from __future__ import annotations

import math

import _harness as h
import numpy as np
import pytest
import torch
from paper_refs.condconv import CondConvReference, from_compiled

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [
    pytest.param({"C": 24, "out": 20, "experts": 6, "k": 3}, id="C24-O20-E6-k3"),
    pytest.param({"C": 12, "out": 16, "experts": 5, "k": 5}, id="C12-O16-E5-k5"),
]
SHAPES = [pytest.param((2, 7, 11), id="n2_h7_w11"), pytest.param((3, 8, 13), id="n3_h8_w13")]


def _pair(hyper: dict, seed: int = 0):
    ref = CondConvReference(hyper["C"], hyper["out"], hyper["k"], hyper["experts"])
    return h.paired("condconv", hyper, ref, from_compiled, seed=seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _pair(hyper)
    x = h.nchw(hyper["C"], shape, seed=1)
    (y, att), (y_ref, routing) = h.eval_both(m, ref, x)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(att["routing"], routing, **TOL)


@pytest.mark.parametrize("hyper", CASES)
def test_backward_matches(hyper):
    m, ref = _pair(hyper, seed=2)
    m.double()
    ref.double()
    x = h.nchw(hyper["C"], (3, 7, 11), seed=3).double()
    y_m, (y_ref, _) = m(x), ref(x)
    torch.testing.assert_close(y_m, y_ref, rtol=1e-9, atol=1e-10)
    g = torch.randn_like(y_m)
    names = [k for k, _ in m.named_parameters()]
    grads_m = dict(zip(names, torch.autograd.grad(y_m, list(m.parameters()), g), strict=True))
    grads_m = from_compiled(grads_m)                         # in the reference's layout
    params_ref = dict(ref.named_parameters())
    assert set(grads_m) == set(params_ref)
    grads_ref = torch.autograd.grad(y_ref, list(params_ref.values()), g)
    for name, b in zip(params_ref, grads_ref, strict=True):
        torch.testing.assert_close(grads_m[name], b, rtol=1e-9, atol=1e-10, msg=name)


def test_every_backend_matches_reference():
    """NumPy, PyTorch and onnxruntime (the shift-einsum lowering) against the timm code."""
    hyper = {"C": 12, "out": 16, "experts": 5, "k": 5}
    m, ref = _pair(hyper, seed=4)
    ref.eval()
    x = h.nchw(12, (2, 7, 11), seed=5).numpy()
    with torch.no_grad():
        expected = ref(torch.from_numpy(x))[0].numpy()
    results = h.assert_backends_agree(m, {"x": x}, label="condconv-vs-timm")
    for backend, out in results.items():
        np.testing.assert_allclose(out["y"], expected, rtol=1e-4, atol=1e-5, err_msg=backend)


def test_default_init_is_timms():
    """Each expert U(±1/√(C·k·k)) (kaiming_uniform with a=√5), as CondConv2d.reset_parameters."""
    hyper = {"C": 24, "out": 20, "experts": 6, "k": 3}
    w = h.compile_spec("condconv", hyper, seed=0).state_dict()["weight"]
    bound = 1 / math.sqrt(24 * 9)
    assert w.shape == (6, 20, 24, 9)
    assert w.abs().max() <= bound
    assert w.abs().max() > 0.95 * bound
    assert abs(float(w.std()) - bound / math.sqrt(3)) < 0.05 * bound
